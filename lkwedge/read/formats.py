"""One physical log line → a `Record` (log time, level, target, message, job/room fields).

Every format is recognised per line, so a file may mix them. Wrappers (docker compose, journald,
Cloud Logging, Kubernetes CRI, Docker json-file) are peeled first; the line inside is then parsed
as one of the record formats. Multi-line records (Rich console wrapping, CRI partial lines, a log
UI's display-timestamp line) are joined by the detector (`lkwedge.detect.engine`), not here.

This module only runs on lines that may matter (a pattern's literal occurs in them) or on the few
lines sampled for the clock, so clarity wins over micro-optimisation here.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, time, timedelta

import msgspec

from lkwedge import lazyre
from lkwedge.read.clock import Stamp

# ---- record -------------------------------------------------------------------------------------


class Record(msgspec.Struct):
    message: str
    time: datetime | None = None  # date and time as printed; naive when the line gave no zone
    time_of_day: time | None = None  # time-only line: the date comes from the stream's context
    month_day: tuple[int, int] | None = None  # journald short format: month/day (with time_of_day), no year
    from_wrapper: bool = False  # the time is a wrapper's zone-less one (journald prefix, display line)
    wrapper_time_of_day: time | None = None  # a wrapper's local time beside the record's own zoned time
    level: str | None = None  # ERROR | WARN | INFO | DEBUG | TRACE
    target: str | None = None  # Rust module path or Python logger name
    job: str | None = None
    pid: int | None = None
    room: str | None = None
    room_id: str | None = None
    svc: str | None = None  # docker compose service / journald unit: keeps processes apart
    parsed: bool = True  # False when no known format was recognised
    reason: str | None = None  # why not parsed: "unknown format", "bad JSON", "NUL bytes"
    partial: bool = False  # CRI "P" line: continues on the next line
    display_time_only: bool = False  # a log UI's timestamp line that precedes its record
    blank_time: bool = False  # Rich console: time column left blank = same as the previous line
    continuation: bool = False  # Rich console: wrapped tail of the previous record
    rich: bool = False  # a Rich console row (indented): its message may continue on the next lines
    fields: dict[str, object] = {}

    def stamp(self) -> Stamp | None:
        if self.time is None and self.time_of_day is None:
            return None
        return Stamp(self.time, self.time_of_day, self.month_day, self.from_wrapper, self.wrapper_time_of_day)

    def has_time(self) -> bool:
        return self.time is not None or self.time_of_day is not None

    def take_time(self, other: Record, from_wrapper: bool = False) -> None:
        """Use ``other``'s time (a wrapper's) when this record printed none of its own."""
        self.time, self.time_of_day, self.month_day = other.time, other.time_of_day, other.month_day
        self.from_wrapper = from_wrapper or other.from_wrapper


_LEVELS = {
    "ERROR": "ERROR", "ERRO": "ERROR", "ERR": "ERROR", "E": "ERROR", "CRITICAL": "ERROR", "FATAL": "ERROR",
    "WARN": "WARN", "WARNING": "WARN", "WARNI": "WARN", "CRITI": "ERROR", "WRN": "WARN", "W": "WARN",
    "INFO": "INFO", "INF": "INFO", "I": "INFO", "NOTICE": "INFO", "DEFAULT": "INFO",
    "DEBUG": "DEBUG", "DEBU": "DEBUG", "DBG": "DEBUG", "D": "DEBUG", "TRACE": "TRACE",
    "ALERT": "ERROR", "EMERGENCY": "ERROR",
}
# Rich console (agents 1.3.1-1.5.1) truncates the level column to 6: "WARNI…", "ERROR…", "INFO …"
_LEVEL_RX = r"(?:ERROR…?|WARNING|WARNI…|WARN|INFO(?: …)?|DEBUG…?|TRACE|CRITICAL|CRITI…)"


def normalize_level(text: str | None) -> str | None:
    if not text:
        return None
    key = text.replace("…", "").replace("...", "").strip().upper()
    return _LEVELS.get(key, key)


# ---- time helpers -------------------------------------------------------------------------------

_ISO_RX = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"


def parse_iso(text: str) -> datetime | None:
    """ISO-8601 / RFC 3339 with any fraction digits; naive when it names no zone (the clock stage
    reads those in --tz). None when it is no real date."""
    text = text.strip()
    if "." in text or "," in text:
        # fromisoformat accepts up to 6 fraction digits reliably across versions: trim nanoseconds
        m = re.match(r"(.*?[.,]\d{1,6})\d*(.*)$", text)
        if m:
            text = m.group(1) + m.group(2)
    try:
        return datetime.fromisoformat(text.replace(",", "."))
    except (ValueError, OverflowError):
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_epoch(value: float) -> datetime | None:
    """A number of seconds, milliseconds, microseconds or nanoseconds since 1970 (told apart by size)."""
    if not math.isfinite(value) or value <= 0:
        return None
    for scale in (1.0, 1e3, 1e6, 1e9):
        if value / scale < 1e11:  # about year 5138: beyond it, the number is in a finer unit
            try:
                return _EPOCH + timedelta(seconds=value / scale)
            except OverflowError:
                return None
    return None


def parse_time_of_day(text: str) -> time | None:
    try:
        return time.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None


_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}

# ---- wrappers (peeled before the record formats) ------------------------------------------------

_CRI = lazyre.compile(rf"^({_ISO_RX}) (?:stdout|stderr) ([FP]) ?(.*)$")
# kubectl logs --timestamps / docker logs -t: an RFC 3339 (nano) time, one space, then the payload
_RFC3339_PREFIX = lazyre.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (\S.*)$")
_COMPOSE = lazyre.compile(r"^([A-Za-z][\w.-]*)\s+\| ?(.*)$")
_JOURNALD = lazyre.compile(
    r"^(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?)|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)))"
    r" \S+ ([\w.@/-]+?)(?:\[(\d+)\])?: (.*)$"
)
_CLOUD = lazyre.compile(
    rf"^(DEFAULT|DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY) ({_ISO_RX}) (.*)$"
)

# ---- record formats -----------------------------------------------------------------------------

_ENV_LOGGER = lazyre.compile(r"^\[(\d{4}-\d\d-\d\dT[^\s\]]+)\s+([A-Z]+)\s+([^\]\s]+)\] ?(.*)$")
_TRACING = lazyre.compile(rf"^({_ISO_RX})\s+([A-Z]+)\s+([\w:.]+?):\s(.*)$")
_ASCTIME = lazyre.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[,.]\d+)?) -? ?(.*)$")
_LEVEL_NAME_MSG = lazyre.compile(rf"^({_LEVEL_RX})\s+(\S+) - (.*)$")  # agents dev: LEVEL name - msg
_NAME_LEVEL_MSG = lazyre.compile(rf"^(\S+) - ({_LEVEL_RX}) - (.*)$")  # name - LEVEL - msg
_BASIC_CONFIG = lazyre.compile(r"^(CRITICAL|ERROR|WARNING|INFO|DEBUG):([\w.]+):(.*)$")
_TIME_ONLY = lazyre.compile(rf"^\s*(\d\d:\d\d:\d\d(?:[.,]\d+)?)\s+({_LEVEL_RX})\s+(.*)$")
_RICH_BLANK_TIME = lazyre.compile(rf"^\s{{4,}}({_LEVEL_RX})\s+(.*)$")
_DISPLAY_TIME = lazyre.compile(rf"^\s*({_ISO_RX}|\d\d:\d\d:\d\d(?:[.,]\d+)?)\s*$")
# Python forwarder of livekit-rtc: "<target>:<line>:<module_path> - <msg>"
_FORWARDED = lazyre.compile(r"^([a-z_][\w]*(?:::[\w]+)*):(\d+):([\w:…]+) - (.*)$", re.S)
# time-only / Rich rest: "[logger ]<target>[:line:module] - msg" or "<target> msg"
# (Rich middle-truncates long tokens with "…", so both columns may contain it)
_REST_DASH = lazyre.compile(r"^(?:([\w.…]+)\s+)?([a-z_][\w]*(?:::[\w]+)*)(?::\d+:[\w:…]*)? - (.*)$", re.S)
_REST_TARGET = lazyre.compile(r"^(?:([\w.…]+)\s+)?([a-z_][\w]*(?:::[\w]+)+)\s+(.*)$", re.S)
_REST_LOGGER = lazyre.compile(r"^([\w.…]+)\s{1,}(.*)$", re.S)
_TRAILING_EXTRA = lazyre.compile(r"\s(\{\".*\})\s*$")
_ANSI = lazyre.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

#: first characters of the formats that start with a timestamp, a bracket, JSON or Rich indentation
_SHAPE_FIRST = frozenset("[{0123456789 \t\r\x1b")


def unparsed_reason(line: str) -> str | None:
    """A cheap stand-in for ``parse_line(line).reason``, used to count unparsed lines that are never
    parsed: lines that start like a known format count as records. Lines starting with a letter
    (wrappers, basicConfig) are rare enough to parse."""
    if not line or line[0] in _SHAPE_FIRST:
        return None
    return parse_line(line).reason


def parse_line(line: str) -> Record:
    """Parse one physical line (without its newline). Never raises: a line that is no record comes
    back with ``parsed=False`` and a ``reason``."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "\x00" in line:  # copytruncate leaves a run of NULs before the next record
        line = line.replace("\x00", "")
        if not line.strip():
            return Record("", parsed=False, reason="NUL bytes")
    line = line.rstrip("\r\n").lstrip("\r")
    if not line.strip():
        return Record("")  # a blank line: neither a record with content nor an unparsed one
    try:
        return _parse(line, depth=0)
    except RecursionError:
        return Record(line[:200], parsed=False, reason="bad JSON")


