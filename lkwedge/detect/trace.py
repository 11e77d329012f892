"""What the detector did with one line of a file (behind `lkwedge explain FILE:LINE`).

The file is read with the same Detector `scan` uses, fed line by line, and every record is observed
as it is applied: so framing (multi-line joins), log time (with the stream's date context), key,
pattern match and episode are exactly what `scan` computes, not a re-implementation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from lkwedge.detect.debug_values import facts_for
from lkwedge.detect.engine import Detector, Reading, ScanOptions, Stream
from lkwedge.detect.episodes import Episode
from lkwedge.detect.fingerprint import SdkGuess
from lkwedge.detect.patterns import Match
from lkwedge.detect.sampletest import time_template
from lkwedge.read.formats import Record


class LineTrace(msgspec.Struct):
    file: str
    line: int  # the line asked about
    text: str  # that physical line
    record_line: int | None = None  # first physical line of the record holding it
    record_end: int | None = None  # last physical line of that record
    record_text: str = ""
    record: Record | None = None
    time: dt.datetime | None = None  # the resolved log time (date context applied)
    time_template: str = ""
    key: str | None = None
    match: Match | None = None
    facts: dict[str, object] = {}
    candidate: bool = False  # holds a pattern literal (scan looks at it)
    episode: Episode | None = None
    open_episode: Episode | None = None  # the key's episode open when the line was read
    sdk: SdkGuess | None = None
    date_source: str | None = None


def _key_for(stream: Stream, record: Record) -> str:
    """The episode key of a record, as the detector keys hits (a pid-only line joins its job's episode)."""
    if record.job:
        return f"job:{record.job}"
    if record.pid is not None:
        owners = [ep for ep in stream.book.open.values() if ep.pid == record.pid and ep.job]
        if owners:
            return max(owners, key=lambda ep: ep.line).key
        return f"pid:{record.pid}"
    return f"svc:{record.svc}" if record.svc else stream.name


def trace_line(name: str, text: Iterable[str], target: int, options: ScanOptions | None = None) -> LineTrace:
    """Read the lines of ``text`` to the end and explain physical line ``target`` (1-based)."""
    applied: list[tuple[int, str, Record, dt.datetime | None, Match | None, Episode | None, str]] = []

    class _Traced(Detector):
        def _examine(self, stream: Stream, lineno: int, text: str, record: Record) -> None:
            match = None
            if self.patterns.is_candidate(record.message):
                match = self.patterns.match(record.message, record.level)
            key = _key_for(stream, record)
            before = stream.book.open.get(key)
            super()._examine(stream, lineno, text, record)
            timed = record.has_time() or record.blank_time
            when = stream.last_record_time if timed else None
            applied.append((lineno, text, record, when, match, before, key))

    detector = _Traced(options)
    stream = detector.stream(name)
    stream.reading = Reading.MULTI_LINE  # every record examined, not only the lines holding a literal
    physical = ""
    count = 0
    for count, raw in enumerate(text, 1):
        line = raw.rstrip("\n")
        if count == target:
            physical = line
        detector.feed(stream, count, line)
    detector.finish(stream)
    trace = LineTrace(name, target, physical, sdk=stream.book.ghosts.sdk.guess(),
                      date_source=stream.clock.date_source)
    if target > count:
        return trace
    applied.sort(key=lambda item: item[0])
    holder = None
    for i, item in enumerate(applied):
        if item[0] <= target:
            holder = (i, item)
    if holder is None:
        return trace
    i, (lineno, rtext, record, when, match, before, key) = holder
    nxt = applied[i + 1][0] - 1 if i + 1 < len(applied) else count
    trace.record_line, trace.record_end = lineno, max(lineno, nxt)
    trace.record_text, trace.record, trace.time, trace.match = rtext, record, when, match
    trace.time_template = time_template(rtext, record)
    trace.key = key
    trace.candidate = detector.patterns.is_candidate(record.message)
    trace.open_episode = before
    if match is not None:
        trace.facts = facts_for(match.pattern.id, record.message)
    for episode in [*detector.episodes(), *detector.open_episodes()]:
        if any(e.line == lineno for e in episode.evidence):
            trace.episode = episode
            break
    return trace
