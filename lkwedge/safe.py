"""Log text is untrusted: make it inert before it reaches a terminal, a file name or a report."""

from __future__ import annotations

from lkwedge import lazyre

#: C0 controls (ESC, CR, LF, TAB, NUL ...), DEL, C1 controls and the Unicode line/paragraph separators
CONTROL = lazyre.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object, limit: int | None = None) -> str:
    """``text`` on one inert line: every control character becomes a visible ``\\xNN`` escape, so it
    can neither act on the terminal nor split the line; optionally cut to ``limit`` characters."""
    shown = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown
