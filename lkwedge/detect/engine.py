"""The detection engine: lines → records → pattern hits → episodes, on log time.

`Detector` is fed one physical line at a time (that is what `watch` does). `scan` uses the same
Detector but, for inputs whose records are one per line, hands it only the lines that contain a
pattern literal plus a couple of clock samples per 1 MiB chunk, found with `str.find` over the
whole chunk; every other line costs a newline count and a first-character check. Verdicts are the
same either way because silence is measured between the lines that matter, and log time on a
stream only moves forward (the next examined line is at least as late as any line skipped before it).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lkwedge.detect.episodes import VERDICTS, Episode, EpisodeBook, Hit, Listener
from lkwedge.detect.ghost import DEFAULT_GHOST_WINDOW
from lkwedge.detect.patterns import PatternSet
from lkwedge.read.formats import Record, apply_extra_line, looks_parseable, parse_line, split_forwarded
from lkwedge.read.sources import describe, open_text, position

CHUNK = 1 << 20
SNIFF_LINES = 400
HALF_DAY = dt.timedelta(hours=12)


@dataclass
class ScanOptions:
    window: float = 20.0
    date: dt.date | None = None
    extra_patterns: list[Path] = field(default_factory=list)
    ghost_window: float = DEFAULT_GHOST_WINDOW


@dataclass
class ScanResult:
    episodes: list[Episode]
    summary: dict[str, object]


class Stream:
    """One input (file or stdin): its clock, date context, multi-line state and episodes."""

    def __init__(self, name: str, mtime: float | None, window: float, listener: Listener | None) -> None:
        self.name = name
        self.mtime = mtime
        self.book = EpisodeBook(name, window, listener)
        self.lines = 0
        self.unparsed = 0
        self.clock: dt.datetime | None = None  # newest log time seen
        self.last_time: dt.datetime | None = None  # time of the latest dated record (rollover base)
        self.date_source: str | None = None
        self.job_rooms: dict[str, tuple[str | None, str | None]] = {}
        # multi-line assembly
        self.held: tuple[int, str, Record] | None = None  # a Rich record that may continue
        self.held_json: str | None = None  # a Rich extras line wrapped over several lines
        self.partial: str | None = None  # CRI "P" pieces
        self.partial_line = 0
        self.display_time: tuple[dt.datetime | None, dt.time | None] | None = None


class Detector:
    def __init__(self, options: ScanOptions | None = None, listener: Listener | None = None,
                 patterns: PatternSet | None = None) -> None:
        self.options = options or ScanOptions()
        self.listener = listener
        self.patterns = patterns or PatternSet.load(self.options.extra_patterns)
        self.streams: list[Stream] = []
        self.notes: list[str] = []

    # -- public API ------------------------------------------------------------------------------

    def stream(self, name: str, mtime: float | None = None) -> Stream:
        stream = Stream(name, mtime, self.options.window, self.listener)
        stream.book.ghosts.ghost_window = self.options.ghost_window
        self.streams.append(stream)
        return stream

    def feed(self, stream: Stream, lineno: int, text: str) -> dt.datetime | None:
        """One physical line (without its newline), in order. Returns its log time, if it has one."""
        stream.lines += 1
        return self._process(stream, lineno, text)

    def feed_batch(self, stream: Stream, first_lineno: int, lines: list[str]
                   ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Consecutive one-record-per-line lines (not Rich/CRI-partial input: see `needs_line_by_line`).

        Only the lines holding a pattern literal, plus the first and the last line as clock samples,
        are parsed; the others are counted. Returns the log times of the first and last parsed lines.
        """
        stream.lines += len(lines)
        if not lines:
            return None, None
        blob = "\n".join(lines)
        ends = list(itertools.accumulate(len(line) + 1 for line in lines))  # offset past each line
        picked = {0, len(lines) - 1}
        for literal in self.patterns.literals:
            i = blob.find(literal)
            while i != -1:
                k = bisect.bisect_right(ends, i)
                picked.add(k)
                i = blob.find(literal, ends[k]) if k + 1 < len(lines) else -1
        stream.unparsed += _count_unparseable(lines)
        first = last = None
        for k in sorted(picked):
            if not looks_parseable(lines[k]):
                stream.unparsed -= 1  # counted above; _process counts it again
            when = self._process(stream, first_lineno + k, lines[k])
            if when is not None:
                first = first or when
                last = when
        return first, last

    def flush(self, stream: Stream) -> None:
        """Release a held multi-line record (call when a live stream has gone quiet)."""
        if stream.held is not None:
            held, stream.held, stream.held_json = stream.held, None, None
            self._apply(stream, *held)

    def advance_clock(self, stream: Stream, log_now: dt.datetime) -> None:
        """Log time has reached at least ``log_now`` on this stream (e.g. estimated from the wall clock)."""
        if stream.clock is None or log_now > stream.clock:
            stream.clock = log_now
            stream.book.on_clock(log_now)

    def last_log_time(self, stream: Stream) -> dt.datetime | None:
        return stream.clock

    def finish(self, stream: Stream) -> None:
        self.flush(stream)
        if stream.partial is not None:
            text, stream.partial = stream.partial, None
            self._apply(stream, stream.partial_line, text, parse_line(text))
        stream.book.finish(stream.clock)

    def open_episodes(self) -> list[Episode]:
        return [ep for stream in self.streams for ep in stream.book.open.values()]

    def episodes(self) -> list[Episode]:
        found = [ep for stream in self.streams for ep in stream.book.closed]
        order = {stream.name: i for i, stream in enumerate(self.streams)}
        return sorted(found, key=lambda ep: (order.get(ep.file, 0), ep.line))

    def summary(self) -> dict[str, object]:
        episodes = self.episodes()
        counts = {verdict: sum(ep.verdict == verdict for ep in episodes) for verdict in VERDICTS}
        return {
            "files": len(self.streams),
            "lines": sum(s.lines for s in self.streams),
            "unparsed": sum(s.unparsed for s in self.streams),
            "episodes": len(episodes),
            **counts,
            "open": len(self.open_episodes()),
            "window_s": self.options.window,
            "notes": list(self.notes),
            "sdk": {s.name: s.book.ghosts.sdk.guess().to_dict() for s in self.streams},
        }

    # -- per line ------------------------------------------------------------------------------

    def _process(self, stream: Stream, lineno: int, text: str) -> dt.datetime | None:
        if stream.partial is not None or " P " in text[:48]:
            text_or_none = self._join_cri_partial(stream, lineno, text)
            if text_or_none is None:
                return None
            lineno, text = stream.partial_line, text_or_none
        record = parse_line(text)
        if record.display_time_only:
            stream.display_time = (record.time, record.time_of_day)
            return None
        if (record.continuation or stream.held_json is not None) and self._continue_held(stream, record):
            return None
        if not record.parsed:
            stream.unparsed += 1
        self.flush(stream)
        if record.rich:  # Rich console rows may wrap onto the following lines: hold until we know
            stream.held = (lineno, text, record)
            return None
        return self._apply(stream, lineno, text, record)

    def _join_cri_partial(self, stream: Stream, lineno: int, text: str) -> str | None:
        """Kubernetes CRI: "<time> stdout P <piece>" lines continue until a "F" line."""
        record_is_partial = " stdout P " in text[:48] or " stderr P " in text[:48]
        _head, sep, piece = text.partition(" P " if record_is_partial else " F ")
        if stream.partial is None:
            if not record_is_partial:
                return text
            stream.partial, stream.partial_line = text, lineno  # keep the prefix of the first piece
            return None
        if not sep:  # not CRI after all: release what we have and go on
            joined, stream.partial = stream.partial, None
            self._apply(stream, stream.partial_line, joined, parse_line(joined))
            stream.partial_line = lineno
            return text
        stream.partial += piece
        if record_is_partial:
            return None
        joined, stream.partial = stream.partial, None
        return joined.replace(" stdout P ", " stdout F ", 1).replace(" stderr P ", " stderr F ", 1)

    def _continue_held(self, stream: Stream, record: Record) -> bool:
        if stream.held is None:
            return False
        lineno, text, held = stream.held
        piece = record.message if record.continuation else record.message.strip()
        if stream.held_json is not None:
            stream.held_json += piece
            if apply_extra_line(held, stream.held_json) or len(stream.held_json) > 4096:
                stream.held_json = None
            return True
        if piece.startswith("{"):
            if not apply_extra_line(held, piece):
                stream.held_json = piece
            return True
        if not record.continuation:
            return False
        held.message = f"{held.message.rstrip()} {piece}"
        split_forwarded(held)  # a wrapped "target:line:module - msg" is only complete now
        stream.held = (lineno, f"{text.rstrip()} {piece}", held)
        return True

    def _apply(self, stream: Stream, lineno: int, text: str, record: Record) -> dt.datetime | None:
        when = self._resolve_time(stream, record)
        match = None
        if self.patterns.is_candidate(record.message):
            match = self.patterns.match(record.message, record.level)
        if match is not None:
            if match.pattern.role == "meta" and record.job:
                stream.job_rooms[record.job] = (record.room, record.room_id)
            key, job = _key_of(record, stream.name)
            room, room_id = record.room, record.room_id
            if job and (room is None or room_id is None):
                known_room, known_id = stream.job_rooms.get(job, (None, None))
                room, room_id = room or known_room, room_id or known_id
            hit = Hit(match, key, lineno, when, text, job, record.pid, room, room_id, message=record.message)
            stream.book.ghosts.observe(hit)
            stream.book.on_hit(hit)
        if when is not None and (stream.clock is None or when > stream.clock):
            stream.clock = when
            stream.book.on_clock(when, lineno, text)
        return when

    def _resolve_time(self, stream: Stream, record: Record) -> dt.datetime | None:
        if record.time is None and record.time_of_day is None and stream.display_time is not None:
            record.time, record.time_of_day = stream.display_time
        stream.display_time = None
        if record.time is not None:
            when = record.time
            if record.year_missing:
                year = (stream.last_time or stream.clock or _today()).year
                when = when.replace(year=year)
            stream.last_time = when
            return when
        if record.time_of_day is not None:
            when = dt.datetime.combine(self._base_date(stream), record.time_of_day, dt.UTC)
            if stream.last_time is not None and when < stream.last_time - HALF_DAY:
                when += dt.timedelta(days=1)  # midnight rollover
            stream.last_time = when
            return when
        if record.blank_time:
            return stream.last_time
        return None

    def _base_date(self, stream: Stream) -> dt.date:
        if stream.last_time is not None:
            return stream.last_time.date()
        if self.options.date is not None:
            source, base = "--date", self.options.date
        elif stream.mtime is not None:
            base = dt.datetime.fromtimestamp(stream.mtime, dt.UTC).date()
            source = "the file's modification time"
        else:
            base, source = _today(), "today's date (UTC)"
        if stream.date_source is None:
            stream.date_source = source
            self.notes.append(f"{stream.name}: time-only lines dated {base.isoformat()} from {source}")
        return base


