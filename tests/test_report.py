"""`lkwedge report`: the episode table (typed), the summary a person reads, and the exports."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_lkwedge, scan_json
from synthlog import write_synth

from lkwedge.detect.engine import scan
from lkwedge.output.report import episodes_frame, summarize

JOBS = [("AJ_7fQx2kPz", "support-eu-17"), ("AJ_m3Rt9wLc", "sales-demo"), ("AJ_b8Hn4sYv", "onboarding-3")]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("report")
    agents = write_synth(d / "agents.log", lines=40_000, stalls=5, recoveries=14, disconnects=3, seed=21,
                         style="agents", jobs=JOBS)
    plain = write_synth(d / "plain.log", lines=30_000, stalls=3, recoveries=6, seed=22)
    return agents, plain


def test_csv_has_one_row_per_episode_and_verdicts_match_scan(logs, tmp_path: Path) -> None:
    agents, plain = logs
    paths = [str(agents.path), str(plain.path)]
    csv_path, json_path = tmp_path / "episodes.csv", tmp_path / "report.json"
    proc = run_lkwedge("report", *paths, "--csv", str(csv_path), "--json", str(json_path))
    assert proc.returncode == 0, proc.stderr
    scanned, _ = scan_json(*paths)
    summary = scanned["summary"]

    df = pd.read_csv(csv_path)
    assert len(df) == summary["episodes"] == len(agents.episodes) + len(plain.episodes)
    counts = df["verdict"].value_counts().to_dict()
    for verdict in ("recovered", "disconnected", "stalled", "unresolved"):
        assert counts.get(verdict, 0) == summary[verdict]
    assert counts["stalled"] == 8
    # same episodes, same order, same places as scan
    expected = [(e["file"], e["line"]) for e in scanned["episodes"]]
    assert list(zip(df["file"], df["line"], strict=True)) == expected
    assert set(df.columns) >= {"start", "end", "silence_s", "outcome", "verdict", "key", "job", "room",
                               "file", "line"}

    exported = json.loads(json_path.read_text())
    assert len(exported["episodes"]) == summary["episodes"]
    assert exported["summary"]["verdicts"]["stalled"] == summary["stalled"]

    # the terminal summary
    out = proc.stdout
    assert "Episodes per verdict" in out and "Longest silence per episode" in out
    assert "Worst jobs" in out and "Worst rooms" in out and "Episodes not recovered, by hour of day" in out
    # every worst-job row is printed whole (job, not recovered, stalled, silence) on one line, in order
    rows = [ln.split() for ln in out.splitlines()]
    worst = exported["summary"]["worst_jobs"]
    assert worst and worst[0]["stalled"] >= 1
    at = [rows.index([w["job"], str(w["not_recovered"]), str(w["stalled"]), str(w["ghosts"]),
                      f"{w['max_silence_s']:.1f}s"])
          for w in worst]
    assert at == sorted(at)
    # the headline names the worst episode: a stalled one with the longest silence, its job and room
    stalled = [e for e in exported["episodes"] if e["verdict"] == "stalled"]
    top = max(stalled, key=lambda e: e["silence_s"])
    assert (f"Worst: stalled job {top['job']} in room {top['room']}, silent {top['silence_s']:.1f}s"
            in exported["summary"]["headline"])
    assert exported["summary"]["headline"] in out.splitlines()


def test_dataframe_types_and_summary_numbers(logs) -> None:
    agents, _ = logs
    result = scan([str(agents.path)])
    df = episodes_frame(result.episodes)
    assert str(df["start"].dtype) == "datetime64[ns, UTC]" and str(df["end"].dtype) == "datetime64[ns, UTC]"
    assert df["silence_s"].dtype == "float64"
    assert isinstance(df["verdict"].dtype, pd.CategoricalDtype)
    assert list(df["verdict"].cat.categories)[:4] == ["recovered", "disconnected", "stalled", "unresolved"]
    assert str(df["line"].dtype) == "Int64"
    assert list(df["line"]) == [p.line for p in agents.episodes]
    assert set(df["job"]) == {p.job for p in agents.episodes}

    s = summarize(df)
    silences = sorted(ep.silence_s for ep in result.episodes if ep.silence_s is not None)
    assert s.silence.max == pytest.approx(silences[-1])
    assert s.silence.p50 == pytest.approx(pd.Series(silences).quantile(0.5))
    incidents = len(agents.of("stall")) + len(agents.of("disconnect"))
    assert s.not_recovered == incidents and sum(s.not_recovered_by_hour_utc) == incidents
    assert s.not_recovered_by_hour_utc[10] == incidents  # the synthetic log runs from 10:00 UTC
    # the worst job is the one with the most stalls
    stalls_per_job = pd.Series([p.job for p in agents.of("stall")]).value_counts()
    worst = s.worst_jobs[0]
    assert worst.stalled == stalls_per_job.max()
    assert worst.name in set(stalls_per_job[stalls_per_job == stalls_per_job.max()].index)


def test_empty_frame_keeps_its_types() -> None:
    df = episodes_frame([])
    assert len(df) == 0
    assert str(df["start"].dtype) == "datetime64[ns, UTC]" and str(df["line"].dtype) == "Int64"
    assert summarize(df).silence.p50 is None


def test_parquet_round_trip(logs, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    agents, _ = logs
    out = tmp_path / "e.parquet"
    assert run_lkwedge("report", str(agents.path), "--parquet", str(out)).returncode == 0
    df = pd.read_parquet(out)
    assert len(df) == len(agents.episodes)
    assert str(df["start"].dtype) == "datetime64[ns, UTC]" and str(df["line"].dtype) == "Int64"
    assert (df["verdict"] == "stalled").sum() == len(agents.of("stall"))


def test_parquet_without_pyarrow_is_a_clear_exit_2(logs, tmp_path: Path) -> None:
    agents, _ = logs
    # The installed package, with pyarrow made unimportable (None in sys.modules = "not installed").
    code = "import sys, runpy; sys.modules['pyarrow'] = None; sys.argv[0] = 'lkwedge'; " \
           "runpy.run_module('lkwedge', run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", code, "report", str(agents.path), "--parquet",
                           str(tmp_path / "e.parquet")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs pyarrow" in proc.stderr and "pip install" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "e.parquet").exists()


def test_missing_input_and_unwritable_output_exit_2(logs, tmp_path: Path) -> None:
    agents, _ = logs
    proc = run_lkwedge("report", str(tmp_path / "nope.log"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = run_lkwedge("report", str(agents.path), "--csv", str(tmp_path / "no" / "dir" / "e.csv"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "cannot write" in proc.stderr


def _run_with_tty_stderr(args: list[str]) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", *args], stdout=subprocess.DEVNULL,
                            stderr=follower, env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_only_on_a_terminal(logs) -> None:
    agents, plain = logs
    code, err = _run_with_tty_stderr(["report", str(agents.path), str(plain.path)])
    assert code == 0
    assert "scanning" in err and "━" in err  # Rich's bar
    proc = run_lkwedge("report", str(agents.path))
    assert proc.returncode == 0 and proc.stderr == ""
