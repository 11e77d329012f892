"""One presentation table for every output: verdict labels and colours, durations, plurals, the summary
sentence. Text lines, the Rich table, `watch`, `check`, the report and the HTML page all read it, so a
verdict looks the same (and a count is worded the same) wherever it appears."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from lkwedge.detect.summary import Summary
from lkwedge.safe import printable
from lkwedge.verdicts import Verdict

if TYPE_CHECKING:
    from rich.text import Text


class VerdictLook(msgspec.Struct, frozen=True):
    label: str
    rich: str   # a Rich style (terminal)
    html: str   # a CSS colour (HTML report)


#: worst first (the Verdict order): the order of counts in the summary sentence and of legends
VERDICT_LOOKS: dict[str, VerdictLook] = {
    Verdict.STALLED: VerdictLook("stalled", "bold red", "#c62828"),
    Verdict.GHOST: VerdictLook("ghost", "bold magenta", "#ad1457"),
    Verdict.UNRESOLVED: VerdictLook("unresolved", "yellow", "#b7791f"),
    Verdict.DISCONNECTED: VerdictLook("disconnected", "cyan", "#00838f"),
    Verdict.RECOVERED: VerdictLook("recovered", "green", "#2e7d32"),
}
OTHER_LOOK = VerdictLook("?", "", "#455a64")
#: verdicts the summary sentence always counts (others, e.g. "ghost", only when the summary has them)
CORE_VERDICTS = (Verdict.STALLED, Verdict.UNRESOLVED, Verdict.DISCONNECTED, Verdict.RECOVERED)


def look(verdict: str) -> VerdictLook:
    return VERDICT_LOOKS.get(verdict, OTHER_LOOK)


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def seconds(value: float | None, unknown: str = "?") -> str:
    """A duration as every output writes it: ``0.4s``, ``64.8s``, ``12m05s``, ``2h03m``."""
    if value is None:
        return unknown
    if value < 600:
        return f"{value:.1f}s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 120:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def verdict_counts(summary: Summary) -> list[tuple[str, int]]:
    shown = [v for v in VERDICT_LOOKS if v in CORE_VERDICTS or v in summary.verdicts]
    return [(str(v), summary.count(Verdict(v))) for v in shown]


class Styled(msgspec.Struct, frozen=True):
    """A line of text in styled parts, free of rich: rich (about 40 ms to import) is loaded only when
    colour is drawn (`__rich__`); piped output prints `plain`."""

    parts: tuple[tuple[str, str], ...] = ()  # (text, rich style or "")

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    def __add__(self, other: Styled | str) -> Styled:
        return Styled(self.parts + (other.parts if isinstance(other, Styled) else ((other, ""),)))

    def __radd__(self, other: str) -> Styled:
        return Styled(((other, ""), *self.parts))

    def __rich__(self) -> Text:
        from rich.text import Text

        text = Text()
        for part, style in self.parts:
            text.append(part, style=style)
        return text


def summary_sentence(summary: Summary, open_count: int | None = None) -> Styled:
    """``3 episodes in 1,204 lines (2 files): 1 stalled, 0 unresolved, 0 disconnected, 2 recovered;
    5 unparsed lines`` — the same words in scan, watch and check. ``open_count`` (watch): episodes still
    open, not in the counts."""
    parts = [(f"{plural(summary.episodes, 'episode')} in {plural(summary.lines, 'line')} "
              f"({plural(summary.files, 'file')}): ", "")]
    for i, (verdict, count) in enumerate(verdict_counts(summary)):
        if i:
            parts.append((", ", ""))
        parts.append((f"{count} {look(verdict).label}", look(verdict).rich if count else ""))
    if open_count:
        parts.append((f", {open_count} still open", ""))
    parts.append((f"; {plural(summary.unparsed, 'unparsed line')}", ""))
    return Styled(tuple(parts))


def summary_notes(summary: Summary) -> list[str]:
    return ["note: " + printable(note) for note in summary.notes]


def shown_path(path: str) -> str:
    """A file as the user can copy it: relative to the current directory when it is inside it."""
    if not os.path.isabs(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