def _today() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_of(record: Record, file: str) -> tuple[str, str | None]:
    if record.job:
        return f"job:{record.job}", record.job
    if record.pid is not None:
        return f"pid:{record.pid}", None
    if record.svc:
        return f"svc:{record.svc}", None
    return file, None


# ---- scan: saved inputs ---------------------------------------------------------------------------

ProgressCallback = Callable[[int, int], None]


def scan(paths: Sequence[str], options: ScanOptions | None = None,
         on_progress: ProgressCallback | None = None, listener: Listener | None = None) -> ScanResult:
    """Read saved logs to the end and return every episode with its verdict."""
    detector = Detector(options, listener)
    inputs = [describe(path) for path in paths]  # fail fast on a missing file, before any output
    total = sum(source.size or 0 for source in inputs)
    done = 0
    for source in inputs:
        stream = detector.stream(source.name, source.mtime)
        with open_text(source) as text:
            _read_stream(detector, stream, text, _progress(on_progress, done, total))
        detector.finish(stream)
        done += source.size or 0
        if on_progress is not None:
            on_progress(done, total)
    return ScanResult(detector.episodes(), detector.summary())


def _progress(callback: ProgressCallback | None, base: int, total: int) -> Callable[[TextIO], None] | None:
    if callback is None:
        return None

    def report(text: TextIO) -> None:
        pos = position(text)
        if pos is not None:
            callback(base + pos, total)

    return report


