"""SDK version inference: line-number bands of livekit-logs.md §0, attempt base, ffi version, wording."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import run_lkwedge, scan_json

from lkwedge.detect.fingerprint import Fingerprinter, load_table
from lkwedge.detect.patterns import PatternSet
from lkwedge.read.formats import parse_line

PATTERNS = PatternSet.load()
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _guess(lines: list[str], table=None):  # type: ignore[no-untyped-def]
    fp = Fingerprinter(table)
    first = True
    for text in lines:
        record = parse_line(text)
        match = PATTERNS.match(record.message, record.level)
        assert match is not None, text
        fp.observe(match.pattern.id, record.message, text, match.groups, first_attempt=first)
        first = first and match.pattern.role != "attempt"
    return fp.guess()


def fwd(line: int, msg: str, level: str = "ERROR", target: str = "livekit::rtc_engine") -> str:
    return f"{level}:livekit:{target}:{line}:{target} - {msg}"


CLOSE = 'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume'


@pytest.mark.parametrize(
    ("lines", "rtc", "ffi", "disconnects"),
    [
        # 0.17.2-0.17.5 (agents issue #952: :410:/:628:)
        (
            [fwd(410, CLOSE, "WARNING"), fwd(628, "resuming connection... attempt: 0")],
            "0.17.2-0.17.5",
            "0.10.3-0.12.35",
            False,
        ),
        # 1.0.10-1.0.16 (agents issue #4028: :453:/:729:)
        (
            [fwd(453, CLOSE, "WARNING"), fwd(729, "resuming connection... attempt: 0")],
            "1.0.10-1.0.16",
            "0.10.3-0.12.35",
            False,
        ),
        # 1.0.17-1.0.21 (CAAL#23: :766:)
        ([fwd(766, "resuming connection... attempt: 0")], "1.0.17-1.0.21", "0.12.36-0.12.44", False),
        # 1.0.23-1.0.25: the give-up line alone
        ([fwd(699, "failed to reconnect to the livekit room")], "1.0.23-1.0.25", "0.12.40-0.12.44", False),
        # 1.1.0-1.1.3: first 5 s connect timeout
        (
            [fwd(476, CLOSE, "WARNING"), fwd(780, "resuming connection... attempt: 0")],
            "1.1.0-1.1.3",
            "0.12.48-0.12.50",
            False,
        ),
        # 1.1.8: the last release with the give-up bug
        (
            [fwd(519, CLOSE, "WARNING"), fwd(840, "resuming connection... attempt: 0")],
            "1.1.8",
            "0.12.56-0.12.57",
            False,
        ),
        # 1.1.11 (1-based)
        ([fwd(813, "failed to reconnect to the livekit room")], "1.1.11", "0.12.58-0.12.66", True),
        # 1.1.12-1.1.13
        (
            [fwd(585, CLOSE, "WARNING"), fwd(975, "resuming connection... attempt: 1")],
            "1.1.12-1.1.13",
            "0.12.67-0.12.68",
            True,
        ),
    ],
)
def test_line_number_bands(lines: list[str], rtc: str, ffi: str, disconnects: bool) -> None:
    guess = _guess(lines)
    assert guess.to_dict() is not None
    assert (guess.to_dict()["rtc"], guess.to_dict()["ffi"]) == (rtc, ffi)
    assert guess.disconnects_after_give_up() is disconnects


def test_shared_line_numbers_are_narrowed_by_the_next_line() -> None:
    # :1687: (room disconnect) is shared by 1.1.11 and 1.1.12-1.1.13; :898: settles it
    only_room = _guess(
        [fwd(1687, "disconnected from room with reason: UnknownReason", "INFO", "livekit::room")]
    )
    assert only_room.to_dict()["rtc"] == "1.1.11-1.1.13"
    both = _guess(
        [
            fwd(1687, "disconnected from room with reason: UnknownReason", "INFO", "livekit::room"),
            fwd(898, "resuming connection... attempt: 1"),
        ]
    )
    assert both.to_dict()["rtc"] == "1.1.11"


def test_attempt_base_ffi_version_line_and_wording_without_line_numbers() -> None:
    zero = _guess(["[2026-01-30T18:24:43Z ERROR livekit::rtc_engine] resuming connection... attempt: 0"])
    assert zero.to_dict()["ffi"] == "<=0.12.57" and zero.disconnects_after_give_up() is False
    one = _guess(["[2026-01-30T18:24:43Z ERROR livekit::rtc_engine] resuming connection... attempt: 1"])
    assert one.to_dict()["ffi"] == ">=0.12.58" and one.disconnects_after_give_up() is True
    exact = _guess(["[2026-01-30T18:20:01Z INFO  livekit_ffi::server] initializing ffi server v0.12.44"])
    assert exact.to_dict()["ffi"] == "0.12.44" and exact.to_dict()["rtc"] == "1.0.17-1.0.25"
    named = _guess(
        ['2026-08-22T13:12:05Z  INFO livekit::room: Disconnected from room "r1" with reason: RoomDeleted']
    )
    assert named.to_dict()["ffi"] == ">=0.12.71" and named.disconnects_after_give_up() is True


def test_contradicting_lines_are_reported_not_trusted() -> None:
    guess = _guess([fwd(474, CLOSE, "WARNING"), fwd(975, "resuming connection... attempt: 0")])
    assert guess.to_dict()["rtc"] == "1.0.23-1.0.25"
    assert any(":975:" in c for c in guess.conflicts)


def test_a_new_band_is_a_data_file(tmp_path: Path) -> None:
    """Rows for a newer SDK are added as a fingerprints*.toml file, not code."""
    extra = tmp_path / "fingerprints-rtc-9.toml"
    extra.write_text(
        '[[band]]\nrtc = "9.9.0-9.9.2"\nffi = ">=0.13.5"\nclose = [611]\nresume_attempt = ["990-992"]\n',
        encoding="utf-8",
    )
    builtin = sorted((Path(__file__).resolve().parent.parent / "patterns").glob("fingerprints*.toml"))
    table = load_table([*builtin, extra])
    guess = _guess([fwd(611, CLOSE, "WARNING"), fwd(991, "resuming connection... attempt: 1")], table)
    assert guess.to_dict()["rtc"] == "9.9.0-9.9.2" and guess.disconnects_after_give_up() is True


def test_scan_prints_the_sdk_in_text_and_json() -> None:
    report, _ = scan_json(str(SAMPLES / "agents_json_seed_stall.log"))
    assert (
        report["summary"]["sdk"]["" + str(SAMPLES / "agents_json_seed_stall.log")]["rtc"] == "1.0.23-1.0.25"
    )
    assert report["episodes"][0]["sdk"]["ffi"] == "0.12.40-0.12.44"
    assert "no WebSocket connect timeout" in report["episodes"][0]["advice"]
    proc = run_lkwedge("scan", str(SAMPLES / "agents_json_seed_stall.log"))  # piped: one line per episode
    assert len(proc.stdout.splitlines()) == 1  # the SDK guess and the advice go to stderr with the summary
    assert "livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25)" in proc.stderr
    assert "advice for " in proc.stderr and "fixed from python livekit 1.1.0" in proc.stderr


def test_advice_for_resume_retries_on_an_old_sdk(tmp_path: Path) -> None:
    log = tmp_path / "retries.log"
    lines = [fwd(453, CLOSE, "WARNING")]
    lines += [fwd(729, f"resuming connection... attempt: {n}") for n in range(3)]
    t0 = dt.datetime(2026, 1, 30, 18, 24, 10)
    stamped = [
        f"{(t0 + dt.timedelta(seconds=25 * i)).strftime('%Y-%m-%d %H:%M:%S')},000 - "
        f"{line.split(':', 1)[0]} livekit - {line.split(':', 2)[2]}"
        for i, line in enumerate(lines)
    ]
    log.write_text("\n".join(stamped) + "\n", encoding="utf-8")
    report, _ = scan_json(str(log))
    (ep,) = report["episodes"]
    assert ep["verdict"] == "stalled" and ep["sdk"]["rtc"] == "1.0.10-1.0.16"
    assert "retries the resume" in ep["advice"] and "1.0.20" in ep["advice"]


def test_band_files_of_newer_sdks_are_read_too() -> None:
    """patterns/fingerprints/rtc-1.2.toml (another schema: [band] + [[fingerprints]] rows) is loaded."""
    g = _guess([fwd(643, CLOSE, "WARNING"), fwd(1041, "resuming connection... attempt: 1")])
    assert g.to_dict()["rtc"].startswith("1.2") and g.to_dict()["ffi"].startswith("0.13")
    assert g.disconnects_after_give_up() is True
