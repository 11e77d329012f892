"""The detection engine: lines → records → pattern hits → episodes, on log time, one way for every input.

`scan`, `check`, `report` and `watch` all feed lines to a `Detector` (in batches of any size); the
answer does not depend on how the lines were batched. Per stream (one input) the Detector first
looks at the first `SNIFF_LINES` lines and picks a reading, the same whoever reads:

- *newest first* (a pasted UI listing): everything is kept and read in reverse at the end;
- *line by line* (records that span lines: Rich console wrapping, CRI partials, display-time lines):
  every line is assembled and examined;
- *one record per line* (everything else): only lines holding a pattern literal are examined; the
  rest are counted. Log time is taken as non-decreasing, so silence is measured between the examined
  lines and the last timed line of the input: a skipped line cannot hold a time that would change a
  verdict, and the verdict never rests on where a batch was cut.

Examined records move the stream's clock (`lkwedge.read.clock`), pattern hits move the episodes
(`lkwedge.detect.episodes`). A live reader (`watch`) may also move an episode's silence forward from
the wall clock (`advance_clock`); that proof is recorded on the episode and stays.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections import Counter, deque
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import msgspec

from lkwedge import lazyre
from lkwedge.detect import split as split_file
from lkwedge.detect.episodes import Episode, EpisodeBook, Hit, Listener
from lkwedge.detect.ghost import DEFAULT_GHOST_WINDOW
from lkwedge.detect.patterns import PatternSet
from lkwedge.detect.prefilter import (
    TAIL_LINES,
    TOO_LONG_BYTES,
    BlockFacts,
    Prefilter,
    block_facts,
    job_id,
    line_text,
    odd_by_automaton,
    wrapper_prefixes,
)
from lkwedge.detect.spool import Entry, EpisodeSpool, Packed, in_order, pack
from lkwedge.detect.summary import SUMMARY_VERDICTS, ReadError, Summary
from lkwedge.errors import InputError
from lkwedge.read.assemble import Assembler
from lkwedge.read.clock import DEFAULT_MAX_JUMP, UTC, StreamClock
from lkwedge.read.formats import Record, parse_line, unparsed_reason
from lkwedge.read.framing import (
    DEFAULT_MAX_LINE,
    TOO_LONG,
    LineFramer,
    is_gzip_file,
    open_binary,
    read_some,
    split_lines,
)
from lkwedge.read.sources import Input, describe

SNIFF_LINES = 400
#: bytes read at a time from a saved input: small enough that the passes over a block find it in the
#: CPU cache (1 MiB blocks were 20 % slower here), large enough that the cost per block does not show
SCAN_CHUNK = 256 << 10
SPOOL_EVERY = 2 << 20  # input bytes per frame a split file's child spools (lkwedge.detect.split)
DUP_LINES = 3  # a record printed twice (plain + JSON copy) has its copies at most this many lines apart
MAX_JOB_ROOMS = 4096  # rooms remembered per stream for jobs not yet ended (bounds a watcher running for days)


class ScanOptions(msgspec.Struct):
    window: float = 20.0
    date: dt.date | None = None
    extra_patterns: list[Path] = []
    tz: dt.tzinfo = UTC
    max_jump: float = DEFAULT_MAX_JUMP
    max_line: int = DEFAULT_MAX_LINE
    ghost_window: float = DEFAULT_GHOST_WINDOW


class ScanResult(msgspec.Struct):
    episodes: Sequence[Episode]  # a list, or an `EpisodeList` when a long scan spilled some to disk
    summary: Summary


class Reading(Enum):
    UNDECIDED = "undecided"
    PER_LINE = "one record per line"
    MULTI_LINE = "line by line"
    NEWEST_FIRST = "newest first"


class _BareHit(msgspec.Struct):
    """A hit without job or pid, held a few lines in case it is the plain copy of a JSON record."""

    hit: Hit
    message: str


class Stream:
    """One input: its reading, clock, multi-line state and episodes."""

    def __init__(self, name: str, mtime: float | None, options: ScanOptions,
                 listener: Listener | None, keep_closed: int | None = None,
                 spool: EpisodeSpool | None = None) -> None:
        self.name = name
        self.book = EpisodeBook(name, options.window, listener, keep_closed, spool)
        self.clock = StreamClock(tz=options.tz, base_date=options.date, mtime=mtime,
                                 max_jump=options.max_jump)
        self.reading = Reading.UNDECIDED
        self.lines = 0
        self.unparsed: Counter[str] = Counter()
        self.duplicates = 0
        self.buffered: list[tuple[int, bytes]] = []  # blocks kept until the reading is decided, or reversed
        self.buffered_lines = 0
        self.assembler = Assembler(self.unparsed)
        self.tail: deque[tuple[int, bytes]] = deque(maxlen=TAIL_LINES)
        self.last_examined = 0  # physical line number of the last examined line
        self.last_record_time: dt.datetime | None = None  # for Rich rows whose time column is blank
        self.job_rooms: dict[str, tuple[str | None, str | None]] = {}
        self.bare: _BareHit | None = None
        self.recent: deque[tuple[Hit, str]] = deque(maxlen=8)  # keyed hits and their messages
        self.dual_printing = False  # JSON records with job fields: plain twins of them are possible
        self.finished = False
        self.reversed = False
        self.anchor_line = 0  # one record per line: the first dated line, examined like a pattern line
        self.odd_by_automaton = False  # how odd line starts are found (the same lines either way)
        self.wrappers: tuple[bytes, ...] = ()  # ... and the wrapper prefixes that may save the regex
        self.read_error: str | None = None  # it failed part-way (a damaged gzip): judged up to there
        #: called once when the reading is known, before any line is examined (`read_input` forks there)
        self.on_decided: Callable[[], None] | None = None

    def stats(self) -> StreamStats:
        notes: list[str] = []
        if self.reversed:
            notes.append(f"{self.name}: newest-first order detected; read oldest-first")
        if self.clock.date_source:
            notes.append(f"{self.name}: time-only lines dated {self.clock.date_source}")
        zones = self.clock.mixed_zones()
        if zones:
            notes.append(f"{self.name}: {zones}")
        clock = self.clock.stats
        # no timed line and no episode: nothing in the input was recognised (check fails on it)
        recognised = self.clock.now is not None or bool(self.book.verdicts) or bool(self.book.open)
        return StreamStats(self.name, self.lines, Counter(self.unparsed), Counter(self.book.verdicts),
                           len(self.book.open), clock.out_of_order, clock.clock_jumps, clock.bad_times,
                           self.duplicates, notes, recognised, {self.name: self.book.ghosts.sdk.guess_dict()},
                           self.read_error)


class StreamStats(msgspec.Struct):
    """What one input contributes to the summary (picklable: `scan --jobs` sends it between processes)."""

    name: str
    lines: int
    unparsed: Counter[str]
    verdicts: Counter[str]
    open: int
    out_of_order: int
    clock_jumps: int
    bad_times: int
    duplicates: int
    notes: list[str]
    recognised: bool
    sdk: dict[str, dict[str, object] | None] = {}  # input -> its SDK guess
    read_error: str | None = None  # why reading stopped before the end of the input


def summarize(streams: Sequence[StreamStats], window: float) -> Summary:
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for stream in streams:
        verdicts.update(stream.verdicts)
        reasons.update(stream.unparsed)
    return Summary(
        files=len(streams),
        lines=sum(s.lines for s in streams),
        unparsed_reasons=dict(sorted(reasons.items())),
        verdicts={verdict: verdicts[verdict] for verdict in SUMMARY_VERDICTS},
        open=sum(s.open for s in streams),
        window_s=window,
        out_of_order=sum(s.out_of_order for s in streams),
        clock_jumps=sum(s.clock_jumps for s in streams),
        bad_times=sum(s.bad_times for s in streams),
        duplicates=sum(s.duplicates for s in streams),
        unrecognised_inputs=[s.name for s in streams if not s.recognised],
        notes=[note for s in streams for note in s.notes],
        sdk={name: guess for s in streams for name, guess in s.sdk.items()},
        read_errors=[ReadError(s.name, s.lines, s.read_error) for s in streams if s.read_error],
    )


class Detector:
    def __init__(self, options: ScanOptions | None = None, listener: Listener | None = None,
                 patterns: PatternSet | None = None, keep_closed: int | None = None) -> None:
        self.options = options or ScanOptions()
        self.listener = listener
        self.keep_closed = keep_closed  # see EpisodeBook: None keeps every closed episode
        self.patterns = patterns or PatternSet.load(self.options.extra_patterns)
        self.prefilter = Prefilter(self.patterns)
        self.streams: list[Stream] = []
        self.spool = EpisodeSpool()  # used when every closed episode is kept (keep_closed None)

    # -- public API ------------------------------------------------------------------------------

    def stream(self, name: str, mtime: float | None = None) -> Stream:
        stream = Stream(name, mtime, self.options, self.listener, self.keep_closed, self.spool)
        stream.book.ghosts.ghost_window = self.options.ghost_window
        self.streams.append(stream)
        return stream

    def feed(self, stream: Stream, lineno: int, text: str) -> None:
        """One physical line (without its newline), in order."""
        self.feed_lines(stream, lineno, [text])

    def feed_lines(self, stream: Stream, first_lineno: int, lines: Sequence[str]) -> None:
        """Consecutive physical lines, numbered from ``first_lineno``. Any batching gives the same answer."""
        if lines:
            self.feed_block(stream, first_lineno, ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))

    def feed_block(self, stream: Stream, first_lineno: int, block: bytes, start: int = 0,
                   end: int | None = None) -> int:
        """Consecutive complete lines as bytes, each ending in ``\\n``: ``block[start:end]`` (what
        `LineFramer.feed_spans` gives, read in place), numbered from ``first_lineno``. Any cut into
        blocks gives the same answer. Returns the number of lines."""
        end = len(block) if end is None else end
        if end <= start:
            return 0
        if stream.reading in (Reading.UNDECIDED, Reading.NEWEST_FIRST):
            piece = block[start:end]
            count = piece.count(b"\n")
            stream.buffered.append((first_lineno, piece))
            stream.buffered_lines += count
            if stream.reading is Reading.UNDECIDED and stream.buffered_lines >= SNIFF_LINES:
                self.decide(stream)
            return count
        return self._read(stream, first_lineno, block, start, end)

    def decide(self, stream: Stream) -> None:
        """Pick the stream's reading from its first lines (called by itself after SNIFF_LINES lines, at
        the end of input, or by a live reader whose input went quiet before that many lines)."""
        if stream.reading is not Reading.UNDECIDED:
            return
        first_lineno = stream.buffered[0][0] if stream.buffered else 1
        sample = split_lines(b"".join(block for _, block in stream.buffered[:SNIFF_LINES]))[:SNIFF_LINES]
        records = [parse_line(text) for text in sample]  # once: the three questions below all need them
        if _newest_first(sample, records):
            stream.reading = Reading.NEWEST_FIRST
            return
        stream.reading = Reading.MULTI_LINE if needs_line_by_line(sample, records) else Reading.PER_LINE
        stream.dual_printing = any(_KEYED_JSON.search(text) for text in sample)
        stream.odd_by_automaton = odd_by_automaton(sample)
        stream.wrappers = () if stream.odd_by_automaton else wrapper_prefixes(sample)
        if stream.reading is Reading.PER_LINE:
            # the first dated line is examined too: it dates the time-only lines that may follow it
            stream.anchor_line = next((first_lineno + i for i, record in enumerate(records)
                                       if record.time is not None), 0)
        if stream.on_decided is not None:
            decided, stream.on_decided = stream.on_decided, None
            decided()
        buffered, stream.buffered, stream.buffered_lines = stream.buffered, [], 0
        for lineno, block in buffered:
            self._read(stream, lineno, block, 0, len(block))

    def flush(self, stream: Stream) -> None:
        """A live input went quiet: release a held multi-line record and a held bare hit."""
        if stream.reading is Reading.MULTI_LINE:
            for item in stream.assembler.flush():
                self._examine(stream, item.line, item.text, item.record)
        self._release_bare(stream)

    def advance_clock(self, stream: Stream, log_now: dt.datetime, proof: str | None = None) -> None:
        """Live only: log time on this stream has reached at least ``log_now`` (estimated from the wall
        clock, or read off a line not examined). Open episodes silent past the window are stalled, and
        the silence proved is kept. ``proof`` says how (for the episode's note)."""
        stream.book.on_clock(log_now, proof=proof or "log time")

    def peek_time(self, stream: Stream, text: str) -> dt.datetime | None:
        """The log time of a line, read with the stream's context but changing nothing (for `watch`)."""
        return stream.clock.resolve(parse_line(text).stamp(), peek=True)

    def last_log_time(self, stream: Stream) -> dt.datetime | None:
        return stream.clock.now

    def finish(self, stream: Stream) -> None:
        """End of input: read what is buffered, find the last time, judge what is still open."""
        if stream.finished:
            return
        stream.finished = True
        self.decide(stream)
        if stream.reading is Reading.NEWEST_FIRST:
            buffered, stream.buffered = stream.buffered, []
            stream.reading, stream.reversed = Reading.MULTI_LINE, True
            first = buffered[0][0] if buffered else 1
            lines = split_lines(b"".join(block for _, block in buffered))
            for lineno in range(first + len(lines) - 1, first - 1, -1):
                self._read_lines(stream, lineno, [lines[lineno - first]])
        for item in stream.assembler.finish():
            self._examine(stream, item.line, item.text, item.record)
        self._release_bare(stream)
        self._read_tail_time(stream)
        stream.clock.close()
        if stream.read_error:
            stream.book.note_open(f"the input was cut short by a read error after line {stream.lines}: "
                                  "judged as if the log ended there")
        stream.book.finish(stream.clock.now)

    def open_episodes(self) -> list[Episode]:
        return [ep for stream in self.streams for ep in stream.book.open.values()]

    def episodes(self) -> Sequence[Episode]:
        """Closed episodes in input order, then line order (a sequence that reads spilled ones back)."""
        order = {stream.name: i for i, stream in enumerate(self.streams)}
        found = [(order[stream.name], entry) for stream in self.streams for entry in stream.book.closed]
        found.sort(key=lambda item: (item[0], item[1].line))
        return in_order([entry for _, entry in found], self.spool)

    def summary(self) -> Summary:
        return summarize([stream.stats() for stream in self.streams], self.options.window)

    # -- reading ---------------------------------------------------------------------------------

    def _read(self, stream: Stream, first_lineno: int, block: bytes, start: int, end: int) -> int:
        if stream.reading is Reading.MULTI_LINE:
            lines = split_lines(block[start:end])
            self._read_lines(stream, first_lineno, lines)
            return len(lines)
        return self._read_block(stream, first_lineno, block, start, end)

    def _read_lines(self, stream: Stream, first_lineno: int, lines: Sequence[str]) -> None:
        """Records that may span lines: every line is assembled and examined."""
        stream.lines += len(lines)
        for lineno, text in zip(itertools.count(first_lineno), lines, strict=False):
            if text == TOO_LONG:
                stream.unparsed["too long"] += 1
                continue
            for item in stream.assembler.push(lineno, text):
                self._examine(stream, item.line, item.text, item.record)

    def _read_block(self, stream: Stream, first_lineno: int, buf: bytes, start: int, end: int) -> int:
        """One record per line, ``buf[start:end]`` read in place: examine only the lines holding a
        pattern literal (and the first dated line); count the others, and parse only those whose start
        fits no known shape (`lkwedge.detect.prefilter.block_facts`)."""
        anchor = stream.anchor_line - first_lineno if stream.anchor_line >= first_lineno else -1
        facts = block_facts(self.prefilter, buf, start, end, stream.odd_by_automaton, anchor, stream.wrappers)
        return self.apply(stream, first_lineno, facts)

    def apply(self, stream: Stream, first_lineno: int, facts: BlockFacts) -> int:
        """Examine, in order, the candidates of lines numbered from ``first_lineno`` (found here or by
        a child process reading the same file further on). Returns the number of lines."""
        for reason, count in facts.unparsed.items():
            stream.unparsed[reason] += count
        for at, raw, activity_only, literals in facts.candidates:
            if raw == TOO_LONG_BYTES or (activity_only and self._idle_activity(stream, raw)):
                continue
            text = line_text(raw)
            record = parse_line(text)
            if not record.parsed:
                stream.unparsed[record.reason or "unknown format"] += 1
            self._examine(stream, first_lineno + at, text, record, literals)
        stream.lines += facts.lines
        stream.tail.extend(zip(itertools.count(first_lineno + facts.lines - len(facts.tail)), facts.tail))
        return facts.lines

    @staticmethod
    def _idle_activity(stream: Stream, raw: bytes) -> bool:
        """Job activity (the many metrics lines of an agents log) matters only to an open episode: with
        none open, or none for the line's job, it is not examined (found without parsing the line).
        The ghost rule needs two more: the input's first activity line, and a job watched after its
        reconnect claimed success (lkwedge.detect.ghost)."""
        ghosts = stream.book.ghosts
        if not ghosts.media_seen or ghosts.watches:
            watched = job_id(raw)
            if not ghosts.media_seen or watched is None or f"job:{watched}" in ghosts.watches:
                return False
        if not stream.book.open:
            return True
        job = job_id(raw)
        return job is not None and f"job:{job}" not in stream.book.open

    def _read_tail_time(self, stream: Stream) -> None:
        """One record per line: the last timed line of the input ends the log's time."""
        for lineno, raw in reversed(stream.tail):
            if lineno <= stream.last_examined:
                return
            text = line_text(raw)
            if not text.strip():
                continue
            record = parse_line(text)
            if not record.parsed and unparsed_reason(text) is None and raw != TOO_LONG_BYTES:
                stream.unparsed[record.reason or "unknown format"] += 1  # e.g. a last line cut mid-write
            if record.has_time() and stream.clock.resolve(record.stamp(), peek=True) is not None:
                self._move_clock(stream, lineno, text, stream.clock.resolve(record.stamp()))
                return

    # -- one record ------------------------------------------------------------------------------

    def _examine(self, stream: Stream, lineno: int, text: str, record: Record,
                 literals: set[int] | None = None) -> None:
        stream.last_examined = max(stream.last_examined, lineno)
        if stream.bare is not None and lineno - stream.bare.hit.line > DUP_LINES:
            self._release_bare(stream)
        before = stream.clock.now
        if record.blank_time and not record.has_time():
            when, rejected = stream.last_record_time, False  # Rich leaves an unchanged time column blank
        else:
            when, rejected = stream.clock.accept(stream.clock.resolve(record.stamp()))
        if rejected:
            stream.book.note_open(f"ignored a clock jump at line {lineno}")
        if when is not None:
            stream.last_record_time = when
        if literals or (literals is None and self.patterns.is_candidate(record.message)):
            match = self.patterns.match(record.message, record.level, literals)
            if match is not None:
                self._on_match(stream, Hit(match, "", lineno, when, text, record.job, record.pid, record.room,
                                           record.room_id, message=record.message), record)
        if when is not None and stream.clock.now == when and when != before:
            stream.book.on_clock(when, lineno, text)

    def _move_clock(self, stream: Stream, lineno: int, text: str, when: dt.datetime | None) -> None:
        when, rejected = stream.clock.accept(when)
        if rejected:
            stream.book.note_open(f"ignored a clock jump at line {lineno}")
        elif when is not None and stream.clock.now == when:
            stream.book.on_clock(when, lineno, text)

    def _on_match(self, stream: Stream, hit: Hit, record: Record) -> None:
        role = hit.match.pattern.role
        if role == "meta" and record.job:
            stream.job_rooms[record.job] = (record.room, record.room_id)
            if len(stream.job_rooms) > MAX_JOB_ROOMS:  # jobs whose end we never saw: drop the oldest
                del stream.job_rooms[next(iter(stream.job_rooms))]
        self._key(stream, hit, record)
        if record.job and role == "teardown":
            stream.job_rooms.pop(record.job, None)  # the job ended: forget it (after keying this line)
        message = record.message.strip()
        # A record printed twice (a plain basicConfig copy, without job fields, beside the agents JSON
        # copy) is one record: where JSON records carry job fields, a hit without them waits a few
        # lines for its keyed twin.
        keyed = hit.job is not None or hit.pid is not None or not stream.dual_printing
        bare = stream.bare
        if keyed:
            if bare is not None and _twins(bare.hit, bare.message, hit, message):
                stream.bare = None
                stream.duplicates += 1
            else:
                self._release_bare(stream)
            stream.recent.append((hit, message))
            stream.book.on_hit(hit)
            return
        if any(_twins(twin, m, hit, message) for twin, m in stream.recent):
            stream.duplicates += 1
            return
        self._release_bare(stream)
        stream.bare = _BareHit(hit, message)

    def _release_bare(self, stream: Stream) -> None:
        if stream.bare is not None:
            bare, stream.bare = stream.bare, None
            stream.book.on_hit(bare.hit)

    def _key(self, stream: Stream, hit: Hit, record: Record) -> None:
        """Key a hit: by job; a pid-only line by the one open episode of a job in that pid; else by pid,
        service or the file."""
        if record.job:
            hit.key = f"job:{record.job}"
            if hit.room is None or hit.room_id is None:
                known_room, known_id = stream.job_rooms.get(record.job, (None, None))
                hit.room, hit.room_id = hit.room or known_room, hit.room_id or known_id
            return
        if record.pid is not None:
            owners = [ep for ep in stream.book.open.values() if ep.pid == record.pid and ep.job]
            if owners:
                owner = max(owners, key=operator.attrgetter("line"))
                hit.key, hit.job = owner.key, owner.job
                hit.room, hit.room_id = hit.room or owner.room, hit.room_id or owner.room_id
                if len(owners) > 1:
                    owner.remarks.append(f"line {hit.line} (pid {record.pid}, no job id) was ambiguous "
                                         f"between {len(owners)} jobs of that pid; taken as this one")
                return
            hit.key = f"pid:{record.pid}"
            return
        hit.key = f"svc:{record.svc}" if record.svc else stream.name


# ---- scan: saved inputs ---------------------------------------------------------------------------

ProgressCallback = Callable[[int, int], None]


def scan(paths: Sequence[str], options: ScanOptions | None = None,
         on_progress: ProgressCallback | None = None, listener: Listener | None = None,
         jobs: int = 1) -> ScanResult:
    """Read saved logs to the end and return every episode with its verdict. With ``jobs`` > 1 and
    several files (and no listener), files are read by that many processes; results keep input order.
    With ``jobs`` > 1 and one file, a big file's second part is prefiltered by a second process."""
    options = options or ScanOptions()
    inputs = [describe(path) for path in paths]  # fail fast on a missing file, before any output
    total = sum(source.size or 0 for source in inputs)
    files = [source for source in inputs if source.path is not None]
    if jobs > 1 and len(files) > 1 and len(files) == len(inputs) and listener is None:
        return _scan_in_processes(inputs, options, on_progress, total, jobs)
    detector = Detector(options, listener)
    done = 0
    for source in inputs:  # one file at a time: a big one may still use a second process (split)
        _scan_one(detector, source, on_progress, done, total, split=jobs > 1)
        done += source.size or 0
    return ScanResult(detector.episodes(), detector.summary())


def _scan_one(detector: Detector, source: Input, on_progress: ProgressCallback | None, done: int,
              total: int, split: bool = False) -> Stream:
    stream = detector.stream(source.name, source.mtime)
    progress = None if on_progress is None else (lambda position: on_progress(done + position, total))
    read_input(detector, stream, source, progress, split=split)
    detector.finish(stream)
    return stream


def read_input(detector: Detector, stream: Stream, source: Input,
               on_position: Callable[[int], None] | None = None,
               keep_going: Callable[[], bool] = lambda: True, split: bool = False) -> None:
    """Feed a saved input to its stream, block by block (what `scan` and `watch --once` do).

    An input that fails part-way (a damaged gzip, an I/O error) keeps what was read:
    ``stream.read_error`` says why, and the other inputs are still read (the command reports it and
    exits 2 at the end). ``split``: a big plain file read one record per line may have its second part
    prefiltered by a forked child (`lkwedge.detect.split`), on the other core; the answer is the same."""
    lineno = 1
    framer = LineFramer(detector.options.max_line)
    child: split_file.Child | None = None
    stop_at: int | None = None  # this process reads up to here while the child reads the rest
    position = 0
    try:
        with open_binary(source.path, source.name) as raw:
            binary = _UpToDamage(raw)

            def fork_child() -> None:
                """The reading is known and nothing is examined yet: the sooner the child starts, the
                more of its work overlaps this process's first examinations (regexes compile then)."""
                nonlocal child, stop_at
                if stream.reading is Reading.PER_LINE and split_file.possible(
                        source.path, binary.gzipped, position, source.size):
                    fd = raw.fileno()
                    child = split_file.fork(
                        fd, position, source.size,  # type: ignore[arg-type]
                        lambda start, emit: _prefilter_from(detector, stream, fd, start, emit))
                    stop_at = None if child is None else child.start

            if split and stream.reading is Reading.UNDECIDED:
                stream.on_decided = fork_child
            try:
                while True:
                    want = SCAN_CHUNK if stop_at is None else min(SCAN_CHUNK, stop_at - position)
                    data = read_some(binary, source.name, want) if want > 0 else b""  # type: ignore[arg-type]
                    if not data:
                        if child is None:
                            break
                        if position < stop_at:  # type: ignore[operator]
                            # the file shrank under us (truncated): end here, as one reader would,
                            # rather than splice on what the child read of the old content
                            child.abandon()
                            child = None
                            break
                        for facts in child.frames():
                            lineno += detector.apply(stream, lineno, facts)
                            if not keep_going():
                                return
                        resume_at, child, stop_at = child.resume_at, None, None
                        if resume_at is None:
                            break
                        raw.seek(resume_at)  # the child failed: read on from the end of its last frame
                        position = resume_at
                        continue
                    position += len(data)
                    for buf, start, end in framer.feed_spans(data):
                        lineno += detector.feed_block(stream, lineno, buf, start, end)
                    if on_position is not None:
                        on_position(min(source.size or 0, _tell(raw)))
                    if not keep_going():
                        return
            finally:
                stream.on_decided = None
                if child is not None:
                    child.abandon()
    except InputError as exc:
        stream.read_error = str(exc)
    detector.feed_block(stream, lineno, framer.finish_block())


def _prefilter_from(detector: Detector, stream: Stream, fd: int, start: int, emit: split_file.Emit) -> None:
    """In the child: the facts of the file open as ``fd`` from line start ``start`` to its end, framed as
    the parent frames them, handed to ``emit`` a few MiB of input at a time with the offset of the line
    start that follows them (where the parent would read on if the child failed later)."""
    framer = LineFramer(detector.options.max_line)
    facts = BlockFacts(0, [], {}, [])
    pending, position, line_start = 0, start, start
    for data in split_file.pread_chunks(fd, start, SCAN_CHUNK):
        for buf, begin, end in framer.feed_spans(data):
            facts.extend(block_facts(detector.prefilter, buf, begin, end, stream.odd_by_automaton,
                                     wrappers=stream.wrappers))
        last_newline = data.rfind(b"\n")
        if last_newline >= 0:  # the facts hold every line up to here, and nothing after it
            line_start = position + last_newline + 1
        position += len(data)
        pending += len(data)
        if pending >= SPOOL_EVERY:
            emit(facts, line_start)
            facts, pending = BlockFacts(0, [], {}, []), 0
    last = framer.finish_block()
    if last:
        facts.extend(block_facts(detector.prefilter, last, 0, len(last), stream.odd_by_automaton,
                                 wrappers=stream.wrappers))
    emit(facts, position)


class _UpToDamage:
    """Reads a gzip stream so that damage costs only what follows it: ``GzipFile.read(n)`` drops what it
    decompressed when the stream breaks before ``n`` bytes, so blocks are gathered with ``read1`` and the
    error is raised on the next read, after everything before it was delivered."""

    def __init__(self, binary: BinaryIO) -> None:
        self._binary = binary
        self.gzipped = is_gzip_file(binary)
        self._error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        if not self.gzipped or size < 0:
            return self._binary.read(size)
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        got = 0
        try:
            while got < size:
                data = self._binary.read1(size - got)  # type: ignore[attr-defined]
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except (EOFError, OSError) as exc:  # gzip.BadGzipFile is an OSError
            if not parts:
                raise
            self._error = exc
        return b"".join(parts)


def _scan_file(source: Input, options: ScanOptions) -> tuple[list[Packed], StreamStats]:
    """In a worker: one file's episodes, pickled here (in parallel) for the parent's spool."""
    detector = Detector(options)
    stream = _scan_one(detector, source, None, 0, 0)
    return [pack(ep) for ep in detector.episodes()], stream.stats()


def _scan_in_processes(inputs: Sequence[Input], options: ScanOptions, on_progress: ProgressCallback | None,
                       total: int, jobs: int) -> ScanResult:
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spool = EpisodeSpool()
    entries: list[Entry] = []
    stats: list[StreamStats] = []
    done = 0
    gc.freeze()  # the workers' collections then skip what they inherit (no copy-on-write of those pages)
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(inputs)),
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            for source, (found, stream_stats) in zip(inputs, pool.map(_scan_file, inputs,
                                                                     [options] * len(inputs)), strict=True):
                for packed in found:
                    spool.append_packed(entries, packed)
                stats.append(stream_stats)
                done += source.size or 0
                if on_progress is not None:
                    on_progress(done, total)
    finally:
        gc.unfreeze()  # a library caller's objects are collected as before
    return ScanResult(in_order(entries, spool), summarize(stats, options.window))