def _parse(line: str, depth: int) -> Record:
    first = line[:1]
    if first == "{":
        return _parse_json(line, depth)
    if first == "[":
        m = _ENV_LOGGER.match(line)
        if m:
            return split_forwarded(Record(m.group(4), time=parse_iso(m.group(1)),
                                          level=normalize_level(m.group(2)), target=m.group(3)))
    if first.isdigit():
        return _parse_digit_start(line, depth)
    if first.isspace():
        stripped = line.lstrip()
        if stripped[:1] == "{":  # console copies (CloudWatch and others) indent JSON records
            record = _parse_json(stripped, depth)
            if record.parsed and ("message" in record.fields or "msg" in record.fields):
                return record
        return _parse_indented(line)
    if depth < 3:
        wrapped = _parse_wrapper(line, depth)
        if wrapped is not None:
            return wrapped
    m = _BASIC_CONFIG.match(line)
    if m:
        return split_forwarded(Record(m.group(3), level=normalize_level(m.group(1)), target=m.group(2)))
    return Record(line, parsed=False, reason="unknown format")


def _parse_digit_start(line: str, depth: int) -> Record:
    if depth < 3:
        m = _CRI.match(line)
        if m:
            inner = _parse(m.group(3), depth + 1)
            inner.partial = m.group(2) == "P"
            _wrapper_time(inner, parse_iso(m.group(1)))
            return inner
    m = _TRACING.match(line)
    if m and "T" in m.group(1):
        return split_forwarded(Record(m.group(4), time=parse_iso(m.group(1)),
                                      level=normalize_level(m.group(2)), target=m.group(3)))
    m = _ASCTIME.match(line)
    if m:
        when, rest = parse_iso(m.group(1)), m.group(2)
        m2 = _LEVEL_NAME_MSG.match(rest)
        if m2:
            level, target, message = m2.group(1), m2.group(2), m2.group(3)
            return _with_extra(split_forwarded(Record(message, time=when, level=normalize_level(level),
                                                      target=target)))
        m2 = _NAME_LEVEL_MSG.match(rest)
        if m2:
            target, level, message = m2.group(1), m2.group(2), m2.group(3)
            return _with_extra(split_forwarded(Record(message, time=when, level=normalize_level(level),
                                                      target=target)))
        if not rest.strip():
            return Record("", time=when, display_time_only=True)
        return split_forwarded(Record(rest, time=when))
    m = _TIME_ONLY.match(line)
    if m:
        return _rest_record(m.group(3), level=m.group(2), time_of_day=parse_time_of_day(m.group(1)))
    m = _DISPLAY_TIME.match(line)
    if m:
        text = m.group(1)
        if ":" in text[:3]:
            return Record("", time_of_day=parse_time_of_day(text), display_time_only=True)
        return Record("", time=parse_iso(text), display_time_only=True)
    if depth < 3:
        wrapped = _parse_wrapper(line, depth)
        if wrapped is not None:
            return wrapped
        m = _RFC3339_PREFIX.match(line)
        if m:
            inner = _parse(m.group(2), depth + 1)
            _wrapper_time(inner, parse_iso(m.group(1)))
            inner.parsed, inner.reason = True, None
            return inner
    return Record(line, parsed=False, reason="unknown format")


def _wrapper_time(inner: Record, when: datetime | None) -> None:
    """A zoned wrapper time (CRI, kubectl/docker -t, Cloud Logging, Docker json-file) stands in for
    a record that printed no time of its own."""
    if not inner.has_time() and when is not None:
        inner.time = when


def _parse_indented(line: str) -> Record:
    """Rich console output: a record with its time column, a blank time, or a wrapped tail."""
    m = _TIME_ONLY.match(line)
    if m:
        rec = _rest_record(m.group(3), level=m.group(2), time_of_day=parse_time_of_day(m.group(1)))
        rec.rich = True
        return rec
    m = _RICH_BLANK_TIME.match(line)
    if m:
        rec = _rest_record(m.group(2), level=m.group(1))
        rec.blank_time = rec.rich = True
        return rec
    m = _DISPLAY_TIME.match(line)
    if m:
        return _parse_digit_start(line.strip(), depth=3)
    return Record(line.strip(), continuation=True)


def _rest_record(rest: str, level: str, time_of_day: time | None = None) -> Record:
    rec = Record(rest, time_of_day=time_of_day, level=normalize_level(level))
    m = _REST_DASH.match(rest) or _REST_TARGET.match(rest)
    if m:
        rec.target, rec.message = m.group(2), m.group(3)
    else:
        m = _REST_LOGGER.match(rest)
        if m:
            rec.target, rec.message = m.group(1), m.group(2)
    return _with_extra(rec)


