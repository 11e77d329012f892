"""Scan results for people (a terminal table or plain lines) and for programs (JSON, JSON lines).

Piped text is line-oriented like grep's: one line per episode on stdout, so ``grep -c stalled`` counts
stalled episodes; the summary sentence and notes go to stderr. On a terminal: a table that reads at
80 columns (``file:line`` never split, the key only when it is not the file, the note wrapped under
its row) followed by the summary.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, TextIO

import msgspec

from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.detect.incidents import Incident, incident_of
from lkwedge.detect.summary import Summary
from lkwedge.output.present import (
    Styled,
    look,
    plural,
    seconds,
    shown_path,
    summary_notes,
    summary_sentence,
)
from lkwedge.safe import printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

GAP = 2          # spaces between table columns
NOTE_LIMIT = 400  # characters of a note shown on a terminal (the JSON has all of it)


_ENCODER = msgspec.json.Encoder()


def one_line_json(value: object) -> str:
    """``value`` on one line, as ``json.dumps(value, ensure_ascii=False)`` writes it (the same spaces
    after ``,`` and ``:``, non-ASCII text as is), encoded by msgspec in a third of the time: 449
    episodes took 5.5 ms. Only a float in exponent form is spelled differently (``1e16``, not
    ``1e+16``): the same number to any JSON reader. What msgspec refuses (a string holding a surrogate:
    a file name that is not UTF-8, an escaped ``\\udcff`` in a JSON log line) is left to json.dumps, so
    it is written as before, through the stream's error handler."""
    try:
        return msgspec.json.format(_ENCODER.encode(value), indent=0).decode()
    except (UnicodeEncodeError, msgspec.EncodeError):
        return json.dumps(value, ensure_ascii=False)


def _episode_dict(ep: Episode, incident_ids: dict[str, str] | None) -> dict[str, object]:
    record = ep.to_dict()
    if incident_ids is not None:
        record["incident"] = incident_ids.get(ep.id)
    return record


def write_json(result: ScanResult, out: TextIO, incidents: list[Incident] | None = None) -> None:
    ids = None if incidents is None else incident_of(incidents)
    parts: list[tuple[str, object]] = [("episodes", (_episode_dict(ep, ids) for ep in result.episodes))]
    if incidents is not None:
        parts.append(("incidents", (inc.to_dict() for inc in incidents)))
    parts.append(("summary", result.summary.to_dict()))
    write_json_document(parts, out)


def write_json_document(parts: Iterable[tuple[str, object]], out: TextIO) -> None:
    """A JSON object laid out for people and for grep: each top-level list one item per line, anything
    else indented. Lists may be iterators: items are encoded and written one at a time, so memory does
    not grow with the output (10M lines: 4 351 episodes). Items are encoded compactly on purpose: the
    standard library's C encoder does not indent, and the indenting Python encoder took 0.17 s for 449
    episodes (most of a scan's output)."""
    opened = False
    for key, value in parts:
        out.write(",\n" if opened else "{\n")
        opened = True
        name = json.dumps(key, ensure_ascii=False)
        if isinstance(value, (list, Iterator)):
            items = iter(value)
            first = next(items, _NOTHING)
            if first is not _NOTHING:
                out.write(f"  {name}: [\n    {one_line_json(first)}")
                for item in items:
                    out.write(f",\n    {one_line_json(item)}")
                out.write("\n  ]")
                continue
            value = []
        nested = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        out.write(f"  {name}: {nested}")
    out.write("\n}\n" if opened else "{}\n")


_NOTHING = object()


def write_jsonl(result: ScanResult, out: TextIO, incidents: list[Incident] | None = None) -> None:
    ids = None if incidents is None else incident_of(incidents)
    for ep in result.episodes:
        out.write(one_line_json(_episode_dict(ep, ids)) + "\n")
    out.write(one_line_json({"summary": result.summary.to_dict()}) + "\n")


def incident_line(inc: Incident) -> str:
    """``incident I1 2026-01-30 18:24:43.187 docker_compose.log: 2 keys within 0.8s (worst: stalled)``"""
    when = inc.start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return printable(f"incident {inc.id} {when} {shown_path(inc.file)}: {plural(len(inc.keys), 'job')} "
                     f"within {seconds(inc.spread_s)} (worst: {inc.verdict}): {', '.join(inc.keys)}", 400)


