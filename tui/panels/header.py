"""The header: which process, how big, how healthy its loops are, and the connection state.

The state is spelled out (``live``, ``paused``, ``process exited``...) and not only coloured.
Every time shown is relative to the snapshot's own clock, so a frozen snapshot renders the
same way every time.
"""
from __future__ import annotations

from rich.text import Text

from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.discovery import command_line
from ..session import Session
from .text_line import TextLine

_STATE_STYLE = {
    "live": "bold green",
    "paused": "bold yellow",
    "connecting": "bold cyan",
    "process exited": "bold white on red",
    "not answering": "bold white on red",
    "replay": "bold white on blue",
}


def state_badge(session: Session) -> Text:
    status = session.status
    text = Text()
    text.append(f" {status.upper()} ", style=_STATE_STYLE.get(status, "bold"))
    if session.recorder is not None:
        text.append(" ● REC ", style="bold white on red")
        text.append(f" {session.recorder.samples} samples", style="dim")
    if status == "replay":
        text.append(f" {session.replay.moment_text()}", style="bold")
    elif status == "live":
        effective = session.effective_interval
        if effective > session.interval * 1.5:
            text.append(f" every ~{effective:.0f}s (slow probe: {session.cost:.1f}s a summary)", style="yellow")
        else:
            text.append(f" every {session.interval:g}s", style="dim")
    return text


class HeaderPanel(TextLine):
    """Three lines about the attached process."""

    def show(self, session: Session) -> None:
        self.show_text(self.render_session(session))

    @staticmethod
    def render_session(session: Session) -> Text:
        summary = session.model.summary
        out = state_badge(session)
        if summary is None:
            out.append(f"  {session.path}", style="bold")
            if session.reason:
                out.append(f"\n{session.reason}")
            return out
        process = summary.get("process") or {}
        totals = summary.get("totals") or {}
        memory = summary.get("memory") or {}
        now = float(summary.get("time") or 0.0)
        started = process.get("started_at")
        out.append("  pid ", style="dim")
        out.append(str(process.get("pid", "?")), style="bold")
        out.append("  ")
        out.append(command_line(process), style="bold")
        out.append(f"  Python {process.get('python', '?')}", style="dim")
        if started:
            out.append("  up ", style="dim")
            out.append(units.duration(now - float(started)))
        if summary.get("source") == "remote":
            out.append("\nno probe: tasks read from outside, threads by py-spy; ", style="bold yellow")
            out.append(f"{summary.get('unknown') or 'what only a probe knows is unknown'}; "
                       "no loop lag, stalls, verdicts or details", style="yellow")
        out.append("\n")
        for label, key in (("tasks", "tasks"), ("threads", "threads"), ("loops", "loops"), ("groups", "groups")):
            out.append(f"{label} ", style="dim")
            out.append(units.count(totals.get(key)), style="bold")
            out.append("  ")
        out.append("RSS ", style="dim")
        out.append(units.size(memory.get("rss_bytes")), style="bold")
        if memory.get("rss_peak_bytes"):
            out.append(f" (peak {units.size(memory.get('rss_peak_bytes'))})", style="dim")
        out.append("\n")
        out.append("loop lag ", style="dim")
        lag = session.model.lag_ms()
        out.append(units.ms(lag) if lag is not None else "-", style="bold red" if (lag or 0) > 100 else "bold")
        out.append("  stalls ", style="dim")
        out.append(units.count(session.model.stall_count()), style="bold")
        last = session.model.last_stall()
        if last is not None:
            out.append(", last ", style="dim")
            out.append(units.ms(last.duration_ms), style="bold")
            ago = max(0.0, now - last.at)
            out.append(f" {units.duration(ago) if ago >= 10 else f'{ago:.0f}s'} ago: ", style="dim")
            out.append(stacks.where(last.stack))
        return out
