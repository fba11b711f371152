"""``tasktop rules``: Prometheus alerting rules over ``tasktop exporter``'s metrics.

The rules are generated rather than shipped as a fixed file so that every threshold, window and
``for`` period is an argument (``tasktop rules --window 30m > tasktop.rules.yml``); the tests
generate the same rules with windows of seconds and run them in a real Prometheus.

Growth is judged on the *floor* of a series: the minimum over a window.  A leak never gives its
tasks back, so its floor rises from one window to the next; a sawtooth (bursts of work that
finish) keeps the same floor however high its peaks.  A rule asks for the floor to have risen in
each of the last two windows, so a one-off step (a lasting rise in load) does not fire either,
and it judges only processes up for ``UPTIME_WINDOWS`` windows, so a restart's warm-up does not
look like growth (a restart with a new pid starts new series, one with the same pid a new
``tasktop_process_start_time_seconds``).
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass, fields
from typing import Any, Callable

import yaml

from tasktop.probe.waiters import SELF_WAKING

from . import FleetError

#: A process is judged for growth once it has been up this many windows: three windows of floors
#: plus one, so that a warm-up shorter than two windows can never fire.
UPTIME_WINDOWS = 4
#: The exporter's counter of tasks destroyed while pending, by creation site.
LOST_TASKS_METRIC = "tasktop_tasks_lost_total"
#: Metrics a rule or panel uses that ``tasktop exporter`` does not export yet (none now).
PENDING_METRICS: frozenset = frozenset()
#: Labels that identify one process across the fleet (``job`` and ``instance`` come from the scrape).
PROCESS = "job, instance, pid"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


class RulesError(FleetError):
    """A threshold that cannot make a rule."""


def duration_seconds(text: str) -> float:
    """Seconds of a Prometheus duration (``90s``, ``15m``, ``1h30m``); ``ValueError`` otherwise."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (like 90s, 15m or 1h30m)")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def duration_text(seconds: float) -> str:
    """The shortest Prometheus duration for ``seconds`` (``900`` -> ``15m``)."""
    ms = round(seconds * 1000)
    out = ""
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit] * 1000)
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out or "0s"


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use; the defaults are the shipped rules (see the README's table)."""

    window: str = "15m"            # growth: floors of this window and the two before it compared
    growth_for: str = "10m"        # growth: how long it must last before it fires
    max_task_growth: float = 10    # a process's tasks: floor rise per minute, in each window
    max_group_growth: float = 5    # one group's members: floor rise per minute, in each window
    max_tasks: float = 10000       # live tasks in one process ...
    tasks_for: str = "5m"          # ... for this long
    max_blocked: str = "30m"       # a group all of whose members are blocked this long ...
    stuck_ignore: str = "|".join(sorted(SELF_WAKING))  # ... on a state not matching this regex
    stuck_for: str = "5m"
    max_stalls: float = 3          # event-loop stalls ...
    stall_window: str = "10m"      # ... within this window
    max_lag: float = 0.1           # event-loop lag (seconds) that never went lower ...
    lag_window: str = "5m"         # ... during this window
    probe_down_for: str = "5m"     # tasktop_process_up == 0 this long
    lost_window: str = "10m"       # any task lost within this window

    def check(self) -> "Thresholds":
        """Raise ``RulesError`` for a value that would make a broken or meaningless rule."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "str" and f.name != "stuck_ignore":
                try:
                    seconds = duration_seconds(value)
                except ValueError as exc:
                    raise RulesError(f"--{f.name.replace('_', '-')}: {exc}") from None
                if seconds <= 0 and f.name in ("window", "stall_window", "lag_window", "lost_window"):
                    raise RulesError(f"--{f.name.replace('_', '-')} must be longer than 0s")
            elif f.type == "float" and not (0 <= value < float("inf")):
                raise RulesError(f"--{f.name.replace('_', '-')} must be a finite number, not negative")
        try:
            re.compile(self.stuck_ignore)
        except re.error as exc:
            raise RulesError(f"--stuck-ignore: not a regular expression: {exc}") from None
        return self


def _num(value: float) -> str:
    return f"{value:g}"


def _growth(series: str, t: Thresholds, limit: float) -> str:
    """PromQL: the per-minute floor rise of ``series`` over the last window, where the floor also
    rose over the window before and the process has been up ``UPTIME_WINDOWS`` windows."""
    w = duration_text(duration_seconds(t.window))
    minutes = _num(duration_seconds(t.window) / 60)
    floor = [f"min_over_time({series}[{w}:]" + (f" offset {duration_text(k * duration_seconds(t.window))})"
                                                 if k else ")") for k in range(3)]
    return "\n".join([
        f"(\n  {floor[0]}\n  - {floor[1]}\n) / {minutes}",
        f"> {_num(limit)}",
        f"and (\n  {floor[1]}\n  - {floor[2]}\n) / {minutes}",
        f"> {_num(limit)}",
        f"and on ({PROCESS}) (time() - tasktop_process_start_time_seconds"
        f" > {_num(UPTIME_WINDOWS * duration_seconds(t.window))})",
    ])


def _rule(name: str, expr: str, for_: str | None, summary: str, description: str) -> dict:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ and duration_seconds(for_) > 0:
        rule["for"] = duration_text(duration_seconds(for_))
    rule["labels"] = {"severity": "warning"}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


_PROC = "{{ $labels.command }} (pid {{ $labels.pid }} on {{ $labels.instance }})"
_GROUP = "{{ $labels.kind }}s in {{ $labels.state }} at {{ $labels.where }}"
_DUMP = "See every member with: tasktop dump {{ $labels.pid }}"


def rules(t: Thresholds) -> list[dict]:
    """The alerting rules, in the order they are written out."""
    t.check()
    w = duration_text(duration_seconds(t.window))
    totals = "sum without (state) (tasktop_tasks)"
    stall_w = duration_text(duration_seconds(t.stall_window))
    lag_w = duration_text(duration_seconds(t.lag_window))
    lost_w = duration_text(duration_seconds(t.lost_window))
    return [
        _rule("TasktopTasksGrowing", _growth(totals, t, t.max_task_growth), t.growth_for,
              f"{_PROC}: its asyncio tasks grow by {{{{ $value | humanize }}}} a minute",
              f"The fewest live tasks of each {w} window rose by more than {_num(t.max_task_growth)} "
              f"a minute in each of the last two windows: tasks are made and never finish. "
              f"TasktopGroupGrowing names the code if one group does it; else run "
              f"tasktop {{{{ $labels.pid }}}} on that host."),
        _rule("TasktopGroupGrowing", _growth("tasktop_group_members", t, t.max_group_growth),
              t.growth_for,
              f"{_PROC}: {_GROUP} grow by {{{{ $value | humanize }}}} a minute",
              f"Group {{{{ $labels.group }}}} ({_GROUP}): its fewest members of each {w} window rose by "
              f"more than {_num(t.max_group_growth)} a minute in each of the last two windows. {_DUMP}"),
        _rule("TasktopTooManyTasks", f"{totals} > {_num(t.max_tasks)}", t.tasks_for,
              f"{_PROC} has {{{{ $value | humanize }}}} asyncio tasks",
              f"More than {_num(t.max_tasks)} live tasks for {duration_text(duration_seconds(t.tasks_for))}. "
              f"The largest groups: topk(5, tasktop_group_members{{pid=\"{{{{ $labels.pid }}}}\"}})"),
        _rule("TasktopGroupStuck",
              f'tasktop_group_blocked_min_seconds{{state!~"{t.stuck_ignore}"}}'
              f" > {_num(duration_seconds(t.max_blocked))}", t.stuck_for,
              f"{_PROC}: {_GROUP} all blocked for {{{{ $value | humanizeDuration }}}}",
              "Every member of group {{ $labels.group }} has waited on {{ $labels.state }} for at "
              "least {{ $value | humanizeDuration }}, and nothing wakes that but another task or thread. "
              "tasktop dump {{ $labels.pid }} tells whether it is a proven leak."),
        _rule("TasktopEventLoopStalls", f"increase(tasktop_loop_stalls_total[{stall_w}]) > {_num(t.max_stalls)}",
              None,
              f"{_PROC}: event loop {{{{ $labels.loop }}}} ({{{{ $labels.thread }}}}) stalled "
              f"{{{{ $value | humanize }}}} times in {stall_w}",
              "Code ran on the loop without yielding for longer than TASKTOP_STALL_MS. "
              "tasktop {{ $labels.pid }}, then l, shows the code that blocked it."),
        _rule("TasktopEventLoopLagging", f"min_over_time(tasktop_loop_lag_seconds[{lag_w}]) > {_num(t.max_lag)}",
              None,
              f"{_PROC}: event loop {{{{ $labels.loop }}}} ({{{{ $labels.thread }}}}) lags "
              f"{{{{ $value | humanizeDuration }}}} or more",
              f"The loop's heartbeat was never faster than {_num(t.max_lag)} s for {lag_w}: it has more "
              f"ready work than it can run."),
        _rule("TasktopTasksLost", f"increase({LOST_TASKS_METRIC}[{lost_w}]) > 0", None,
              f"{_PROC}: {{{{ $value | humanize }}}} tasks made at {{{{ $labels.site }}}} were lost",
              "Tasks were garbage-collected while still pending (asyncio's \"Task was destroyed but "
              "it is pending\"): nothing kept a reference to them. Keep one until they finish."),
        _rule("TasktopProbeDown", "tasktop_process_up == 0", t.probe_down_for,
              f"the tasktop probe of {_PROC} does not answer",
              "The exporter finds the probe's socket but gets no summary within its --timeout: the "
              "process may be hung with the GIL held. Try: tasktop dump {{ $labels.pid }}"),
    ]


def document(t: Thresholds) -> dict:
    """The rule file: one group, ``tasktop``."""
    return {"groups": [{"name": "tasktop", "rules": rules(t)}]}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as ``|`` blocks, so the file reads like a hand-written one."""


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)


