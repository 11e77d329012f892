"""Every bundled sample log gives the verdicts listed in samples/expected.json, through the real CLI.

Runs `python -m lkwedge scan --format json <sample>` in a subprocess (cwd = samples/, so the file's
default stream key is the bare file name) and compares each expected episode field by field, the
summary counts, and the exit code (1 iff a stalled or ghost episode is expected).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MANIFEST = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
ENTRIES = MANIFEST["samples"]


def _scan(entry: dict) -> tuple[int, dict, str]:
    cmd = [sys.executable, "-m", "lkwedge", "scan", "--format", "json", *entry["args"], entry["file"]]
    proc = subprocess.run(cmd, cwd=SAMPLES, capture_output=True, text=True, timeout=120)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"scan did not print JSON (exit {proc.returncode}): stderr={proc.stderr[-2000:]!r}")
    return proc.returncode, report, proc.stderr


def _same_time(got: str | None, want: str) -> bool:
    if got is None:
        return False
    return abs((datetime.fromisoformat(got) - datetime.fromisoformat(want)).total_seconds()) < 0.0015


@pytest.fixture(scope="module", params=ENTRIES, ids=[e["file"] for e in ENTRIES])
def scanned(request: pytest.FixtureRequest) -> tuple[dict, int, dict, str]:
    entry = request.param
    return (entry, *_scan(entry))


def test_every_sample_file_is_listed() -> None:
    on_disk = {p.name for p in SAMPLES.iterdir() if p.suffix in (".log", ".gz")}
    assert on_disk == {e["file"] for e in ENTRIES}


def test_manifest_covers_every_verdict() -> None:
    verdicts = {ep["verdict"] for e in ENTRIES for ep in e["episodes"]}
    assert verdicts == {"recovered", "disconnected", "stalled", "unresolved", "ghost"}


def test_episodes(scanned: tuple[dict, int, dict, str]) -> None:
    entry, _, report, _ = scanned
    got = report["episodes"]
    problems = []
    if len(got) != len(entry["episodes"]):
        problems.append(f"{len(got)} episodes, expected {len(entry['episodes'])}: "
                        + ", ".join(f"line {g['line']} {g['verdict']}" for g in got))
    for want, have in zip(entry["episodes"], got, strict=False):
        for field, value in want.items():
            actual = have.get(field)
            if field in ("start", "end"):
                ok = _same_time(actual, value)
            elif field in ("silence_s", "log_left_s") and value is not None:
                ok = actual is not None and round(actual, 1) == value
            else:
                ok = actual == value
            if not ok:
                problems.append(f"episode at line {want['line']}: {field} = {actual!r}, expected {value!r}"
                                f" (note: {have.get('note')!r})")
    assert not problems, f"{entry['file']}:\n  " + "\n  ".join(problems)


def test_summary(scanned: tuple[dict, int, dict, str]) -> None:
    entry, _, report, _ = scanned
    summary = report["summary"]
    want = dict(entry["summary"])
    notes = " ".join(summary.get("notes", []))
    for phrase in want.pop("notes_contain", []):
        assert phrase in notes, f"{entry['file']}: no summary note mentions {phrase!r}: {notes!r}"
    wrong = {k: (summary.get(k), v) for k, v in want.items() if summary.get(k) != v}
    assert not wrong, f"{entry['file']}: summary (got, expected): {wrong}"


def test_exit_code(scanned: tuple[dict, int, dict, str]) -> None:
    entry, code, _, stderr = scanned
    assert code == entry["exit_code"], f"{entry['file']}: exit {code}, stderr={stderr[-500:]!r}"
    assert code == (1 if any(e["verdict"] in ("stalled", "ghost") for e in entry["episodes"]) else 0)