def _read_stream(detector: Detector, stream: Stream, text: TextIO,
                 report: Callable[[TextIO], None] | None) -> None:
    head = text.read(CHUNK)
    sample = head.split("\n", SNIFF_LINES)[:SNIFF_LINES]
    if _newest_first(sample):
        rest = head + text.read()
        lines = rest.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        detector.notes.append(f"{stream.name}: newest-first order detected; read oldest-first")
        for lineno in range(len(lines), 0, -1):
            detector.feed(stream, lineno, lines[lineno - 1])
        return
    if needs_line_by_line(sample):
        _read_line_by_line(detector, stream, head, text)
        return
    _read_fast(detector, stream, head, text, report)


def _read_line_by_line(detector: Detector, stream: Stream, head: str, text: TextIO) -> None:
    carry, lineno, data = "", 0, head
    while data:
        lines = (carry + data).split("\n")
        carry = lines.pop()
        for line in lines:
            lineno += 1
            detector.feed(stream, lineno, line)
        data = text.read(CHUNK)
    if carry:
        detector.feed(stream, lineno + 1, carry)


def _read_fast(detector: Detector, stream: Stream, head: str, text: TextIO,
               report: Callable[[TextIO], None] | None) -> None:
    carry, base, data = "", 0, head
    while data or carry:
        buffer = carry + data
        cut = buffer.rfind("\n") + 1 if data else len(buffer)
        chunk, carry = buffer[:cut], buffer[cut:]
        if chunk:
            lines = chunk.split("\n")
            if chunk.endswith("\n"):
                lines.pop()
            detector.feed_batch(stream, base + 1, lines)
            base += len(lines)
            if report is not None:
                report(text)
        data = text.read(CHUNK) if data else ""
    detector.flush(stream)


