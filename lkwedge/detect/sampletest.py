"""Pattern samples (fail2ban's ``failregex`` test convention) and their checks.

Each pack ``X.toml`` ships ``X.samples.log``; a ``# failJSON: {...}`` line describes the log line below it:

* ``pattern``: the id that must match (``null``: nothing may match). Exactly one pattern of all packs
  in force may match a sample, so overlapping patterns are caught where they are written.
* ``time``: the log time the line must yield: ISO 8601 for a dated line, ``HH:MM:SS[.ffffff]`` for a
  time-only line, ``null`` for none. Required.
* ``groups`` / ``fields``: named regex groups and `Record` fields that must have these values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from lkwedge.detect.patterns import Pattern, PatternSet
from lkwedge.errors import InputError
from lkwedge.read.formats import Record, parse_line

MARK = "# failJSON:"


class Sample(msgspec.Struct, frozen=True):
    file: Path
    line: int  # 1-based line of the log line (the failJSON line is the one above)
    expect: dict[str, Any]
    text: str


class SampleResult(msgspec.Struct):
    sample: Sample
    matched: list[str]
    problems: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


def sample_file(pack: Path) -> Path:
    return pack.with_name(pack.stem + ".samples.log")


def read_samples(path: Path) -> list[Sample]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read samples {path}: {exc.strerror or exc}") from None
    found = []
    for i, line in enumerate(lines):
        if not line.startswith(MARK):
            continue
        try:
            expect = json.loads(line.removeprefix(MARK))
        except ValueError as exc:
            raise InputError(f"{path}:{i + 1}: failJSON is not valid JSON: {exc}") from None
        if not isinstance(expect, dict) or "pattern" not in expect:
            raise InputError(f"{path}:{i + 1}: failJSON needs a \"pattern\" key")
        if i + 1 >= len(lines):
            raise InputError(f"{path}:{i + 1}: failJSON has no log line below it")
        found.append(Sample(path, i + 2, expect, lines[i + 1]))
    return found


def matching_patterns(patterns: PatternSet, record: Record) -> list[Pattern]:
    """Every pattern (not just the first) that matches the record, honouring ``levels``."""
    return [p for p in patterns.patterns
            if p.literal in record.message
            and not (p.levels is not None and record.level is not None and record.level not in p.levels)
            and p.regex.search(record.message)]


def _zoned(value: dt.datetime) -> dt.datetime:
    # a time printed without a zone is read as UTC (the default of --tz)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def record_time(record: Record) -> str | None:
    if record.time is not None:
        return _zoned(record.time).isoformat()
    if record.time_of_day is not None:
        return record.time_of_day.isoformat()
    return None


def _same_time(record: Record, expected: object) -> bool:
    if expected is None:
        return record.time is None and record.time_of_day is None
    if not isinstance(expected, str):
        return False
    try:
        if record.time is not None:
            want = dt.datetime.fromisoformat(expected)
            return want.tzinfo is not None and want == _zoned(record.time)
        if record.time_of_day is not None:
            return dt.time.fromisoformat(expected) == record.time_of_day
    except ValueError:
        return False
    return False


def check_sample(sample: Sample, patterns: PatternSet) -> SampleResult:
    record = parse_line(sample.text)
    matched = [p.id for p in matching_patterns(patterns, record)] if record.parsed else []
    result = SampleResult(sample, matched)
    problems = result.problems
    want = sample.expect.get("pattern")
    if not record.parsed:
        problems.append("no log format recognised")
    if want is None and matched:
        problems.append(f"should match nothing, matched {', '.join(matched)}")
    elif want is not None and not matched:
        problems.append(f"matched nothing, expected {want}")
    elif want is not None and matched[0] != want and want not in matched:
        problems.append(f"matched {', '.join(matched)}, expected {want}")
    elif want is not None and len(matched) > 1:
        problems.append(f"matched {len(matched)} patterns ({', '.join(matched)}), exactly one must")
    if "time" not in sample.expect:
        problems.append("failJSON has no \"time\" (the expected log time; null for none)")
    elif not _same_time(record, sample.expect["time"]):
        problems.append(f"time is {record_time(record)!r}, expected {sample.expect['time']!r}")
    if want is not None and matched:
        first = patterns.match(record.message, record.level)
        groups = first.groups if first is not None else {}
        for name, value in (sample.expect.get("groups") or {}).items():
            if groups.get(name) != value:
                problems.append(f"group {name} is {groups.get(name)!r}, expected {value!r}")
    for name, value in (sample.expect.get("fields") or {}).items():
        if getattr(record, name, None) != value:
            problems.append(f"field {name} is {getattr(record, name, None)!r}, expected {value!r}")
    return result


# ---- a real log against the patterns (fail2ban-regex's report) --------------------------------------

#: timestamp templates, tried in order on the start of a line (after a wrapper, if any)
TIME_TEMPLATES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("json \"timestamp\"", re.compile(r'"(?:timestamp|time|ts)"\s*:\s*"\d{4}-\d\d-\d\dT')),
    ("[ISO-8601 Z LEVEL target] (env_logger)", re.compile(r"^\[\d{4}-\d\d-\d\dT[\d:.]+Z ")),
    ("YYYY-MM-DD HH:MM:SS,mmm (asctime)", re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")),
    ("ISO-8601 (tracing, CRI, Cloud Logging)", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")),
    ("YYYY-MM-DD HH:MM:SS", re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")),
    ("Mon DD HH:MM:SS (syslog/journald)", re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")),
    ("HH:MM:SS[.mmm] (time only)", re.compile(r"^\s*\d\d:\d\d:\d\d")),
)
EXAMPLES = 5


class LogStats(msgspec.Struct):
    name: str
    lines: int = 0
    unparsed: int = 0
    hits: dict[str, int] = {}  # pattern id -> lines it (first) matched
    overlaps: dict[str, int] = {}  # "a+b" -> lines several patterns matched
    time_templates: dict[str, int] = {}
    near_misses: list[tuple[int, list[str], str]] = []  # line, literal owners, text
    near_miss_count: int = 0
    unparsed_examples: list[tuple[int, str]] = []

    def to_dict(self) -> dict[str, object]:
        return {"log": self.name, "lines": self.lines, "unparsed": self.unparsed, "hits": self.hits,
                "overlaps": self.overlaps, "time_templates": self.time_templates,
                "near_misses": self.near_miss_count,
                "near_miss_examples": [{"line": n, "patterns": ids, "text": t}
                                       for n, ids, t in self.near_misses],
                "unparsed_examples": [{"line": n, "text": t} for n, t in self.unparsed_examples]}


def time_template(line: str, record: Record) -> str:
    if record.time is None and record.time_of_day is None:
        return "no timestamp"
    for name, rx in TIME_TEMPLATES:
        if rx.search(line[:400]):
            return name
    return "other"


def _observe(stats: LogStats, patterns: PatternSet, lineno: int, line: str, record: Record) -> None:
    stats.lines += 1
    if not record.parsed:
        stats.unparsed += 1
        if len(stats.unparsed_examples) < EXAMPLES:
            stats.unparsed_examples.append((lineno, line[:300]))
        return
    template = time_template(line, record)
    stats.time_templates[template] = stats.time_templates.get(template, 0) + 1
    owners = [p.id for p in patterns.patterns if p.literal in record.message]
    if not owners:
        return
    matched = matching_patterns(patterns, record)
    if not matched:
        stats.near_miss_count += 1
        if len(stats.near_misses) < EXAMPLES * 4:
            stats.near_misses.append((lineno, owners, line[:300]))
        return
    first = patterns.match(record.message, record.level)
    if first is not None:
        stats.hits[first.pattern.id] = stats.hits.get(first.pattern.id, 0) + 1
    if len(matched) > 1:
        both = "+".join(p.id for p in matched)
        stats.overlaps[both] = stats.overlaps.get(both, 0) + 1


def analyze_log(name: str, lines: Iterable[str], patterns: PatternSet) -> LogStats:
    """Every record of a log (multi-line records joined as `scan` joins them): what matched, what almost did.

    ``lines`` counts records, not physical lines: a Rich row wrapped over three lines is one record.
    """
    from lkwedge.detect.engine import Detector, Reading, Stream

    stats = LogStats(name)

    class _Observed(Detector):
        def _examine(self, stream: Stream, lineno: int, text: str, record: Record) -> None:
            _observe(stats, patterns, lineno, text, record)
            super()._examine(stream, lineno, text, record)

    detector = _Observed(patterns=patterns)
    stream = detector.stream(name)
    stream.reading = Reading.MULTI_LINE  # every record examined, not only the lines holding a literal
    for lineno, raw in enumerate(lines, 1):
        detector.feed(stream, lineno, raw.rstrip("\n"))
    detector.finish(stream)
    return stats