def _parse_wrapper(line: str, depth: int) -> Record | None:
    m = _CLOUD.match(line)
    if m:
        inner = _parse(m.group(3), depth + 1)
        _wrapper_time(inner, parse_iso(m.group(2)))
        inner.level = inner.level or normalize_level(m.group(1))
        inner.parsed, inner.reason = True, None
        return inner
    m = _JOURNALD.match(line)
    if m:
        inner = _parse(m.group(7), depth + 1)
        if m.group(4):
            _wrapper_time(inner, parse_iso(m.group(4)))
        else:  # short format: the host's local time, no year, no zone
            month, day = _MONTHS.get(m.group(1)), int(m.group(2))
            tod = parse_time_of_day(m.group(3))
            if month and tod:
                if not inner.has_time():
                    inner.time_of_day, inner.month_day, inner.from_wrapper = tod, (month, day), True
                elif inner.time is not None and inner.time.tzinfo is not None:
                    inner.wrapper_time_of_day = tod
        inner.svc = inner.svc or m.group(5)
        if inner.pid is None and m.group(6):
            inner.pid = int(m.group(6))
        inner.parsed, inner.reason = True, None
        return inner
    m = _COMPOSE.match(line)
    if m:
        inner = _parse(m.group(2), depth + 1)
        inner.svc = inner.svc or m.group(1)
        return inner
    return None


