"""Which LiveKit SDK wrote this log: python `livekit` (rtc) / livekit-ffi version ranges from evidence.

Evidence, all from lines the detector already examines (never the hot path):
- the Rust source line the Python forwarder writes into each message (``target:LINE:module - msg``),
  looked up in the line table of ``patterns/fingerprints*.toml`` (one row per release band);
- the attempt base (0-based up to ffi 0.12.57, 1-based from 0.12.58);
- ``initializing ffi server v…`` (the exact ffi version);
- wording that exists only in some versions (``[[vocab]]`` rows of the same files).
Every ``patterns/fingerprints*.toml`` is loaded, so a new release band is a data change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import msgspec

from lkwedge import lazyre
from lkwedge.datafile import load_toml
from lkwedge.detect.patterns import builtin_pack_dir
from lkwedge.errors import InputError

Version = tuple[int, ...]
LOW: Version = (0,)
HIGH: Version = (999,)

#: pattern id -> column of the line table
PATTERN_COLUMN = {
    "session-close": "close", "resume-attempt": "resume_attempt", "resume-failed": "resume_failed",
    "restart-attempt": "restart_attempt", "restart-failed": "restart_failed", "give-up": "give_up",
    "recovered": "recovered", "room-disconnected": "room_disconnected", "pc-state-failed": "pc_failed",
}
COLUMNS = tuple(dict.fromkeys(PATTERN_COLUMN.values()))
# "livekit::rtc_engine:474:livekit::rtc_engine - " (Rich may cut the module path: "livekit::r…")
_FORWARDED_LINE = lazyre.compile(r"\b(livekit[\w:]*):(\d{2,5}):[\w:…]* - ")
_FFI_INIT = lazyre.compile(r"initializing ffi server v(\d+(?:\.\d+)+)")
#: the first release where the engine always emits Disconnected after giving up (rust-sdks #1096)
MESSAGES_REMEMBERED = 10_000  # per stream; past it, new messages are read every time (same result)
FFI_DISCONNECT_FIX: Version = (0, 12, 59)
RTC_DISCONNECT_FIX: Version = (1, 1, 9)


def parse_version(text: str) -> Version:
    try:
        return tuple(int(part) for part in text.strip().lstrip("v").split("."))
    except ValueError:
        raise InputError(f"bad version {text!r} in a fingerprint table") from None


def parse_range(text: str) -> tuple[Version, Version]:
    """``"1.0.23-1.0.25"``, ``"1.1.8"`` or ``">=0.12.71"`` → inclusive (low, high)."""
    text = text.strip()
    if text.startswith(">="):
        return parse_version(text[2:]), HIGH
    low, _, high = text.partition("-")
    return parse_version(low), parse_version(high or low)


def show(value: Version) -> str:
    return ".".join("x" if part == 999 else str(part) for part in value)


def show_range(low: Version, high: Version) -> str:
    if high == HIGH:
        return f">={show(low)}"
    if low == LOW:
        return f"<={show(high)}"
    return show(low) if low == high else f"{show(low)}-{show(high)}"


class Band(msgspec.Struct, frozen=True):
    rtc: tuple[Version, Version]
    ffi: tuple[Version, Version]
    lines: dict[str, frozenset[int]]


class VocabRule(msgspec.Struct, frozen=True):
    regex: re.Pattern[str]
    ffi: tuple[Version, Version] | None
    note: str
    rtc: tuple[Version, Version] | None = None  # rows of patterns/fingerprints/*.toml speak in rtc versions


class LineRule(msgspec.Struct, frozen=True):
    """A forwarded ``target:LINE`` whose message starts with ``message``, seen only in ``rtc``."""

    target: str
    line: int
    message: str
    rtc: tuple[Version, Version]


class Table(msgspec.Struct, frozen=True):
    bands: tuple[Band, ...]
    vocab: tuple[VocabRule, ...]
    line_rules: tuple[LineRule, ...] = ()
    target_rules: tuple[tuple[str, tuple[Version, Version]], ...] = ()


#: the message that starts each column of the line table (for band files that list lines per message)
COLUMN_MESSAGES = {
    "received session close": "close", "resuming connection... attempt": "resume_attempt",
    "resuming connection failed": "resume_failed", "restarting connection... attempt": "restart_attempt",
    "restarting connection failed": "restart_failed", "failed to reconnect to the livekit room": "give_up",
    "RtcEngine successfully recovered": "recovered", "isconnected from room": "room_disconnected",
    "pc state failed": "pc_failed",
}
_LOOSE_VERSION = lazyre.compile(r"(>=)?\s*(\d+(?:\.\d+)*)(\.x)?")


def loose_range(text: str) -> tuple[Version, Version]:
    """The first version in ``"1.2.1"``, ``"1.2.x"``, ``">=1.1.12 (ffi >= 0.12.67); ..."`` or
    ``">=1.2.0,<1.3"`` as an inclusive range."""
    m = _LOOSE_VERSION.search(text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    low = parse_version(m.group(2))
    if m.group(1):
        upper = re.search(r"<\s*(\d+(?:\.\d+)*)", text)
        if upper:
            top = parse_version(upper.group(1))
            return low, (*top[:-1], top[-1] - 1, 999) if len(top) > 1 else (top[0] - 1, 999)
        return low, HIGH
    if m.group(3):
        return (*low, 0), (*low, 999)
    return low, low


def _load_band_file(path: Path, data: dict[str, object]) -> Table:
    """patterns/fingerprints/*.toml: one [band] and [[fingerprints]] rows (target_line, target, message)."""
    band = data["band"]
    assert isinstance(band, dict)
    rtc = loose_range(str(band["python_rtc"]))
    ffi_exact = parse_version(str(band["livekit_ffi"]))
    ffi = ((*ffi_exact[:2], 0), (*ffi_exact[:2], 999))  # the band's minor series
    lines: dict[str, set[int]] = {}
    line_rules: list[LineRule] = []
    targets: list[tuple[str, tuple[Version, Version]]] = []
    vocab: list[VocabRule] = []
    rows = data.get("fingerprints", [])
    for row in rows if isinstance(rows, list) else []:
        kind, versions = row.get("kind"), loose_range(str(row.get("versions", band["python_rtc"])))
        if kind == "target_line":
            message = str(row["message"])
            column = next((c for m, c in COLUMN_MESSAGES.items() if m in message), None)
            if column is not None and versions[0] >= rtc[0] and versions[1] <= rtc[1]:
                lines.setdefault(column, set()).add(int(row["line"]))
            line_rules.append(LineRule(str(row["target"]), int(row["line"]), message, versions))
        elif kind == "target":
            targets.append((str(row["target"]), versions))
        elif kind == "message":
            regex = lazyre.compile(str(row["regex"]))
            vocab.append(VocabRule(regex, None, str(row.get("means", "")), versions))
    bands = (Band(rtc, ffi, {c: frozenset(v) for c, v in lines.items()}),)
    return Table(bands, tuple(vocab), tuple(line_rules), tuple(targets))


def _line_set(values: object, where: str) -> frozenset[int]:
    if not isinstance(values, list):
        raise InputError(f"{where}: expected a list of line numbers")
    found: set[int] = set()
    for value in values:
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, str) and "-" in value:
            low, high = (int(x) for x in value.split("-", 1))
            found.update(range(low, high + 1))
        else:
            raise InputError(f"{where}: bad line number {value!r}")
    return frozenset(found)


def load_table(paths: Iterable[Path]) -> Table:
    bands: list[Band] = []
    vocab: list[VocabRule] = []
    line_rules: list[LineRule] = []
    target_rules: list[tuple[str, tuple[Version, Version]]] = []
    for path in paths:
        try:
            data = load_toml(path)
        except (OSError, ValueError) as exc:  # ValueError: tomllib.TOMLDecodeError, or not UTF-8
            raise InputError(f"cannot read fingerprint table {path}: {exc}") from None
        if isinstance(data.get("band"), dict):
            try:
                extra = _load_band_file(path, data)
            except (KeyError, ValueError, TypeError, re.error) as exc:
                raise InputError(f"fingerprint table {path}: {exc}") from None
            bands.extend(extra.bands)
            vocab.extend(extra.vocab)
            line_rules.extend(extra.line_rules)
            target_rules.extend(extra.target_rules)
            continue
        for i, row in enumerate(data.get("band", [])):
            where = f"{path.name} band {i + 1}"
            try:
                lines = {col: _line_set(row[col], f"{where} {col}") for col in COLUMNS if col in row}
                bands.append(Band(parse_range(row["rtc"]), parse_range(row["ffi"]), lines))
            except (KeyError, ValueError) as exc:
                raise InputError(f"{where}: {exc}") from None
        for i, row in enumerate(data.get("vocab", [])):
            try:
                regex = lazyre.compile(row["regex"])
                rule = VocabRule(regex, parse_range(row["ffi"]), str(row.get("note", "")))
                vocab.append(rule)
            except (KeyError, re.error) as exc:
                raise InputError(f"{path.name} vocab {i + 1}: {exc}") from None
    return Table(tuple(bands), tuple(vocab), tuple(line_rules), tuple(target_rules))


def builtin_table_files() -> list[Path]:
    """``patterns/fingerprints*.toml`` (line tables) and ``patterns/fingerprints/*.toml`` (band files)."""
    folder = builtin_pack_dir()
    return sorted(folder.glob("fingerprints*.toml")) + sorted(folder.glob("fingerprints/*.toml"))


@cache
def builtin_table() -> Table:
    return load_table(builtin_table_files())


class SdkGuess(msgspec.Struct):
    """What the evidence so far says; ``None`` bounds mean "no evidence"."""

    rtc: tuple[Version, Version] | None
    ffi: tuple[Version, Version] | None
    basis: list[str]
    conflicts: list[str] = []

    @property
    def known(self) -> bool:
        return self.rtc is not None or self.ffi is not None

    def label(self) -> str:
        if not self.known:
            return "SDK version unknown"
        ffi = "livekit-ffi ?" if self.ffi is None else f"livekit-ffi {show_range(*self.ffi)}"
        return ffi if self.rtc is None else f"{ffi} (python livekit {show_range(*self.rtc)})"

    def disconnects_after_give_up(self) -> bool | None:
        """True: the SDK closes the room after ``failed to reconnect``; False: the room stays Reconnecting
        forever (ffi < 0.12.59); None: the evidence does not say."""
        if self.ffi is not None and self.ffi[0] >= FFI_DISCONNECT_FIX:
            return True
        if self.rtc is not None and self.rtc[0] >= RTC_DISCONNECT_FIX:
            return True
        if self.ffi is not None and self.ffi[1] < FFI_DISCONNECT_FIX:
            return False
        if self.rtc is not None and self.rtc[1] < RTC_DISCONNECT_FIX:
            return False
        return None

    def ffi_at_most(self, version: Version) -> bool:
        """The log is certainly from livekit-ffi <= version (or the rtc wheel that ships it)."""
        return self.ffi is not None and self.ffi[1] <= version

    def to_dict(self) -> dict[str, object] | None:
        if not self.known:
            return None
        return {"label": self.label(),
                "rtc": None if self.rtc is None else show_range(*self.rtc),
                "ffi": None if self.ffi is None else show_range(*self.ffi),
                "basis": list(self.basis), **({"conflicts": list(self.conflicts)} if self.conflicts else {})}


def _intersect(a: tuple[Version, Version], b: tuple[Version, Version]) -> tuple[Version, Version] | None:
    low, high = max(a[0], b[0]), min(a[1], b[1])
    return (low, high) if low <= high else None


def _hull(ranges: Iterable[tuple[Version, Version]]) -> tuple[Version, Version] | None:
    ranges = list(ranges)
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


class Fingerprinter:
    """Accumulates version evidence for one stream. Fed matched lines only."""

    def __init__(self, table: Table | None = None) -> None:
        self._table = table  # the built-in table is read on the first evidence, not before
        self.bands: list[Band] | None = None  # None: no line-number evidence yet
        self.ffi: tuple[Version, Version] | None = None
        self.rtc: tuple[Version, Version] | None = None  # from rtc-worded rules (band files)
        self.basis: list[str] = []
        self.conflicts: list[str] = []
        self._seen: set[str] = set()
        self._cached: SdkGuess | None = None
        self._cached_dict: dict[str, object] | None = None
        self._messages: set[str] = set()  # messages whose wording was read already

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = builtin_table()
        return self._table

    def observe(self, pattern_id: str, message: str, text: str, groups: dict[str, str],
                first_attempt: bool = False) -> None:
        column = PATTERN_COLUMN.get(pattern_id)
        forwarded = _FORWARDED_LINE.search(text) if " - " in text else None  # (" - " is in every match)
        if column is not None and forwarded:
            self._line(column, int(forwarded.group(2)))
        if pattern_id in ("resume-attempt", "restart-attempt") and "n" in groups:
            n = int(groups["n"])
            if n == 0:
                self._constrain((LOW, (0, 12, 57)), "attempts are 0-based (ffi <= 0.12.57)")
            elif n >= 10 or (first_attempt and n == 1):
                self._constrain(((0, 12, 58), HIGH), "attempts are 1-based (ffi >= 0.12.58)")
        if message not in self._messages:  # each constraint counts once: a message seen before adds none
            if len(self._messages) < MESSAGES_REMEMBERED:
                self._messages.add(message)
            self._observe_message(message)
        table = self.table
        if forwarded and table.line_rules:
            target, line = forwarded.group(1), int(forwarded.group(2))
            for lr in table.line_rules:
                if lr.line == line and lr.target == target and lr.message.strip() in message:
                    self._constrain_rtc(lr.rtc, f"{target}:{line}: {lr.message.strip()}")
        head = text[:300]
        for target, rtc in table.target_rules:
            if target in head:
                self._constrain_rtc(rtc, f"target {target}")

    def _observe_message(self, message: str) -> None:
        m = _FFI_INIT.search(message)
        if m:
            exact = parse_version(m.group(1))
            self._constrain((exact, exact), f"initializing ffi server v{m.group(1)}")
        for rule in self.table.vocab:
            if rule.regex.search(message):
                if rule.ffi is not None:
                    self._constrain(rule.ffi, rule.note)
                if rule.rtc is not None:
                    self._constrain_rtc(rule.rtc, rule.note or f"wording {rule.regex.pattern[:40]!r}")

    def _line(self, column: str, line: int) -> None:
        key = f"{column}:{line}"
        if key in self._seen:
            return
        self._seen.add(key)
        pool = self.bands if self.bands is not None else list(self.table.bands)
        matching = [b for b in pool if line in b.lines.get(column, ())]
        if not matching:
            known = any(line in b.lines.get(column, ()) for b in self.table.bands)
            self._cached = None
            self.conflicts.append(f"line :{line}: of {column} "
                                  + ("contradicts earlier lines" if known else "is not in the table"))
            return
        self.bands = matching
        self._cached = None
        self.basis.append(f":{line}: {column.replace('_', ' ')}")

    def _constrain(self, rng: tuple[Version, Version], why: str) -> None:
        if why in self._seen:
            return
        self._seen.add(why)
        new = rng if self.ffi is None else _intersect(self.ffi, rng)
        if new is None:
            self._cached = None
            self.conflicts.append(f"{why} contradicts earlier evidence")
            return
        self.ffi = new
        self._cached = None
        self.basis.append(why)

    def _constrain_rtc(self, rng: tuple[Version, Version], why: str) -> None:
        if why in self._seen:
            return
        self._seen.add(why)
        pool = self.bands if self.bands is not None else list(self.table.bands)
        matching = [b for b in pool if _intersect(b.rtc, rng) is not None]
        if not matching:
            self._cached = None
            self.conflicts.append(f"{why} contradicts earlier evidence")
            return
        self.bands = matching
        self.rtc = rng if self.rtc is None else (_intersect(self.rtc, rng) or self.rtc)
        self._cached = None
        self.basis.append(why)

    def guess(self) -> SdkGuess:
        """What the evidence says; computed again only after new evidence (episodes share it)."""
        if self._cached is None:
            self._cached = self._guess()
            self._cached_dict = self._cached.to_dict()
        return self._cached

    def guess_dict(self) -> dict[str, object] | None:
        """`guess().to_dict()`, one shared object per state of the evidence (treat it as read-only)."""
        self.guess()
        return self._cached_dict

    def _guess(self) -> SdkGuess:
        ffi = self.ffi
        bands = self.bands
        if bands is not None:
            band_ffi = _hull(b.ffi for b in bands)
            assert band_ffi is not None
            ffi = band_ffi if ffi is None else (_intersect(ffi, band_ffi) or ffi)
        elif ffi is not None:
            bands = [b for b in self.table.bands if _intersect(b.ffi, ffi) is not None]
            if not bands:
                return SdkGuess(None, ffi, list(self.basis), list(self.conflicts))
        if bands is None:
            return SdkGuess(None, None, list(self.basis), list(self.conflicts))
        if ffi is not None:
            bands = [b for b in bands if _intersect(b.ffi, ffi) is not None] or bands
        rtc = _hull(b.rtc for b in bands)
        if self.bands is None and rtc is not None and ffi is not None and ffi[1] == HIGH:
            rtc = (rtc[0], HIGH)  # newer than the table's last row is possible
        if rtc is not None and self.rtc is not None:
            rtc = _intersect(rtc, self.rtc) or rtc
        return SdkGuess(rtc, ffi, list(self.basis), list(self.conflicts))
