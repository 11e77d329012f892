"""Every pattern in every shipped pack is proven by a sample line (fail2ban's failJSON convention)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lkwedge.detect.patterns import PatternSet, builtin_pack_files, load_pack
from lkwedge.errors import InputError
from lkwedge.read.formats import parse_line


def _samples(pack: Path) -> list[tuple[int, dict, str]]:
    sample_file = pack.with_name(pack.stem + ".samples.log")
    lines = sample_file.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith("# failJSON:"):
            found.append((i + 2, json.loads(line.removeprefix("# failJSON:")), lines[i + 1]))
    return found


PACKS = builtin_pack_files()
PATTERNS = PatternSet.load()
CASES = [(pack.name, lineno, expect, text) for pack in PACKS for lineno, expect, text in _samples(pack)]


def test_builtin_packs_are_found_and_ship_samples() -> None:
    assert {p.stem for p in PACKS} >= {"livekit-rust", "livekit-agents"}
    for pack in PACKS:
        assert pack.with_name(pack.stem + ".samples.log").is_file(), pack


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.stem)
def test_every_pattern_has_a_sample(pack: Path) -> None:
    sampled = {expect["pattern"] for _, expect, _ in _samples(pack)}
    missing = [p.id for p in load_pack(pack) if p.id not in sampled]
    assert not missing, f"patterns without a failJSON sample in {pack.name}: {missing}"


@pytest.mark.parametrize(("pack", "lineno", "expect", "text"), CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_sample_matches_what_its_failjson_says(pack: str, lineno: int, expect: dict, text: str) -> None:
    record = parse_line(text)
    assert record.parsed
    match = PATTERNS.match(record.message, record.level)
    if expect["pattern"] is None:
        assert match is None, f"{pack}:{lineno} should match nothing, matched {match and match.pattern.id}"
        return
    assert match is not None, f"{pack}:{lineno} matched nothing"
    assert match.pattern.id == expect["pattern"]
    for name, value in expect.get("groups", {}).items():
        assert match.groups.get(name) == value, name
    for name, value in expect.get("fields", {}).items():
        assert getattr(record, name) == value, name


def test_user_pack_overrides_a_builtin_and_adds_patterns(tmp_path: Path) -> None:
    pack = tmp_path / "mine.toml"
    pack.write_text(
        '[pack]\nname = "mine"\n'
        '[[patterns]]\nid = "recovered"\nrole = "progress"\nliteral = "RtcEngine successfully recovered"\n'
        "regex = 'RtcEngine successfully recovered'\n"
        '[[patterns]]\nid = "my-heartbeat"\nrole = "activity"\nliteral = "heartbeat ok"\n'
        "regex = '^heartbeat ok'\n", encoding="utf-8")
    patterns = PatternSet.load([pack])
    hit = patterns.match("RtcEngine successfully recovered", "INFO")
    assert hit is not None and hit.pattern.pack == "mine" and hit.pattern.role == "progress"
    beat = patterns.match("heartbeat ok", "INFO")
    assert beat is not None and beat.pattern.role == "activity"


@pytest.mark.parametrize(("body", "message"), [
    ("not toml [", "not valid TOML"),
    ('[[patterns]]\nid = "x"\nrole = "bogus"\nliteral = "a"\nregex = "a"\n', "role must be one of"),
    ('[[patterns]]\nid = "x"\nrole = "progress"\nliteral = "a"\nregex = "("\n', "bad regex"),
    ('[[patterns]]\nid = "x"\nrole = "progress"\nliteral = "say \\"hi\\""\nregex = "a"\n', "quotes"),
    ('[[patterns]]\nid = "x"\nrole = "attempt"\nliteral = "a"\nregex = "a"\n', "(?P<n>"),
    ('[pack]\nname = "empty"\n', "no [[patterns]]"),
])
def test_bad_user_pack_is_a_clear_input_error(tmp_path: Path, body: str, message: str) -> None:
    pack = tmp_path / "bad.toml"
    pack.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        PatternSet.load([pack])