def render(t: Thresholds, argv: list[str] | None = None) -> str:
    """The rule file as text, headed by the command that makes it again."""
    command = "tasktop rules" + "".join(f" {a}" for a in (argv or []))
    return (f"# Prometheus alerting rules for tasktop exporter's metrics.\n"
            f"# Made by: {command}\n# (tasktop rules --help lists every threshold.)\n"
            + to_yaml(document(t)))


# -- the command ----------------------------------------------------------------------------------------
_OPTIONS: dict[str, tuple[str, str]] = {
    "window": ("DURATION", "growth rules compare the floors (minimum) of this window and the two before it"),
    "growth_for": ("DURATION", "how long growth must go on before its alert fires"),
    "max_task_growth": ("PER_MIN", "a process's live tasks: floor rise a minute that fires"),
    "max_group_growth": ("PER_MIN", "one group's members: floor rise a minute that fires"),
    "max_tasks": ("N", "live tasks in one process that fire TasktopTooManyTasks"),
    "tasks_for": ("DURATION", "... for this long"),
    "max_blocked": ("DURATION", "a group all of whose members are blocked this long fires TasktopGroupStuck"),
    "stuck_ignore": ("REGEX", "states that wake by themselves, never stuck (add Queue.get if idle workers wait on queues)"),
    "stuck_for": ("DURATION", "how long a group must be stuck before its alert fires"),
    "max_stalls": ("N", "event-loop stalls within --stall-window that fire"),
    "stall_window": ("DURATION", "window of --max-stalls"),
    "max_lag": ("SECONDS", "event-loop lag that, never undercut during --lag-window, fires"),
    "lag_window": ("DURATION", "window of --max-lag"),
    "probe_down_for": ("DURATION", "how long a probe may not answer before its alert fires"),
    "lost_window": ("DURATION", "lost tasks are counted over this window"),
}


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, not negative: {text!r}")
    return value


def _duration(text: str) -> str:
    try:
        duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tasktop rules``: one per threshold, defaults shown."""
    defaults = Thresholds()
    for f in fields(Thresholds):
        metavar, text = _OPTIONS[f.name]
        kind: Callable[[str], Any] = _number if f.type == "float" else (str if f.name == "stuck_ignore" else _duration)
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, metavar=metavar,
                            default=getattr(defaults, f.name),
                            help=f"{text} (default {getattr(defaults, f.name)})")


def thresholds_of(args: argparse.Namespace) -> Thresholds:
    return Thresholds(**{f.name: getattr(args, f.name) for f in fields(Thresholds)}).check()


def run(args: argparse.Namespace) -> int:
    """Print the rule file; raise ``RulesError`` for thresholds that cannot make one."""
    given = [(f.name, getattr(args, f.name)) for f in fields(Thresholds)
             if getattr(args, f.name) != getattr(Thresholds(), f.name)]
    argv = [f"--{name.replace('_', '-')}={shlex.quote(str(value))}" for name, value in given]
    sys.stdout.write(render(thresholds_of(args), argv))
    return 0