def _count_unparseable(lines: list[str]) -> int:
    """`looks_parseable` over many lines, grouped by first character so the loop stays in C."""
    firsts = Counter(map(_FIRST_CHAR, lines))
    return sum(sum(1 for line in lines if line[:1] == first and not looks_parseable(line))
               for first in firsts if not looks_parseable(first))


_FIRST_CHAR = operator.itemgetter(slice(0, 1))


def needs_line_by_line(sample: list[str]) -> bool:
    """Multi-line records (Rich wrapping, CRI partials, display-time lines) need every line."""
    for line in sample:
        if not line.strip():
            continue
        if line[0] in " \t" or " stdout P " in line[:48] or " stderr P " in line[:48]:
            return True
        if parse_line(line).display_time_only:
            return True
    return False


def _newest_first(sample: list[str]) -> bool:
    times: list[dt.datetime | dt.time] = []
    for line in sample:
        record = parse_line(line)
        if record.time is not None:
            times.append(record.time)
        elif record.time_of_day is not None:
            times.append(record.time_of_day)
    pairs = [(a, b) for a, b in itertools.pairwise(times) if type(a) is type(b)]
    down = sum(1 for a, b in pairs if b < a)  # type: ignore[operator]
    up = sum(1 for a, b in pairs if b > a)  # type: ignore[operator]
    return down >= 3 and down > 3 * up
