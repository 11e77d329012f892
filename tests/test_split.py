"""One big file shared by two processes (`scan` with --jobs > 1 on one file): a forked child prefilters
the second part. The answer must be the one a single process gives, whatever happens to the child."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_lkwedge
from synthlog import write_synth

from lkwedge.detect import engine
from lkwedge.detect import split as split_file
from lkwedge.detect.engine import ScanOptions, scan


def _big_log(path: Path, lines: int) -> Path:
    """A synthetic log with stalls and recoveries all along, a 5 kB line (too long at --max-line 2048)
    around the split point, CRLF endings in places, and a last line without its newline."""
    write_synth(path, lines=lines, stalls=4, recoveries=12, disconnects=2)
    body = path.read_bytes().split(b"\n")
    middle = len(body) * 2 // 5
    body[middle] = body[middle] + b" " + b"x" * 5000
    for i in range(middle - 50, middle + 50, 7):
        body[i] += b"\r"
    path.write_bytes(b"\n".join(body).rstrip(b"\n") + b"\n[2026-05-01T23:59:59Z INFO my_agent] cut mid-wri")
    return path


def _answer(paths: list[str], jobs: int) -> dict:
    result = scan(paths, ScanOptions(max_line=2048), jobs=jobs)
    return {"episodes": [ep.to_dict() for ep in result.episodes], "summary": result.summary.to_dict()}


@pytest.fixture
def small_split(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Split files of a few MB (the real threshold is 8 MiB), and record what became of every child:
    "used" (all its facts were examined) or "failed after N" (N of its frames were examined, then the
    parent read on by itself)."""
    monkeypatch.setattr(split_file, "MIN_SPLIT", 1 << 20)
    # other tests in this process may leave threads behind, which rightly forbid a fork (see below)
    monkeypatch.setattr(split_file, "fork_safe", lambda: True)
    monkeypatch.setattr(engine, "SPOOL_EVERY", 300 << 10)  # several spooled frames, cut anywhere
    outcomes: list[str] = []
    real_frames = split_file.Child.frames

    def frames(self: split_file.Child):  # type: ignore[no-untyped-def]
        count = 0
        for facts in real_frames(self):
            count += 1
            yield facts
        outcomes.append("used" if self.resume_at is None else f"failed after {count}")

    monkeypatch.setattr(split_file.Child, "frames", frames)
    return outcomes


def test_a_split_file_gives_the_answer_of_one_process(tmp_path: Path, small_split: list) -> None:
    log = _big_log(tmp_path / "big.log", 60_000)
    alone = _answer([str(log)], jobs=1)
    assert small_split == []  # --jobs 1: never split
    shared = _answer([str(log)], jobs=2)
    assert small_split == ["used"]  # a child read the second part, and its facts were examined
    assert shared == alone
    assert alone["summary"]["stalled"] == 4 and alone["summary"]["unparsed_reasons"].get("too long") == 1