def _parse_json(line: str, depth: int) -> Record:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return Record(line, parsed=False, reason="bad JSON")
    if not isinstance(obj, dict):
        return Record(line, parsed=False, reason="bad JSON")
    if "log" in obj and "message" not in obj and depth < 3:  # Docker json-file
        inner = _parse(str(obj["log"]).rstrip("\n"), depth + 1)
        if isinstance(obj.get("time"), str):
            _wrapper_time(inner, parse_iso(obj["time"]))
        inner.parsed, inner.reason = True, None
        return inner
    if "MESSAGE" in obj and "message" not in obj and depth < 3:  # `journalctl -o json`
        return _journald_json(obj, depth)
    message = obj.get("message", obj.get("msg", ""))
    rec = Record(str(message))
    stamp = obj.get("timestamp") or obj.get("time") or obj.get("ts")
    if isinstance(stamp, str):
        rec.time = parse_iso(stamp)
    elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            rec.time = parse_epoch(float(stamp))
        except OverflowError:  # an integer too big for a float
            rec.time = None
    rec.level = normalize_level(str(obj.get("level") or obj.get("levelname") or "")) or None
    target = obj.get("name") or obj.get("logger")
    rec.target = target if isinstance(target, str) else None
    _apply_fields(rec, obj)
    return split_forwarded(rec)


def _journald_json(obj: dict[str, object], depth: int) -> Record:
    """A journal entry: MESSAGE is the program's own line (a str, or a byte list when not UTF-8); the
    time is __REALTIME_TIMESTAMP (µs since the epoch, UTC) unless the inner line has a full date."""
    raw = obj["MESSAGE"]
    if isinstance(raw, list):
        raw = bytes(b for b in raw if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    inner = _parse(str(raw).rstrip("\n"), depth + 1)
    stamp = obj.get("__REALTIME_TIMESTAMP")
    if not inner.has_time() and isinstance(stamp, str) and stamp.isdigit() and len(stamp) < 20:
        inner.time = parse_epoch(float(stamp))  # microseconds, told apart by size
    unit = obj.get("_SYSTEMD_UNIT") or obj.get("SYSLOG_IDENTIFIER")
    if isinstance(unit, str):
        inner.svc = inner.svc or unit
    inner.parsed, inner.reason = True, None
    return inner


def _apply_fields(rec: Record, obj: dict[str, object]) -> None:
    job = obj.get("job_id")
    if isinstance(job, str) and job:
        rec.job = job
    pid = obj.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool):
        rec.pid = pid
    room = obj.get("room") or obj.get("room_name")  # agents <= 1.2 logs room_name
    if isinstance(room, str) and room:
        rec.room = room
    room_id = obj.get("room_id")
    if isinstance(room_id, str) and room_id:
        rec.room_id = room_id
    rec.fields.update(obj)


def split_forwarded(rec: Record) -> Record:
    """Split the livekit-rtc forwarder's "<target>:<line>:<module> - msg" out of the message."""
    msg = rec.message
    if "::" in msg[:80] or msg[:7] == "livekit":
        m = _FORWARDED.match(msg)
        if m:
            rec.target, rec.message = m.group(1), m.group(4)
    return rec


def _with_extra(rec: Record) -> Record:
    """Agents dev/console formats append the record's extras as JSON at the end of the line."""
    msg = rec.message
    if msg.endswith("}") and '{"' in msg:
        m = _TRAILING_EXTRA.search(msg)
        if m:
            try:
                extra = json.loads(m.group(1))
            except ValueError:
                return rec
            if isinstance(extra, dict):
                rec.message = msg[: m.start()]
                _apply_fields(rec, extra)
    return rec


def apply_extra_line(rec: Record, text: str) -> bool:
    """Rich prints the extras on the following line when they do not fit; attach them if so."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        extra = json.loads(text)
    except ValueError:
        return False
    if not isinstance(extra, dict):
        return False
    _apply_fields(rec, extra)
    return True