def _when(ep: Episode) -> str:
    return ep.start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ep.start else "-"


def _key_shown(ep: Episode) -> str | None:
    """The key, unless it is just the file (a log without job ids or pids)."""
    return None if ep.key == ep.file else ep.key


def episode_line(ep: Episode, limit: int | None = None, incident: str | None = None) -> str:
    """One plain, escaped line per episode (scan's piped output, watch's summary)."""
    key = _key_shown(ep)
    return printable(f"{ep.verdict:<12} {shown_path(ep.file)}:{ep.line}  "
                     f"{f'key={key}  ' if key else ''}{f'incident={incident}  ' if incident else ''}"
                     f"start={_when(ep)}  "
                     f"silence={seconds(ep.silence_s)}  attempts={ep.attempts}  outcome={ep.outcome or '-'}  "
                     f"{ep.note}", limit)


class LineConsole(Protocol):
    """What line-oriented output needs of a console: a rich Console, or `PlainConsole`."""

    def print(self, line: str | Styled, *, soft_wrap: bool = ...) -> None: ...


class PlainConsole:
    """Lines without colour, written without rich (piped output with --color auto/never)."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    def print(self, line: str | Styled, *, soft_wrap: bool = True) -> None:
        stream = sys.stderr if self.stderr else sys.stdout
        stream.write((line.plain if isinstance(line, Styled) else line) + "\n")


def colour_possible(color: str, stderr: bool = False) -> bool:
    """Whether rich would draw colour on this stream (the same rules: --color, TTY_COMPATIBLE,
    FORCE_COLOR, a terminal); NO_COLOR only removes colour, so it needs no check here."""
    if color == "never":
        return False
    if color == "always":
        return True
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    forced = os.environ.get("FORCE_COLOR")
    if forced is not None:
        return forced != ""
    stream = sys.stderr if stderr else sys.stdout
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


def write_plain(result: ScanResult, out: LineConsole, err: LineConsole | None,
                incidents: list[Incident] | None = None) -> None:
    """One line per episode on ``out`` (colour only when forced); incidents and the summary on ``err``
    (None: quiet), so ``grep -c`` on stdout counts episodes."""
    ids = incident_of(incidents or [])
    for ep in result.episodes:
        line = episode_line(ep, incident=ids.get(ep.id))
        out.print(Styled(((line[:len(ep.verdict)], look(ep.verdict).rich), (line[len(ep.verdict):], ""))),
                  soft_wrap=True)
    if err is not None:  # everything but the episodes goes to stderr, the summary sentence last but notes
        for inc in incidents or []:
            err.print(incident_line(inc), soft_wrap=True)
        for ep in result.episodes:
            if ep.advice:
                advice = printable(f"advice for {shown_path(ep.file)}:{ep.line}: {ep.advice}")
                err.print(advice, soft_wrap=True)
        for line in sdk_lines(result.summary):
            err.print(line, soft_wrap=True)
        err.print(summary_sentence(result.summary), soft_wrap=True)
        for note in summary_notes(result.summary):
            err.print(note, soft_wrap=True)


def _start_format(episodes: Iterable[Episode]) -> tuple[str, str]:
    """(strftime format, title suffix): the date once in the title when every episode is on one day."""
    days = {ep.start.date() for ep in episodes if ep.start}
    if len(days) == 1:
        start = next(ep.start for ep in episodes if ep.start)
        return "%H:%M:%S.%f", f" (log time, {start.strftime('%Y-%m-%d %Z').strip()})"
    return "%m-%d %H:%M:%S.%f", " (log time)"


def table_text(result: ScanResult, width: int, incidents: list[Incident] | None = None) -> list[Text]:
    """The table as lines of at most ``width`` cells (``file:line`` is never cut; a path longer than the
    terminal is the one thing that may overflow, whole, so it can still be copied)."""
    from rich.text import Text

    episodes = result.episodes
    if not episodes:
        return []
    fmt, suffix = _start_format(episodes)
    ids = incident_of(incidents or [])
    rows = []
    for ep in episodes:
        start = ep.start.strftime(fmt)[:-3] if ep.start else "-"
        rows.append((ep, printable(f"{shown_path(ep.file)}:{ep.line}"), start, seconds(ep.silence_s)))
    w_verdict = max(len("verdict"), *(len(look(ep.verdict).label) for ep in episodes))
    w_where = max(len("where"), *(len(r[1]) for r in rows))
    w_start = max(len("start"), *(len(r[2]) for r in rows))
    w_silence = max(len("silence"), *(len(r[3]) for r in rows))
    indent = w_verdict + GAP
    one_line = indent + w_where + GAP + w_start + GAP + w_silence <= width
    pad = " " * GAP

    out = [Text(f"lkwedge: {plural(len(episodes), 'reconnect episode')}{suffix}", style="bold")]
    head = f"{'verdict':<{w_verdict}}{pad}{'where':<{w_where}}"
    if one_line:
        head += f"{pad}{'start':<{w_start}}{pad}{'silence':>{w_silence}}"
    out.append(Text(head.rstrip(), style="bold"))
    for ep, where, start, silence in rows:
        row = Text()
        row.append(f"{look(ep.verdict).label:<{w_verdict}}", style=look(ep.verdict).rich)
        row.append(pad + (f"{where:<{w_where}}" if one_line else where))
        facts = [f"attempts {ep.attempts}", f"outcome {ep.outcome or '-'}"]
        if one_line:
            row.append(f"{pad}{start:<{w_start}}{pad}{silence:>{w_silence}}")
        else:
            facts[:0] = [f"start {start}", f"silence {silence}"]
        out.append(row)
        key = _key_shown(ep)
        if key:
            facts.append(printable(key, 120))
        if ep.id in ids:
            facts.append(f"incident {ids[ep.id]}")
        if ep.room and f"room:{ep.room}" != key:
            facts.append(f"room {printable(ep.room, 80)}")
        out.extend(_facts(facts, indent, width))
        if ep.note:
            out.extend(_wrapped(printable(ep.note, NOTE_LIMIT), indent, width, "dim"))
        if ep.advice:
            out.extend(_wrapped("advice: " + printable(ep.advice, NOTE_LIMIT), indent, width, "dim"))
    return out


def _wrapped(text: str | Styled, indent: int, width: int, style: str = "") -> list[Text]:
    """``text`` wrapped at word boundaries to ``width`` cells, each line indented, no trailing spaces."""
    from rich.console import Console
    from rich.text import Text

    body = text.__rich__() if isinstance(text, Styled) else Text(text, style=style)
    room = max(20, width - indent)
    lines = body.wrap(Console(width=room, color_system=None), room)
    out = []
    for line in lines:
        line.rstrip()
        out.append(Text(" " * indent) + line)
    return out


def _facts(facts: list[str], indent: int, width: int) -> list[Text]:
    """Facts joined by ", ", broken only between facts (``room X`` stays whole) unless one is too long."""
    lines: list[str] = []
    for fact in facts:
        if lines and indent + len(lines[-1]) + 2 + len(fact) <= width:
            lines[-1] += ", " + fact
        else:
            if lines:
                lines[-1] += ","
            lines.append(fact)
    return [line for text in lines for line in _wrapped(text, indent, width)]


def write_table(result: ScanResult, console: Console, quiet: bool = False,
                incidents: list[Incident] | None = None) -> None:
    for line in table_text(result, console.width, incidents):
        console.print(line, soft_wrap=True)
    for inc in incidents or []:
        for line in _wrapped(incident_line(inc), 0, console.width, "bold"):
            console.print(line, soft_wrap=True)
    if not quiet:
        summary = result.summary
        for text in [*sdk_lines(summary), summary_sentence(summary), *summary_notes(summary)]:
            for line in _wrapped(text, 0, console.width):
                console.print(line, soft_wrap=True)


def summary_text(summary: Summary) -> Text:
    """The summary sentence and its notes (kept for callers that print them together)."""
    text = summary_sentence(summary).__rich__()
    for note in summary_notes(summary):
        text.append("\n" + note)
    return text


def sdk_lines(summary: Summary) -> list[str]:
    """``sdk: agent.log: livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25)``, one per input."""
    return [printable(f"sdk: {shown_path(name)}: {guess['label'] if isinstance(guess, dict) else 'unknown'}")
            for name, guess in summary.sdk.items()]