def test_a_failing_child_leaves_the_part_to_the_parent(tmp_path: Path, small_split: list,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log = _big_log(tmp_path / "big.log", 60_000)
    alone = _answer([str(log)], jobs=1)

    def broken(*_args: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(engine, "_prefilter_from", broken)  # the child dies; the parent must notice
    assert _answer([str(log)], jobs=2) == alone
    assert small_split == ["failed after 0"]


def test_a_child_dying_part_way_leaves_the_rest_to_the_parent(tmp_path: Path, small_split: list,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames the child finished are examined; the parent reads on from the line after them."""
    log = _big_log(tmp_path / "big.log", 60_000)
    alone = _answer([str(log)], jobs=1)
    real = engine._prefilter_from

    def dies_after_two_frames(detector, stream, fd, start, emit):  # type: ignore[no-untyped-def]
        sent = []

        def emit_two(facts, resume_at):  # type: ignore[no-untyped-def]
            if len(sent) == 2:
                raise OSError("killed")
            sent.append(resume_at)
            emit(facts, resume_at)

        real(detector, stream, fd, start, emit_two)

    monkeypatch.setattr(engine, "_prefilter_from", dies_after_two_frames)
    assert _answer([str(log)], jobs=2) == alone
    assert small_split == ["failed after 2"]


@pytest.mark.parametrize("rotation", ["renamed", "replaced", "deleted"])
def test_a_file_rotated_as_the_child_starts_is_read_as_it_was_opened(tmp_path: Path, small_split: list,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   rotation: str) -> None:
    """logrotate moves the file away (and may create a new one) mid-scan: both processes read the file
    that was opened, through its descriptor, never the path's new occupant."""
    log = _big_log(tmp_path / "big.log", 60_000)
    alone = _answer([str(log)], jobs=1)
    real_fork = split_file.fork

    def rotate_then_fork(*args, **kwargs):  # type: ignore[no-untyped-def]
        if rotation == "deleted":
            log.unlink()
        else:
            log.rename(tmp_path / "big.log.1")
        if rotation == "replaced":
            log.write_text("[2026-05-01T10:00:00Z INFO my_agent] a new day\n" * 50_000)
        return real_fork(*args, **kwargs)

    monkeypatch.setattr(split_file, "fork", rotate_then_fork)
    assert _answer([str(log)], jobs=2) == alone
    assert small_split == ["used"]


def test_a_file_truncated_under_the_parent_ends_where_the_parent_found_its_end(
        tmp_path: Path, small_split: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Truncated while the parent reads its share: the scan ends at the new end, as one reader's would;
    nothing the child read of the old content is spliced on after it."""
    log = _big_log(tmp_path / "big.log", 60_000)
    real_fork = split_file.fork
    cut: list[int] = []

    def fork_then_truncate(fd, position, size, prefilter_from):  # type: ignore[no-untyped-def]
        child = real_fork(fd, position, size, prefilter_from)
        cut.append(split_file.next_line_start(fd, position + 200_000))  # in the parent's share
        assert child is not None and cut[0] < child.start
        os.truncate(log, cut[0])  # the child may have read its part already: it must not be used
        return child

    monkeypatch.setattr(split_file, "fork", fork_then_truncate)
    shared = _answer([str(log)], jobs=2)
    head = tmp_path / "head.log"
    head.write_bytes(Path(str(log)).read_bytes())  # the file as it now is: its first ``cut`` bytes
    assert head.stat().st_size == cut[0]
    alone = _answer([str(head)], jobs=1)
    as_big = json.dumps(alone["episodes"], default=str).replace("head.log", "big.log")
    assert json.dumps(shared["episodes"], default=str) == as_big
    assert shared["summary"]["lines"] == alone["summary"]["lines"]
    assert small_split == []  # the child's frames were never examined


def test_gzip_and_small_files_are_not_split(tmp_path: Path, small_split: list) -> None:
    import gzip

    log = _big_log(tmp_path / "big.log", 60_000)
    packed = tmp_path / "big.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes(), 1))
    small = _big_log(tmp_path / "small.log", 3_000)
    for path in (packed, small):
        assert _answer([str(path)], jobs=2)["summary"]["lines"] > 0
    assert small_split == []


def test_cli_scan_of_a_big_file_is_the_same_on_one_core_and_two(tmp_path: Path) -> None:
    log = _big_log(tmp_path / "big.log", 130_000)  # over 8 MiB: split with the default --jobs
    assert log.stat().st_size > split_file.MIN_SPLIT + (1 << 20)
    both = run_lkwedge("scan", "--format", "json", "--max-line", "2048", str(log), timeout=300)
    one = run_lkwedge("scan", "--format", "json", "--max-line", "2048", "--jobs", "1", str(log), timeout=300)
    assert both.returncode == one.returncode == 1, both.stderr
    assert both.stdout == one.stdout
    summary = json.loads(both.stdout)["summary"]
    assert summary["stalled"] == 4 and summary["lines"] >= 130_000


def test_no_fork_beside_a_thread_lkwedge_does_not_own() -> None:
    import subprocess
    import sys

    code = ("import threading, time\n"
            "from lkwedge.detect.split import fork_safe\n"
            "print(fork_safe())\n"
            "threading.Thread(target=time.sleep, args=(5,), name='lkwedge-console', daemon=True).start()\n"
            "print(fork_safe())\n"
            "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
            "print(fork_safe())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "False"]
