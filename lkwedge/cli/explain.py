"""`lkwedge explain FILE:LINE`: how one line was framed, timed, keyed and classified, and its episode."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from lkwedge.cli import main
from lkwedge.cli.common import input_options, run_guarded, scan_options_from
from lkwedge.detect.trace import LineTrace, trace_line
from lkwedge.errors import InputError
from lkwedge.read.framing import read_lines
from lkwedge.read.sources import describe
from lkwedge.safe import printable

ROLE_MEANING = {
    "trigger": "opens a reconnect episode",
    "attempt": "a resume/restart attempt (opens an episode if none is open)",
    "progress": "the reconnect is still moving (resets the silence clock)",
    "success": "the engine recovered: closes the episode",
    "activity": "the job used media: closes the episode as recovered",
    "teardown": "the connection or job ended: closes the episode as disconnected",
    "meta": "no episode effect; carries job facts",
    "evidence": "no state change; supporting evidence / SDK version",
}
_WHERE = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")


def _trace(where: str, options: Any) -> LineTrace:
    m = _WHERE.match(where)
    if not m or int(m.group("line")) < 1:
        raise InputError(f"expected FILE:LINE (a line number from 1), got {where!r}")
    source = describe(m.group("file"))
    trace = trace_line(source.name, read_lines(source.path, source.name), int(m.group("line")), options)
    if trace.record_line is None and not trace.text:
        raise InputError(f"{m.group('file')} has no line {m.group('line')}")
    return trace


def _as_dict(t: LineTrace) -> dict[str, Any]:
    rec = t.record
    return {
        "file": t.file, "line": t.line, "text": t.text,
        "record": None if rec is None else {
            "first_line": t.record_line, "last_line": t.record_end, "parsed": rec.parsed, "level": rec.level,
            "target": rec.target, "message": rec.message, "job": rec.job, "pid": rec.pid, "room": rec.room,
            "room_id": rec.room_id, "svc": rec.svc},
        "time": None if t.time is None else t.time.isoformat(), "time_template": t.time_template,
        "date_source": t.date_source, "key": t.key, "candidate": t.candidate,
        "pattern": None if t.match is None else {
            "id": t.match.pattern.id, "pack": t.match.pattern.pack, "role": t.match.pattern.role,
            "groups": t.match.groups},
        "facts": t.facts,
        "episode": None if t.episode is None else t.episode.to_dict(),
        "sdk": None if t.sdk is None else t.sdk.to_dict(),
    }


def _print(t: LineTrace) -> None:
    def out(label: str, value: str, limit: int = 300) -> None:
        click.echo(printable(f"{label:<9} {value}", limit))

    click.echo(printable(f"{t.file}:{t.line}"))
    out("line", t.text)
    rec = t.record
    if rec is None:
        out("framing", "no record (blank or skipped line)")
        return
    if t.record_line == t.line and t.record_end == t.line:
        out("framing", "one physical line = one record")
    else:
        out("framing", f"part of the record on lines {t.record_line}-{t.record_end} "
                       "(joined as scan joins it)")
        out("record", t.record_text)
    if not rec.parsed:
        out("parsed", "no known log format: counted as unparsed; only its literal text can matter")
    else:
        fields = [f"level {rec.level or '-'}", f"target {rec.target or '-'}"]
        fields += [f"{k} {v}" for k, v in (("job", rec.job), ("pid", rec.pid), ("room", rec.room),
                                             ("room_id", rec.room_id), ("service", rec.svc)) if v is not None]
        out("parsed", ", ".join(fields))
        out("message", rec.message)
    if t.time is None:
        out("time", "none (the line has no timestamp; it does not move the clock)")
    else:
        dated = f"; dated {t.date_source}" if rec.time is None and t.date_source else ""
        out("time", f"{t.time.isoformat()} ({t.time_template}{dated})")
    out("key", f"{t.key} (episodes are kept apart per key)")
    if t.match is None:
        why = "holds a pattern literal but no pattern matched" if t.candidate else "no pattern literal"
        out("pattern", f"none ({why})")
    else:
        p = t.match.pattern
        out("pattern", f"{p.id} (pack {p.pack}, role {p.role}: {ROLE_MEANING.get(p.role, '')})")
        if t.match.groups:
            out("groups", ", ".join(f"{k}={v}" for k, v in t.match.groups.items()))
    if t.facts:
        out("facts", ", ".join(f"{k}={v}" for k, v in t.facts.items()))
    if t.episode is not None:
        ep = t.episode
        head = f"{ep.file}:{ep.line} {ep.verdict} ({ep.key}, outcome {ep.outcome or '-'})"
        out("episode", f"{head}: {ep.note}", 600)
        if ep.advice:
            out("advice", ep.advice, 600)
    elif t.open_episode is not None:
        out("episode", f"none; {t.open_episode.file}:{t.open_episode.line} was open on this key")
    else:
        out("episode", "none")
    if t.sdk is not None:
        out("sdk", f"{t.sdk.label()} (whole file)")


@main.command("explain")
@click.argument("where", metavar="FILE:LINE")
@input_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain_command(where: str, window: float, date: object, patterns: tuple[Path, ...], tz: str,
                    max_jump: float, max_line: int, fmt: str) -> None:
    """How one log line was framed, timed, keyed and classified, and which episode it belongs to.

    FILE may be a .gz file, or - for stdin (after --, so the option parser leaves it alone).

    \b
      lkwedge explain agent.log:1234
      lkwedge explain --date 2026-01-30 console.log:18 --format json
      kubectl logs agent-7 | lkwedge explain -- -:512
    """
    options = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    trace = run_guarded(lambda: _trace(where, options))
    if fmt == "json":
        json.dump(_as_dict(trace), sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        _print(trace)
