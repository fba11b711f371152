"""The verdicts' reasons, in words: what a user reads next to each verdict.

Kept apart from the judging so that the wording can change without touching a rule, and the
rules without touching a sentence.
"""
from __future__ import annotations

from tasktop.wire.stacks import frame_label
from tasktop.wire.units import duration

_NOUN = {"Queue.get": "queue", "Queue.put": "queue", "Queue.join": "queue", "Event.wait": "event",
         "Lock.acquire": "lock", "Condition.wait": "condition", "Semaphore.acquire": "semaphore",
         "Barrier.wait": "barrier", "future": "future"}
_WHAT = {"queue": "put to it or read from it", "event": "set it", "lock": "release it",
         "condition": "notify it", "semaphore": "release it", "barrier": "reach it",
         "future": "complete it"}


def reason_unreachable(count: int, kind: str, state: str, blocked: float, noun: str, objects: int) -> str:
    """The reasoning of a proven leak, in words."""
    kinds = kind if count == 1 else kind + "s"
    if objects == 1:
        held = (f"the {noun} is referenced only by the {count} {kinds} waiting on it" if count > 1
                else f"the {noun} is referenced only by the {kind} waiting on it")
    else:
        held = f"each of the {objects} {noun}s is referenced only by the {kinds} waiting on it"
    return f"blocked {duration(blocked)} on {state}; {held}: nothing else can ever {_WHAT.get(noun, 'wake it')}"


def reason_dependent(state: str, blocked: float) -> str:
    return f"blocked {duration(blocked)} on {state}; it awaits only tasks that are proven leaks, so it can never resume"


def reason_growing(grew: dict) -> str:
    return (f"grew from {grew['first']} to {grew['last']} in {duration(grew['span_s'])} "
            f"({grew['rate_per_min']:g}/min), rising in {grew['rises']} of {grew['steps']} samples")


def reason_stuck(count: int, state: str, blocked: float) -> str:
    return f"all {count} blocked on {state} for at least {duration(blocked)}"


def noun_of(state: str) -> str:
    return _NOUN.get(state, "object")


def reason_lost(count: int, created_at: dict | None, state: str | None, last_at: dict | None) -> str:
    """``28 tasks created by work (app.py:12) were destroyed while pending; last at read_replies
    (app.py:5) on Queue.get``."""
    noun = "task was" if count == 1 else "tasks were"
    made = f" created by {frame_label(created_at)}" if created_at else " (created before the probe saw them)"
    text = f"{count} {noun.split()[0]}{made} {noun.split()[1]} destroyed while pending"
    if last_at:
        text += f"; last at {frame_label(last_at)}" + (f" on {state}" if state else "")
    else:
        text += "; none was seen waiting (each was lost before the probe's next look)"
    return text


def reason_some(count: int, total: int, reason: str) -> str:
    """``reason`` for ``count`` of a group of ``total``."""
    return f"{count} of the {total}: " + reason if count < total else reason


def reason_unsettled(out_of_time: bool, budget_s: float) -> str:
    """Why the proof left waiters unjudged."""
    if out_of_time:
        return f"the proof ran out of its {budget_s:g}s budget (ask with a bigger budget: tasktop dump --budget)"
    return "they moved while the proof ran"
