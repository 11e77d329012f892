"""Every pattern in every shipped pack is proven by a sample line (fail2ban's failJSON convention)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkwedge.detect.patterns import PatternSet, builtin_pack_files, load_pack
from lkwedge.detect.sampletest import Sample, check_sample, read_samples, sample_file
from lkwedge.errors import InputError

PACKS = builtin_pack_files()
PATTERNS = PatternSet.load()
CASES = [(pack.name, sample) for pack in PACKS for sample in read_samples(sample_file(pack))]


def test_builtin_packs_are_found_and_ship_samples() -> None:
    assert {p.stem for p in PACKS} >= {"livekit-rust", "livekit-agents", "livekit-room"}
    assert not [p for p in PACKS if p.name.startswith("fingerprints")]  # version tables are not packs
    for pack in PACKS:
        assert sample_file(pack).is_file(), pack


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.stem)
def test_every_pattern_has_a_sample(pack: Path) -> None:
    # load_pack checks each regex (compiles it, attempt groups), which PatternSet.load leaves to first use
    sampled = {s.expect["pattern"] for s in read_samples(sample_file(pack))}
    missing = [p.id for p in load_pack(pack) if p.id not in sampled]
    assert not missing, f"patterns without a failJSON sample in {pack.name}: {missing}"


@pytest.mark.parametrize(("pack", "sample"), CASES, ids=[f"{c[0]}:{c[1].line}" for c in CASES])
def test_sample_matches_what_its_failjson_says(pack: str, sample: Sample) -> None:
    """Pattern, exactly one match, log time, groups and fields (fail2ban's checks)."""
    result = check_sample(sample, PATTERNS)
    assert result.ok, f"{pack}:{sample.line}: {'; '.join(result.problems)}"


GIVE_UP = "[2026-01-30T18:27:10Z ERROR livekit::rtc_engine] failed to reconnect to the livekit room"


@pytest.mark.parametrize(("expect", "text", "problem"), [
    ({"pattern": "give-up"}, GIVE_UP, "no \"time\""),
    ({"pattern": "give-up", "time": "2026-01-30T18:27:11+00:00"}, GIVE_UP, "time is"),
    ({"pattern": "recovered", "time": None}, "ERROR:livekit:failed to reconnect to the livekit room",
     "matched give-up, expected recovered"),
    ({"pattern": None, "time": None}, "ERROR:livekit:failed to reconnect to the livekit room",
     "should match nothing"),
])
def test_a_wrong_failjson_fails(tmp_path: Path, expect: dict, text: str, problem: str) -> None:
    result = check_sample(Sample(tmp_path / "x.samples.log", 2, expect, text), PATTERNS)
    assert not result.ok and problem in "; ".join(result.problems)


def test_two_patterns_matching_one_sample_fail(tmp_path: Path) -> None:
    pack = tmp_path / "dup.toml"
    pack.write_text('[[patterns]]\nid = "my-give-up"\nrole = "progress"\nliteral = "failed to reconnect"\n'
                    "regex = 'failed to reconnect'\n", encoding="utf-8")
    sample = Sample(tmp_path / "dup.samples.log", 2, {"pattern": "my-give-up", "time": None},
                    "ERROR:livekit:failed to reconnect to the livekit room")
    result = check_sample(sample, PatternSet.load([pack]))
    assert "exactly one must" in "; ".join(result.problems)


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
    ('[[patterns]]\nid = "x"\nrole = "progress"\nliteral = "two\\nlines"\nregex = "a"\n', "fit on one line"),
    ('[[patterns]]\nid = "x"\nrole = "attempt"\nliteral = "a"\nregex = "a"\n', "(?P<n>"),
    ('[pack]\nname = "empty"\n', "no [[patterns]]"),
])
def test_bad_user_pack_is_a_clear_input_error(tmp_path: Path, body: str, message: str) -> None:
    pack = tmp_path / "bad.toml"
    pack.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        PatternSet.load([pack])
