"""`report` reads the logs in a forked child while it imports pandas (lkwedge.detect.background): the
parent must get exactly what the work returns or raises, and do the work itself if the child dies."""

from __future__ import annotations

import os

import pytest
from conftest import run_lkwedge

from lkwedge.detect.background import Pending
from lkwedge.errors import InputError


def test_the_work_runs_in_a_child_and_its_result_comes_back() -> None:
    parent = os.getpid()
    pending = Pending(lambda: (os.getpid(), {"episodes": [1, 2, 3]}))
    pid, value = pending.result()
    assert pid != parent and value == {"episodes": [1, 2, 3]}


def test_an_error_of_the_work_is_raised_in_the_parent() -> None:
    def work() -> None:
        raise InputError("cannot read x.log.gz: damaged gzip stream")

    with pytest.raises(InputError, match="damaged gzip"):
        Pending(work).result()


def test_a_child_that_dies_leaves_the_work_to_the_parent() -> None:
    parent = os.getpid()

    def work() -> str:
        if os.getpid() != parent:
            os._exit(3)  # killed before answering
        return "done here"

    assert Pending(work).result() == "done here"


def test_report_through_a_child_reads_a_damaged_gzip_as_an_input_error(tmp_path) -> None:
    import gzip

    good = gzip.compress(b"[2026-05-01T10:00:00Z INFO my_agent] hello\n" * 2000)
    bad = tmp_path / "cut.log.gz"
    bad.write_bytes(good[: len(good) // 2])
    proc = run_lkwedge("report", str(bad))
    assert proc.returncode == 2
    assert "cut.log.gz" in proc.stderr and "Traceback" not in proc.stderr
