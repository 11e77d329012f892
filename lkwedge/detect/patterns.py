"""Pattern packs: the data files (TOML, in ``patterns/``) that say which log lines mean what.

A pattern has a *role* (one role = one behaviour in the episode state machine):

==========  ===========================================================================================
trigger     opens a reconnect episode (a new trigger for a key with an open episode supersedes it)
attempt     a resume/restart attempt: opens an episode if none is open, else counts as progress
progress    the reconnect is still moving (resets the silence clock); may set the outcome
success     the engine recovered: closes the episode
activity    the job did something that needs working media: closes the episode as recovered
teardown    the connection or the job really ended: closes the episode as disconnected
meta        no episode effect; carries job facts (e.g. the room of a job) for later episodes
evidence    no state change: supporting evidence (``evidence = "ghost"``) or SDK version evidence only
==========  ===========================================================================================

Each pattern has a ``literal``: a substring every matching line contains. Only lines containing
one of the literals are parsed at all, which keeps irrelevant lines at the cost of a substring
search. The ``regex`` then runs on the parsed message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import msgspec

from lkwedge import lazyre
from lkwedge.datafile import load_toml
from lkwedge.errors import InputError

ROLES = ("trigger", "attempt", "progress", "success", "activity", "teardown", "meta", "evidence")


class Pattern(msgspec.Struct, frozen=True):
    id: str
    pack: str
    role: str
    literal: str
    regex: re.Pattern[str]
    outcome: str | None = None
    attempt_kind: str | None = None  # "resume" | "restart" for attempt patterns
    levels: frozenset[str] | None = None  # only these normalised levels match, when given
    versions: str = ""
    note: str = ""
    evidence: str = ""  # "ghost": a supporting line for the ghost-room verdict (lkwedge.detect.ghost)


class Match(msgspec.Struct, frozen=True):
    pattern: Pattern
    groups: dict[str, str]


def builtin_pack_dir() -> Path:
    """The packs shipped in the wheel (``lkwedge/patterns``) or, from a source tree, ``patterns/``."""
    here = Path(__file__).resolve()
    shipped = here.parents[1] / "patterns"  # the wheel puts the packs at lkwedge/patterns
    return shipped if shipped.is_dir() else here.parents[2] / "patterns"


def builtin_pack_files() -> list[Path]:
    # fingerprints*.toml in the same folder are SDK version tables (lkwedge.detect.fingerprint), not packs
    return sorted(p for p in builtin_pack_dir().glob("*.toml") if not p.name.startswith("fingerprints"))


def load_pack(path: Path, checked: bool = True) -> list[Pattern]:
    """The patterns of one pack file. ``checked=False`` (the shipped packs, which the tests check)
    leaves each regex to be compiled on first use, which saves most of the packs' start-up cost."""
    try:
        data = load_toml(path)
    except OSError as exc:
        raise InputError(f"cannot read pattern pack {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, or not UTF-8
        raise InputError(f"pattern pack {path} is not valid TOML: {exc}") from None
    pack = data.get("pack", {}).get("name") or path.stem
    entries = data.get("patterns")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"pattern pack {path} has no [[patterns]] entries")
    return [_pattern_from(entry, pack, path, checked) for entry in entries]


def _pattern_from(entry: object, pack: str, path: Path, checked: bool) -> Pattern:
    if not isinstance(entry, dict):
        raise InputError(f"pattern pack {path}: each [[patterns]] entry must be a table")
    pid = entry.get("id")
    where = f"pattern pack {path}, pattern {pid!r}"
    for key in ("id", "role", "literal", "regex"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise InputError(f"{where}: missing string field {key!r}")
    if entry["role"] not in ROLES:
        raise InputError(f"{where}: role must be one of {', '.join(ROLES)}")
    literal = entry["literal"]
    if '"' in literal or "\\" in literal:
        # JSON log lines escape these characters, so such a literal would never be found in the raw line
        raise InputError(f"{where}: literal must not contain quotes or backslashes")
    if any(c in literal for c in "\n\r"):
        raise InputError(f"{where}: literal must fit on one line (no newline or carriage return)")
    regex = lazyre.compile(entry["regex"])
    if checked:
        try:
            groups = regex.groupindex
        except re.error as exc:
            raise InputError(f"{where}: bad regex: {exc}") from None
        if entry["role"] == "attempt" and "n" not in groups:
            raise InputError(f"{where}: attempt patterns need a (?P<n>...) group")
    levels = entry.get("levels")
    return Pattern(
        id=pid, pack=pack, role=entry["role"], literal=literal, regex=regex,
        outcome=entry.get("outcome"), attempt_kind=entry.get("attempt_kind"),
        levels=frozenset(levels) if levels else None,
        versions=str(entry.get("versions", "")), note=str(entry.get("note", "")),
        evidence=str(entry.get("evidence", "")),
    )


class PatternSet:
    """All patterns in force, indexed by literal. User packs come first and replace built-ins by id."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        by_id: dict[str, Pattern] = {}
        for pattern in patterns:
            by_id.setdefault(pattern.id, pattern)
        self.patterns: tuple[Pattern, ...] = tuple(by_id.values())
        self._by_literal: dict[str, list[Pattern]] = {}
        for pattern in self.patterns:
            self._by_literal.setdefault(pattern.literal, []).append(pattern)
        self.literals: tuple[str, ...] = tuple(self._by_literal)

    @classmethod
    def load(cls, extra: Iterable[Path] = ()) -> PatternSet:
        patterns: list[Pattern] = []
        for path in extra:
            patterns.extend(load_pack(Path(path)))
        for path in builtin_pack_files():
            patterns.extend(load_pack(path, checked=False))
        return cls(patterns)

    def is_candidate(self, text: str) -> bool:
        return any(literal in text for literal in self.literals)

    def match(self, message: str, level: str | None, found: Iterable[int] | None = None) -> Match | None:
        """The first pattern (in pack order) that matches. ``found``: the indexes (into ``literals``) of
        the literals the prefilter saw on the line, so the others need not be tried."""
        literals = self.literals if found is None else [self.literals[i] for i in sorted(found)]
        for literal in literals:
            if literal not in message:
                continue
            patterns = self._by_literal[literal]
            for pattern in patterns:
                if pattern.levels is not None and level is not None and level not in pattern.levels:
                    continue
                m = pattern.regex.search(message)
                if m:
                    return Match(pattern, {k: v for k, v in m.groupdict().items() if v is not None})
        return None
