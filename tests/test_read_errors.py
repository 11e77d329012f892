"""A file that fails part-way (a gzip cut in the middle, garbage after its last member) does not abort the
run: its episodes up to the damage are kept, one stderr line names it, the other files are fully analysed
and the exit code is 2 at the end. Real damaged files, the real `lkwedge` command."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge

SEED = REPO / "samples" / "agents_json_seed_stall.log"      # one stalled episode at line 20
TWO_JOBS = REPO / "samples" / "agents_json_two_jobs.log"    # one stalled, one recovered
CUT_NOTE = "the input was cut short by a read error after line"


def _filler(lines: int) -> bytes:
    """Lines gzip cannot shrink much, so the compressed file is large and a cut lands inside them."""
    rnd = random.Random(7)
    return b"".join(f"filler {rnd.getrandbits(400):0100x}\n".encode() for _ in range(lines))


@pytest.fixture
def truncated_gz(tmp_path: Path) -> Path:
    """The seed stall, then 20 000 filler lines, gzipped and cut at 60 % of its compressed size."""
    whole = gzip.compress(SEED.read_bytes() + _filler(20_000))
    path = tmp_path / "cut.log.gz"
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


@pytest.fixture
def trailing_garbage_gz(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.log.gz"
    path.write_bytes(gzip.compress(SEED.read_bytes()) + b"this is not gzip\n")
    return path


def _scan_json(*args: str) -> tuple[dict, str, int]:
    proc = run_lkwedge("scan", "--format", "json", *args)
    return json.loads(proc.stdout), proc.stderr, proc.returncode


def _error_lines(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("lkwedge: error:") and name in line]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_scan_keeps_the_episodes_before_the_damage_and_reads_the_other_files(truncated_gz: Path,
                                                                             jobs: str) -> None:
    out, err, code = _scan_json("--jobs", jobs, str(SEED), str(truncated_gz), str(TWO_JOBS))
    assert code == 2
    errors = _error_lines(err, str(truncated_gz))
    assert len(errors) == 1 and "damaged gzip data" in errors[0], err
    assert len(err.strip().splitlines()) == 1, err      # nothing else on stderr: no traceback
    by_file: dict[str, list[dict]] = {}
    for ep in out["episodes"]:
        by_file.setdefault(ep["file"], []).append(ep)
    assert [e["verdict"] for e in by_file[str(SEED)]] == ["stalled"]
    assert sorted(e["verdict"] for e in by_file[str(TWO_JOBS)]) == ["recovered", "stalled"]
    (cut,) = by_file[str(truncated_gz)]
    assert (cut["line"], cut["verdict"], cut["attempts"]) == (20, "stalled", 2) and cut["silence_s"] > 60
    assert CUT_NOTE in cut["note"]
    assert CUT_NOTE not in by_file[str(SEED)][0]["note"]       # the same lines, read whole
    (failed,) = out["summary"]["read_errors"]
    assert failed["file"] == str(truncated_gz) and failed["lines"] > 46
    assert out["summary"]["files"] == 3 and out["summary"]["stalled"] == 3


def test_serial_and_parallel_give_the_same_answer_for_a_damaged_file(truncated_gz: Path) -> None:
    serial = _scan_json("--jobs", "1", str(truncated_gz), str(TWO_JOBS))
    parallel = _scan_json("--jobs", "2", str(truncated_gz), str(TWO_JOBS))
    assert serial == parallel


def test_text_output_names_the_file_once_and_still_lists_its_episode(truncated_gz: Path) -> None:
    proc = run_lkwedge("scan", str(truncated_gz), str(TWO_JOBS))
    assert proc.returncode == 2
    assert sum(1 for line in proc.stdout.splitlines() if line.startswith("stalled")) == 2
    assert f"{truncated_gz}:20" in proc.stdout
    assert len(_error_lines(proc.stderr, str(truncated_gz))) == 1


def test_garbage_after_the_last_gzip_member_keeps_every_line(trailing_garbage_gz: Path) -> None:
    out, err, code = _scan_json(str(trailing_garbage_gz))
    assert code == 2
    assert len(_error_lines(err, str(trailing_garbage_gz))) == 1
    assert out["summary"]["lines"] == len(SEED.read_bytes().splitlines())
    (ep,) = out["episodes"]
    assert (ep["line"], ep["verdict"]) == (20, "stalled")


def test_damaged_gzip_on_stdin(truncated_gz: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--format", "json"],
                          input=truncated_gz.read_bytes(), capture_output=True, timeout=120)
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert [(e["line"], e["verdict"]) for e in out["episodes"]] == [(20, "stalled")]
    assert b"lkwedge: error: cannot read <stdin>: damaged gzip data" in proc.stderr


def test_check_fails_the_stall_before_the_damage_and_exits_2(truncated_gz: Path, tmp_path: Path) -> None:
    junit = tmp_path / "out.xml"
    proc = run_lkwedge("check", str(truncated_gz), str(TWO_JOBS), "--junit", str(junit))
    assert proc.returncode == 2
    assert len(_error_lines(proc.stderr, str(truncated_gz))) == 1
    failing = [line for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert any(f"{truncated_gz}:20" in line for line in failing), proc.stdout
    assert any(f"{TWO_JOBS}:" in line for line in failing), proc.stdout
    assert f'file="{truncated_gz}" line="20"' in junit.read_text()


def test_report_exports_the_episodes_before_the_damage_and_exits_2(truncated_gz: Path,
                                                                   tmp_path: Path) -> None:
    export = tmp_path / "report.json"
    proc = run_lkwedge("report", str(truncated_gz), str(TWO_JOBS), "--json", str(export))
    assert proc.returncode == 2
    assert len(_error_lines(proc.stderr, str(truncated_gz))) == 1
    rows = json.loads(export.read_text())["episodes"]
    assert sorted((r["file"], r["line"], r["verdict"]) for r in rows) == sorted(
        [(str(truncated_gz), 20, "stalled"), (str(TWO_JOBS), 19, "stalled"),
         (str(TWO_JOBS), 21, "recovered")])


def test_watch_once_reports_a_damaged_file_and_exits_2(truncated_gz: Path) -> None:
    proc = run_lkwedge("watch", "--once", "--format", "json", str(truncated_gz), str(TWO_JOBS))
    assert proc.returncode == 2
    assert len(_error_lines(proc.stderr, str(truncated_gz))) == 1
    out = json.loads(proc.stdout)
    assert sorted((e["file"], e["line"], e["verdict"]) for e in out["episodes"]) == sorted(
        [(str(truncated_gz), 20, "stalled"), (str(TWO_JOBS), 19, "stalled"),
         (str(TWO_JOBS), 21, "recovered")])
