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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lkwedge.detect.patterns import Pattern, PatternSet
from lkwedge.errors import InputError
from lkwedge.read.formats import Record, parse_line

MARK = "# failJSON:"


@dataclass(frozen=True, slots=True)
class Sample:
    file: Path
    line: int  # 1-based line of the log line (the failJSON line is the one above)
    expect: dict[str, Any]
    text: str


@dataclass(slots=True)
class SampleResult:
    sample: Sample
    matched: list[str]
    problems: list[str] = field(default_factory=list)

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


def record_time(record: Record) -> str | None:
    if record.time is not None:
        return record.time.isoformat()
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
            return want.tzinfo is not None and want == record.time
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
