"""A long scan keeps its closed episodes on disk past `spool.HOLD`: every output must be the same as
when they all stay in memory (ghost episodes change after they close, time zones keep their names)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import spilling_every_episode

from lkwedge.cli.common import EpisodeFilter, analyse
from lkwedge.detect.engine import ScanOptions, scan
from lkwedge.detect.spool import EpisodeList
from lkwedge.output.check import CheckOptions, run_checks
from lkwedge.output.junit import write_junit
from lkwedge.output.render import PlainConsole, write_json, write_plain

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
LOGS = sorted(str(p) for p in SAMPLES.iterdir() if p.name.endswith((".log", ".log.gz")))


def everything(paths: list[str], jobs: int = 1) -> tuple[str, list[str], str]:
    """JSON with incidents, the check's failures and the plain lines of one scan."""
    result, incidents = analyse(scan(paths, ScanOptions(), jobs=jobs), EpisodeFilter())
    out = io.StringIO()
    write_json(result, out, incidents)
    outcome = run_checks(result, CheckOptions(fail_on=("stalled", "ghost", "unresolved"), max_silence=5.0))
    failures = [f.message for f in outcome.failures] + outcome.assertions
    return out.getvalue(), failures, str(len(result.episodes))


@pytest.mark.parametrize("jobs", [1, 2])
def test_spilled_episodes_give_the_same_json_checks_and_incidents(jobs: int) -> None:
    want = everything(LOGS, jobs)
    with spilling_every_episode():
        got = everything(LOGS, jobs)
        assert isinstance(scan(LOGS, jobs=jobs).episodes, EpisodeList)  # they really went to disk
    assert got == want
    assert '"verdict": "ghost"' in want[0] and '"incidents": [' in want[0]  # the hard cases are in it


def test_a_spilled_scan_crosses_processes_whole() -> None:
    """`report` scans in a forked child and gets the result pickled: spilled episodes travel too."""
    with spilling_every_episode():
        result = scan(LOGS)
    sent = pickle.loads(pickle.dumps(result))
    assert sent.episodes == list(result.episodes) and len(sent.episodes) > 20


CHILD_ANSWER = """
import os, sys
from lkwedge.detect import spool
from lkwedge.detect.background import Pending
from lkwedge.detect.engine import scan

spool.HOLD = 0  # every episode spilled
scans_here = []

def work():
    scans_here.append(os.getpid())  # in the child this changes the child's copy only
    return scan(sys.argv[1:])

result = Pending(work).result()
print(len(result.episodes), len(scans_here))
"""


def test_report_reads_the_logs_once_in_its_background_child() -> None:
    """The child's answer must reach the parent: a parent that gets none scans again (twice the work).
    In a fresh process: this one may run threads that make forking unsafe (then nothing is forked)."""
    proc = subprocess.run([sys.executable, "-c", CHILD_ANSWER, *LOGS], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    episodes, scans_here = map(int, proc.stdout.split())
    assert episodes > 20 and scans_here == 0


def test_a_filtered_spilled_scan_keeps_the_matching_episodes_in_order() -> None:
    keep = EpisodeFilter(verdicts=("stalled", "ghost"))
    want = [ep.id for ep in analyse(scan(LOGS), keep)[0].episodes]
    with spilling_every_episode():
        result = analyse(scan(LOGS), keep)[0]
    assert [ep.id for ep in result.episodes] == want and want
    assert [ep.id for ep in result.episodes[1:3]] == want[1:3]
    assert result.episodes == list(result.episodes)


def test_a_spilled_scan_writes_the_same_text_and_junit(tmp_path: Path, capsys) -> None:
    def outputs() -> tuple[str, str, str]:
        result = scan(LOGS)
        write_plain(result, PlainConsole(), PlainConsole(stderr=True))
        junit = tmp_path / "r.xml"
        write_junit(junit, LOGS, result, run_checks(result, CheckOptions(fail_on=("stalled",))).failures)
        text = capsys.readouterr()
        return text.out, text.err, junit.read_text()

    want = outputs()
    with spilling_every_episode():
        assert outputs() == want
    assert "stalled" in want[0] and "<failure" in want[2]


def test_the_cli_on_a_log_with_thousands_of_episodes_reports_every_one(tmp_path: Path) -> None:
    """Past HOLD (512) the real command spills: 3 000 episodes, every one listed, in line order."""
    lines = []
    for i in range(3000):
        t = f"2026-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        lines.append(f"[{t}.000Z ERROR livekit::rtc_engine] resuming connection... attempt: 0")
        lines.append(f"[{t}.300Z INFO  livekit::rtc_engine] RtcEngine successfully recovered")
    log = tmp_path / "many.log"
    log.write_text("\n".join(lines) + "\n")
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(spool_dir)}
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--format", "jsonl", str(log)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert len(rows) == 3001
    assert [int(r.split('"line": ')[1].split(",")[0]) for r in rows[:-1]] == list(range(1, 6001, 2))
    assert list(spool_dir.iterdir()) == []  # the spool file had no name: nothing is left behind


def test_without_a_writable_temporary_file_the_episodes_stay_in_memory(monkeypatch) -> None:
    import tempfile

    want = everything(LOGS)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", full_disk)
    with spilling_every_episode():
        assert not isinstance(scan(LOGS).episodes, EpisodeList)  # nothing could be spilled
        assert everything(LOGS) == want
