"""Scan results for people (a Rich table or plain lines) and for programs (JSON, JSON lines)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.safe import printable

if TYPE_CHECKING:  # rich is imported only when a table is drawn: piped and JSON output never pay for it
    from rich.console import Console
    from rich.text import Text

VERDICT_STYLE = {"stalled": "bold red", "unresolved": "yellow", "disconnected": "cyan", "recovered": "green",
                 "ghost": "bold magenta"}


def write_json(result: ScanResult, out: TextIO) -> None:
    # one dumps and one write: json.dump with indent writes piece by piece (10x slower on many episodes)
    out.write(json.dumps({"episodes": [ep.to_dict() for ep in result.episodes], "summary": result.summary},
                         indent=2, ensure_ascii=False) + "\n")


def write_jsonl(result: ScanResult, out: TextIO) -> None:
    for ep in result.episodes:
        out.write(json.dumps(ep.to_dict(), ensure_ascii=False) + "\n")
    out.write(json.dumps({"summary": result.summary}, ensure_ascii=False) + "\n")


def _when(ep: Episode) -> str:
    return ep.start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ep.start else "-"


def _silence(ep: Episode) -> str:
    return "?" if ep.silence_s is None else f"{ep.silence_s:.1f}s"


def write_table(result: ScanResult, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="lkwedge: reconnect episodes", title_justify="left", expand=False)
    for column in ("verdict", "where", "key", "start (log time)", "silence", "tries", "outcome", "why"):
        table.add_column(column, overflow="fold")
    for ep in result.episodes:
        table.add_row(Text(ep.verdict, style=VERDICT_STYLE.get(ep.verdict, "")),
                      Text(printable(f"{ep.file}:{ep.line}")), Text(printable(ep.key)), Text(_when(ep)),
                      Text(_silence(ep)), Text(str(ep.attempts)), Text(ep.outcome or "-"),
                      Text(printable(ep.note, 160)))
    console.print(table)
    for ep in result.episodes:  # below the table: a long sentence does not fit a column at 80 columns
        if ep.advice:
            console.print(Text(printable(f"advice for {ep.file}:{ep.line}: {ep.advice}", 600)))
    console.print(summary_text(result.summary))


def episode_line(ep: Episode, limit: int | None = None) -> str:
    """One plain, escaped line per episode (scan's piped output, watch's summary)."""
    return printable(f"{ep.verdict:<12} {ep.file}:{ep.line}  key={ep.key}  start={_when(ep)}  "
                     f"silence={_silence(ep)}  attempts={ep.attempts}  outcome={ep.outcome or '-'}  "
                     f"{ep.note}", limit)


def write_plain(result: ScanResult, out: TextIO) -> None:
    for ep in result.episodes:
        out.write(episode_line(ep) + "\n")
        if ep.advice:
            out.write("    advice: " + printable(ep.advice) + "\n")
    out.write(summary_plain(result.summary) + "\n")


def _summary_parts(summary: dict[str, object]) -> list[tuple[str, str]]:
    """The summary as (text, style) pieces: one wording for plain and Rich output."""
    head = f"{summary['episodes']} episodes in {summary['lines']} lines ({summary['files']} file(s)): "
    parts = [(head, "")]
    for i, verdict in enumerate(("stalled", "ghost", "unresolved", "disconnected", "recovered")):
        count = summary.get(verdict, 0)
        parts.append(((", " if i else "") + f"{count} {verdict}", VERDICT_STYLE[verdict] if count else ""))
    parts.append((f"; {summary['unparsed']} unparsed line(s)", ""))
    parts.extend(("\nnote: " + printable(str(note)), "") for note in summary.get("notes", []) or [])
    parts.extend(("\n" + line, "") for line in sdk_lines(summary))
    return parts


def summary_plain(summary: dict[str, object]) -> str:
    return "".join(text for text, _ in _summary_parts(summary))


def summary_text(summary: dict[str, object]) -> Text:
    from rich.text import Text

    text = Text()
    for piece, style in _summary_parts(summary):
        text.append(piece, style=style)
    return text


def sdk_lines(summary: dict[str, object]) -> list[str]:
    """``sdk: agent.log: livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25)``, one per input."""
    found = summary.get("sdk")
    if not isinstance(found, dict):
        return []
    return [printable(f"sdk: {name}: {guess['label'] if isinstance(guess, dict) else 'unknown'}")
            for name, guess in found.items()]
