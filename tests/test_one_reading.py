"""Issue 8, as a user measured it: each item is a test through the real CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge

SAMPLES = REPO / "samples"
CLOSE = 'received session close: "x" UnknownReason Resume'


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _episodes(report: dict) -> list[tuple]:
    return [(e["line"], e["verdict"], e["silence_s"], e["outcome"]) for e in report["episodes"]]


def test_a_trailing_blank_line_does_not_change_the_verdict(tmp_path: Path) -> None:
    body = ('[2026-05-01T10:01:00.000Z WARN  livekit::rtc_engine] ' + CLOSE + '\n'
            '[2026-05-01T10:01:00.001Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n'
            '[2026-05-01T10:01:30.001Z INFO  x] y\n')
    for tail in ("", "\n", "\n\n\n", "\r\n"):
        log = tmp_path / "t.log"
        log.write_text(body + tail)
        proc = run_lkwedge("scan", str(log))
        assert proc.returncode == 1, (tail, proc.stdout)
        assert "stalled" in proc.stdout and "30.0s" in proc.stdout


def test_gz_through_watch_once_and_gzip_on_stdin_find_the_ghost_stall() -> None:
    sample = SAMPLES / "agents_json_ghost.log.gz"
    want = _episodes(_json(run_lkwedge("scan", "--format", "json", str(sample))))
    # a ghost room (issue 11): ffi 0.12.44 gave up and never reported Disconnected
    assert want and want[0][1] == "ghost" and want[0][2] == pytest.approx(45.4, abs=0.05)
    watched = _json(run_lkwedge("watch", "--once", "--format", "json", str(sample)))
    piped = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--format", "json", "-"],
                           input=sample.read_bytes(), capture_output=True, timeout=60)
    assert _episodes(watched) == want
    assert _episodes(json.loads(piped.stdout)) == want


def test_newest_first_paste_gives_one_answer_through_scan_and_watch() -> None:
    sample = str(SAMPLES / "newest_first_paste.log")
    scanned = _json(run_lkwedge("scan", "--format", "json", sample))
    watched = _json(run_lkwedge("watch", "--once", "--format", "json", sample))
    assert _episodes(scanned) == _episodes(watched)
    assert [e["verdict"] for e in scanned["episodes"]] == ["stalled"]
    short = _json(run_lkwedge("scan", "--format", "json", str(SAMPLES / "newest_first_short_tracing.log")))
    assert [(e["verdict"], round(e["silence_s"])) for e in short["episodes"]] == [("stalled", 30)]


def test_one_config_for_every_command(tmp_path: Path) -> None:
    """lkwedge.toml's window applies to scan as to check; env vars beat it; flags beat both."""
    (tmp_path / ".git").mkdir()
    log = tmp_path / "t.log"
    log.write_text('[2026-05-01T10:01:00Z WARN  livekit::rtc_engine] ' + CLOSE + '\n'
                   '[2026-05-01T10:01:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n'
                   '[2026-05-01T10:01:30Z INFO  livekit::rtc_engine] RtcEngine successfully recovered\n')
    assert run_lkwedge("scan", "t.log", cwd=tmp_path).returncode == 1  # 30 s > the default 20 s
    (tmp_path / "lkwedge.toml").write_text('window = "60s"\n')
    for command in ("scan", "check"):
        proc = run_lkwedge(command, "t.log", cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    env = {**os.environ, "LKWEDGE_SCAN_WINDOW": "10s"}
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "t.log"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, "the environment beats the config file"
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--window", "45s", "t.log"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, "a flag beats the environment"
    other = tmp_path / "other.toml"
    other.write_text('window = "5s"\n')
    assert run_lkwedge("scan", "--config", str(other), "t.log", cwd=tmp_path).returncode == 1
    assert run_lkwedge("--config", str(other), "scan", "t.log", cwd=tmp_path).returncode == 1
    assert "LKWEDGE_" in run_lkwedge("--help").stdout


@pytest.mark.parametrize("line", [
    '{"message": "x", "level": "INFO", "timestamp": 1e20}',
    '{"message": "x", "level": "INFO", "timestamp": NaN}',
    '{"message": "x", "level": "INFO", "timestamp": 253402300800}',
    '{"message": "x", "level": "INFO", "time": 1777629600000}',
    '{"message": "x", "level": "INFO", "time": 123456789012345678901234567890}',
    'Feb 29 10:00:00 host agent[1]: hello',
    'Feb 30 10:00:00 host agent[1]: hello',
    '[9999-12-31T23:00:00Z WARN  livekit::rtc_engine] ' + CLOSE,
    '[0001-01-01T00:00:00Z WARN  livekit::rtc_engine] ' + CLOSE,
    '{"message": ' + '[' * 100_000 + ']' * 100_000 + '}',
])
def test_no_line_crashes_any_command(tmp_path: Path, line: str) -> None:
    log = tmp_path / "odd.log"
    log.write_text('[2026-05-01T10:00:00Z WARN  livekit::rtc_engine] ' + CLOSE + '\n' + line + '\n'
                   '23:00:01.000 ERROR livekit::rtc_engine resuming connection... attempt: 0\n')
    for args in (("scan",), ("watch", "--once"), ("check",), ("report",)):
        proc = run_lkwedge(*args, str(log))
        assert proc.returncode in (0, 1), (args, proc.stderr[-500:])
        assert "Traceback" not in proc.stderr


def test_a_year_typo_is_a_clock_jump_not_a_stall(tmp_path: Path) -> None:
    log = tmp_path / "jump.log"
    log.write_text('[2026-05-01T10:00:00Z WARN  livekit::rtc_engine] ' + CLOSE + '\n'
                   '[2026-05-01T10:00:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n'
                   '[3026-05-01T10:00:01Z INFO  livekit::rtc_engine] resuming connection failed: x\n'
                   '[2026-05-01T10:00:02Z INFO  livekit::rtc_engine] RtcEngine successfully recovered\n')
    report = _json(run_lkwedge("scan", "--format", "json", str(log)))
    assert [e["verdict"] for e in report["episodes"]] == ["recovered"]
    assert report["episodes"][0]["silence_s"] == 2.0
    assert report["summary"]["clock_jumps"] == 1
    assert "clock jump at line 3" in report["episodes"][0]["note"]


def test_a_real_long_silence_is_still_measured(tmp_path: Path) -> None:
    """Two records agreeing on a time hours later: the process really was silent that long."""
    log = tmp_path / "long.log"
    log.write_text('[2026-05-01T10:00:00Z WARN  livekit::rtc_engine] ' + CLOSE + '\n'
                   '[2026-05-01T10:00:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n'
                   '[2026-05-01T13:00:00Z INFO  livekit::rtc_engine] resuming connection failed: x\n'
                   '[2026-05-01T13:00:01Z INFO  livekit::rtc_engine] RtcEngine successfully recovered\n')
    report = _json(run_lkwedge("scan", "--format", "json", str(log)))
    assert [e["verdict"] for e in report["episodes"]] == ["stalled"]
    assert report["episodes"][0]["silence_s"] == 10801.0
    assert report["summary"]["clock_jumps"] == 0


def test_tz_reads_zone_less_times_in_that_zone(tmp_path: Path) -> None:
    log = tmp_path / "local.log"
    log.write_text("2026-05-01 12:00:00,000 - livekit - WARNING - " + CLOSE + "\n"
                   "2026-05-01 12:00:00,100 - livekit - ERROR - resuming connection... attempt: 0\n")
    utc = _json(run_lkwedge("scan", "--format", "json", str(log)))["episodes"][0]["start"]
    berlin = _json(run_lkwedge("scan", "--format", "json", "--tz", "Europe/Berlin", str(log)))["episodes"][0]
    assert utc == "2026-05-01T12:00:00+00:00"
    assert berlin["start"] == "2026-05-01T10:00:00+00:00"
    bad = run_lkwedge("scan", "--tz", "Mars/Olympus", str(log))
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr and "Traceback" not in bad.stderr


def test_internal_errors_have_their_own_exit_code() -> None:
    code = ("import sys, lkwedge.detect.engine as e\n"
            "def boom(*a, **k): raise RuntimeError('simulated bug')\n"
            "e.scan = boom\n"
            "import lkwedge.cli.scan as s; s.scan = boom\n"
            "from lkwedge.cli import main\n"
            "sys.argv = ['lkwedge', 'scan', '-']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], input="", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 70
    assert proc.stderr.count("\n") == 1 and "internal error: RuntimeError: simulated bug" in proc.stderr
    assert "please report it" in proc.stderr and "Traceback" not in proc.stderr


def _stamp(offset: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_watch_started_during_a_wedge_reports_it_at_once_with_its_true_silence(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    lines = [f"{_stamp(-60 + i)}  INFO voice_bot: llm turn finished" for i in range(30)]
    lines += [f"{_stamp(-25)}  WARN livekit::rtc_engine: {CLOSE}",
              f"{_stamp(-25)} ERROR livekit::rtc_engine: resuming connection... attempt: 0"]
    log.write_text("\n".join(lines) + "\n")
    os.utime(log, (time.time() - 24, time.time() - 24))  # the agent went quiet 24 s ago
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--window", "20s", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=4)
    except subprocess.TimeoutExpired:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=10)
    assert f"ALERT stalled {log}:31" in out, (out, err)
    assert "no reconnect in progress" not in out


def test_watch_ends_when_its_pipe_closes_with_scans_answer() -> None:
    sample = SAMPLES / "agents_json_seed_stall.log"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "watch", "--format", "json"],
                          stdin=sample.open("rb"), capture_output=True, timeout=60)
    assert time.monotonic() - start < 30
    scanned = _json(run_lkwedge("scan", "--format", "json", "-", stdin=sample.read_text()))
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == scanned


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    disguised = tmp_path / "agent.log"
    disguised.write_bytes(gzip.compress((SAMPLES / "agents_json_seed_stall.log").read_bytes()))
    report = _json(run_lkwedge("scan", "--format", "json", str(disguised)))
    assert [e["verdict"] for e in report["episodes"]] == ["stalled"]


def test_a_stall_proved_on_the_wall_clock_stays_the_final_word() -> None:
    """Issue 9, item 6: `(head -3 f; sleep 25; tail -2 f) | lkwedge watch --once -`, at a 2 s window."""
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--once", "--window", "2s",
                             "--format", "json", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    t0 = time.time()
    proc.stdin.write(f"{_stamp(0)}  WARN livekit::rtc_engine: {CLOSE}\n"
                     f"{_stamp(0)} ERROR livekit::rtc_engine: resuming connection... attempt: 0\n")
    proc.stdin.flush()
    time.sleep(4.0)
    late = (dt.datetime.fromtimestamp(t0, dt.UTC) + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out, err = proc.communicate(f"{late}  INFO livekit::rtc_engine: RtcEngine successfully recovered\n",
                                timeout=30)
    assert "ALERT stalled" in err
    [episode] = json.loads(out)["episodes"]
    assert episode["verdict"] == "stalled"
    assert episode["silence_s"] >= 2.0, episode
    assert "proved live on the wall clock" in episode["note"]
    assert proc.returncode == 1


def test_a_live_watcher_survives_odd_lines_and_still_reports_its_wedge() -> None:
    """Issue 9, item 1: the bad line arrives while a real wedge is open; the watcher keeps going."""
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--window", "2s", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(f"{_stamp(0)}  WARN livekit::rtc_engine: {CLOSE}\n"
                     f"{_stamp(0)} ERROR livekit::rtc_engine: resuming connection... attempt: 0\n"
                     "[9999-12-31T23:00:00Z INFO  livekit::rtc_engine] resuming connection failed: x\n"
                     '{"message": "x", "level": "INFO", "timestamp": 1e20}\n'
                     '{"message": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    proc.stdin.flush()
    time.sleep(4.0)
    assert proc.poll() is None, "the watcher died on a line"
    proc.send_signal(2)
    out, err = proc.communicate(timeout=20)
    assert "ALERT stalled <stdin>:1" in out, (out, err)
    assert "Traceback" not in err


def test_a_line_longer_than_max_line_is_counted_and_the_episode_around_it_found(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    with log.open("w") as fh:
        fh.write('[2026-05-01T10:00:00Z WARN  livekit::rtc_engine] ' + CLOSE + '\n')
        fh.write("[2026-05-01T10:00:01Z INFO  app] " + "x" * (3 << 20) + "\n")
        fh.write('[2026-05-01T10:00:02Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n'
                 '[2026-05-01T10:00:40Z INFO  livekit::rtc_engine] RtcEngine successfully recovered\n')
    for how in ("file", "stdin"):
        proc = run_lkwedge("scan", "--format", "json", *(["-"] if how == "stdin" else [str(log)]),
                           stdin=log.read_text() if how == "stdin" else None)
        report = _json(proc)
        assert report["summary"]["unparsed_reasons"] == {"too long": 1}, how
        assert [(e["verdict"], e["silence_s"]) for e in report["episodes"]] == [("stalled", 38.0)], how