def _tell(binary: object) -> int:
    raw = getattr(binary, "fileobj", binary)
    try:
        return int(raw.tell())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return 0


_KEYED_JSON = lazyre.compile(r'^\s*\{.*\\?"(?:job_id|pid)\\?": ?\S')


def _twins(a: Hit, a_message: str, b: Hit, b_message: str) -> bool:
    """The same record printed twice: same message, a few lines apart, and (if both have one) the same
    time within a second."""
    if a_message != b_message or abs(b.line - a.line) > DUP_LINES:
        return False
    if a.time is not None and b.time is not None:
        return abs((a.time - b.time).total_seconds()) <= 1.0
    return True


def needs_line_by_line(sample: list[str], records: list[Record]) -> bool:
    """Multi-line records (Rich console rows, CRI partials, display-time lines) need every line. Other
    indented lines (a Python traceback, a pretty-printed dict) are records of their own. ``records``:
    the sample's lines parsed."""
    for line, record in zip(sample, records, strict=True):
        if not line.strip() or line == TOO_LONG:
            continue
        if line[0] in " \t" and record.rich:
            return True
        if " stdout P " in line[:48] or " stderr P " in line[:48]:
            return True
        if record.display_time_only:
            return True
    return False


def _newest_first(sample: list[str], records: list[Record]) -> bool:
    times: list[dt.datetime | dt.time] = []
    for line, record in zip(sample, records, strict=True):
        if line == TOO_LONG:
            continue
        if record.time is not None:
            times.append(record.time)
        elif record.time_of_day is not None:
            times.append(record.time_of_day)
    down = up = 0
    for a, b in itertools.pairwise(times):
        if type(a) is not type(b) or (isinstance(a, dt.datetime) and isinstance(b, dt.datetime)
                                      and (a.tzinfo is None) != (b.tzinfo is None)):
            continue
        if b < a:  # type: ignore[operator]
            down += 1
        elif b > a:  # type: ignore[operator]
            up += 1
    return (down >= 2 and up == 0) or (down >= 3 and down > 3 * up)
