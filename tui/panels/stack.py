"""A stack as text: innermost first, each frame with its source line.

The user's own innermost frame (see :mod:`tasktop.render.stacks`) is marked with ``▶`` and gets a
few lines of context when its file is readable here; standard-library frames are dimmed, but
shown, because "stuck in ``Queue.get``" is half of the story.
"""
from __future__ import annotations

import os

from rich.text import Text
from textual.widget import Widget

from tasktop.render import source
from tasktop.render import stacks


def listing_width(widget: Widget) -> int | None:
    """The columns a stack listing has in ``widget`` once it is laid out (None before)."""
    return widget.content_region.width or widget.size.width or None


def render_stack(stack: list | None, context: int = 2, indent: str = "  ",
                 width: int | None = None) -> Text:
    """The whole stack, one frame per line and its source line under it.  Source lines longer
    than ``width`` end in an ellipsis: a wrapped line of code would read as the next line."""
    out = Text()
    frames = list(stack or ())
    if not frames:
        out.append(f"{indent}(no Python frames)", style="dim")
        return out
    mine = stacks.user_frame(frames)
    for number, frame in enumerate(frames):
        if number:
            out.append("\n")
        is_mine = frame is mine
        library = stacks.is_stdlib(frame.get("file", ""))
        marker = "▶ " if is_mine else "  "
        style = "bold" if is_mine else ("dim" if library else "")
        out.append(f"{indent}{marker}", style="bold yellow")
        out.append(stacks.func_label(frame.get("func", "?")), style=style)
        out.append("  ")
        out.append(f"{stacks.fit_path(stacks.display_path(frame.get('file', '?')))}:{frame.get('line', 0)}",
                   style="dim" if library else "cyan")
        if is_mine and context:
            lines = source.context(frame, context, context)
            pad = min((len(t) - len(t.lstrip()) for _, t in lines if t.strip()), default=0)
            lines = [(n, t[pad:]) for n, t in lines]
        else:
            text = source.line_of(frame)
            lines = [(frame.get("line", 0), text)] if text else []
        for lineno, text in lines:
            current = lineno == frame.get("line")
            prefix = f"{indent}    {lineno:>5} {'>' if current else ' '} "
            code = Text(text.strip() if not is_mine else text.rstrip(), style="" if current else "dim")
            if width is not None:
                code.truncate(max(8, width - len(prefix)), overflow="ellipsis")
            out.append("\n")
            out.append(prefix, style="dim")
            out.append_text(code)
    return out


def render_sites(created_by: list | None, indent: str = "  ") -> Text:
    """The creation sites of a group: ``7×`` and the creation stack of each."""
    out = Text()
    sites = list(created_by or ())
    if not sites:
        out.append(f"{indent}(not recorded: threads, tasks created before the probe started, "
                   "or TASKTOP_CREATION_STACKS=0)", style="dim")
        return out
    for number, site in enumerate(sites):
        if number:
            out.append("\n")
        out.append(f"{indent}{site.get('count', 0):>6,}× ", style="bold")
        stack = site.get("stack")
        if not stack:
            out.append(f"(unknown: {stacks.BEFORE_PROBE})", style="dim")
            continue
        out.append(" ← ".join(stacks.frame_label(f) for f in stack[:3]))
        top = stacks.user_frame(stack)
        text = source.line_of(top) if top else ""
        if text:
            out.append(f"\n{indent}         {os.path.basename(top.get('file', ''))}:{top.get('line')}  ", style="dim")
            out.append(text)
    return out
