"""Ghost rooms through the real CLI: each ghost signal, a give-up on a new SDK, a healthy restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_lkwedge, scan_json
from ghostlog import CLOSE, NEW, OLD, Log, give_up_sequence

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _episodes(path: Path, *args: str) -> tuple[list[dict], dict, int]:
    report, proc = scan_json(*args, str(path))
    return report["episodes"], report["summary"], proc.returncode


def test_give_up_on_an_old_sdk_without_teardown_is_a_ghost(tmp_path: Path) -> None:
    log = Log()
    log.activity(1, "AJ_a")
    gave_up = give_up_sequence(log, 10, "AJ_a", OLD, base=0)
    for t in range(int(gave_up) + 3, int(gave_up) + 40, 5):
        log.activity(t, "AJ_b")  # the rest of the worker keeps logging
    path = tmp_path / "old.log"
    path.write_text(log.text())
    (ep,), summary, code = _episodes(path)
    assert (ep["verdict"], ep["confidence"], ep["outcome"]) == ("ghost", "high", "gave_up")
    assert code == 1 and summary["ghost"] == 1 and summary["stalled"] == 0
    give_up_line = next(e["line"] for e in ep["evidence"] if e["pattern"] == "give-up")
    assert ep["ghost_evidence"] == [give_up_line]
    assert ep["sdk"]["rtc"] == "1.0.23-1.0.25" and ep["sdk"]["ffi"] == "0.12.40-0.12.44"
    assert "never reports Disconnected" in ep["note"]
    assert "1.1.9" in ep["advice"] and "evict" in ep["advice"]


def test_give_up_on_an_old_sdk_followed_by_a_teardown_is_disconnected(tmp_path: Path) -> None:
    log = Log()
    gave_up = give_up_sequence(log, 10, "AJ_a", OLD, base=0)
    log.job(gave_up + 0.3, "AJ_a", "process exiting", reason="room disconnected")
    log.activity(gave_up + 40, "AJ_b")
    path = tmp_path / "old-exit.log"
    path.write_text(log.text())
    (ep,), _, code = _episodes(path)
    assert (ep["verdict"], ep["outcome"], ep["confidence"]) == ("disconnected", "job_exited", None)
    assert code == 0


def test_give_up_on_a_new_sdk_ends_the_episode_and_shutdown_time_is_not_silence(tmp_path: Path) -> None:
    log = Log()
    gave_up = give_up_sequence(log, 10, "AJ_a", NEW, base=1)
    log.chatter(gave_up + 15, "AJ_a", "uploading recording")
    log.job(gave_up + 35, "AJ_a", "process exiting", reason="room disconnected")
    path = tmp_path / "new.log"
    path.write_text(log.text())
    (ep,), _, code = _episodes(path)
    assert (ep["verdict"], ep["outcome"]) == ("disconnected", "gave_up")
    assert ep["silence_s"] < 2 and code == 0
    assert ep["end"].startswith("2026-03-04T09:00:12")
    assert "closes the room itself" in ep["note"]


def test_give_up_with_an_unknown_sdk_keeps_the_verdict_and_says_why(tmp_path: Path) -> None:
    # no forwarded line numbers, no attempt 0/10, no version wording: nothing dates this SDK
    path = tmp_path / "unknown.log"
    path.write_text(
        "".join(
            f"[2026-03-04T09:00:{s:02d}Z {lvl} livekit::rtc_engine] {msg}\n"
            for s, lvl, msg in [
                (0, "ERROR", "restarting connection... attempt: 5"),
                (1, "ERROR", "failed to reconnect to the livekit room"),
                (45, "INFO", "still logging"),
            ]
        )
    )
    (ep,), _, code = _episodes(path)
    assert ep["verdict"] == "stalled" and ep["sdk"] is None and code == 1
    assert "SDK version unknown" in ep["note"]


def _claimed_success(log: Log, job: str, at: float, table: dict[str, int], restart: bool) -> None:
    log.sdk(at, job, CLOSE, table["close"], "WARNING")
    if restart:
        log.sdk(at + 0.001, job, "restarting connection... attempt: 0", table["restart_attempt"])
    else:
        log.sdk(at + 0.001, job, "resuming connection... attempt: 0", table["resume_attempt"])
    log.sdk(at + 0.6, job, "RtcEngine successfully recovered", table["recovered"], "INFO")


def test_success_then_no_media_is_a_medium_ghost_and_media_within_the_window_is_not(tmp_path: Path) -> None:
    log = Log()
    for job in ("AJ_ghost", "AJ_fine"):
        log.activity(1, job)
        _claimed_success(log, job, 10, OLD, restart=False)
    log.activity(14, "AJ_fine")
    for t in range(12, 40, 4):
        log.chatter(t, "AJ_ghost")
    path = tmp_path / "claimed.log"
    path.write_text(log.text())
    eps, summary, code = _episodes(path)
    by_job = {e["job"]: e for e in eps}
    assert by_job["AJ_ghost"]["verdict"] == "ghost" and by_job["AJ_ghost"]["confidence"] == "medium"
    assert by_job["AJ_fine"]["verdict"] == "recovered" and code == 1
    # a longer --ghost-window than the log has left makes it no ghost at all
    eps, summary, code = _episodes(path, "--ghost-window", "40s")
    assert summary["ghost"] == 0 and code == 0


def test_supporting_lines_make_a_high_confidence_ghost_and_are_named(tmp_path: Path) -> None:
    log = Log()
    log.activity(1, "AJ_g")
    _claimed_success(log, "AJ_g", 10, OLD, restart=False)
    log.sdk(10.7, "AJ_g", 'received track from an unknown participant: "PA_x"', 1021, target="livekit::room")
    for t in range(12, 30, 3):
        log.chatter(t, "AJ_g")
    path = tmp_path / "support.log"
    path.write_text(log.text())
    (ep,), _, _ = _episodes(path)
    assert (ep["verdict"], ep["confidence"]) == ("ghost", "high")
    support = [e["line"] for e in ep["evidence"] if e["role"] == "evidence"]
    assert support and set(support) <= set(ep["ghost_evidence"])


def test_restart_join_response_then_no_media_is_a_ghost(tmp_path: Path) -> None:
    log = Log()
    log.activity(1, "AJ_j")
    log.sdk(
        10,
        "AJ_j",
        'received session close: "server request to leave" StateMismatch Reconnect',
        474,
        "WARNING",
    )
    log.sdk(10.01, "AJ_j", "restarting connection... attempt: 0", 749)
    log.sdk(
        10.4,
        "AJ_j",
        'received JoinResponse: JoinResponse { room: Some(Room { sid: "RM_1" }) }',
        300,
        "DEBUG",
        target="livekit::rtc_engine::rtc_session",
    )
    for t in range(11, 27, 3):
        log.chatter(t, "AJ_j")
    path = tmp_path / "join.log"
    path.write_text(log.text())
    (ep,), _, code = _episodes(path)
    assert (ep["verdict"], ep["confidence"]) == ("ghost", "high")  # a full restart backs it
    assert "JoinResponse after a restart" in ep["note"] and code == 1


def test_healthy_restart_and_rust_apps_without_media_vocabulary_are_not_ghosts(tmp_path: Path) -> None:
    log = Log()
    log.activity(1, "AJ_h")
    _claimed_success(log, "AJ_h", 10, OLD, restart=True)
    log.activity(12.5, "AJ_h")
    for t in range(13, 40, 3):
        log.chatter(t, "AJ_h")
    path = tmp_path / "healthy.log"
    path.write_text(log.text())
    (ep,), _, code = _episodes(path)
    assert ep["verdict"] == "recovered" and code == 0
    # A Rust app never logs agents' media lines, so silence after success proves nothing there
    _, summary, code = _episodes(SAMPLES / "env_logger_rust_app.log")
    assert summary["ghost"] == 0 and code == 0


def test_sample_manifest_covers_each_ghost_signal() -> None:
    manifest = json.loads((SAMPLES / "expected.json").read_text())
    ghosts = [
        (s["file"], e.get("confidence"))
        for s in manifest["samples"]
        for e in s["episodes"]
        if e["verdict"] == "ghost"
    ]
    assert ("agents_json_ghost.log.gz", "high") in ghosts  # give-up on ffi 0.12.44
    assert ("agents_json_ghost_after_restart.log", "high") in ghosts  # restart + supporting lines
    assert ("agents_json_ghost_after_restart.log", "medium") in ghosts  # resume success, no media


def test_check_report_and_junit_count_ghosts(tmp_path: Path) -> None:
    sample = str(SAMPLES / "agents_json_ghost_after_restart.log")
    junit = tmp_path / "j.xml"
    proc = run_lkwedge("check", sample, "--junit", str(junit))
    assert proc.returncode == 1
    assert "FAIL max-ghosts: 2 ghost episodes, at most 0 allowed" in proc.stdout
    assert "2 ghost" in proc.stdout and "sdk: " in proc.stdout
    assert junit.read_text().count('type="ghost"') == 2
    assert run_lkwedge("check", sample, "--max-ghosts", "2").returncode == 0
    html = tmp_path / "r.html"
    out = tmp_path / "r.json"
    proc = run_lkwedge("report", sample, "--html", str(html), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["summary"]["verdicts"]["ghost"] == 2
    page = html.read_text()
    assert 'data-verdict="ghost"' in page and "#ad1457" in page  # the presentation table's ghost colour


def test_bad_ghost_window_is_a_usage_error() -> None:
    proc = run_lkwedge("scan", "--ghost-window", "0", str(SAMPLES / "python_asctime.log"))
    assert proc.returncode == 2 and "--ghost-window" in proc.stderr and "Traceback" not in proc.stderr


def test_watch_alerts_and_evicts_a_ghost_live() -> None:
    from lkwedge.testing import FakeRoomService

    secret = "a-long-enough-test-secret-0123456789"
    with FakeRoomService(api_key="devkey", api_secret=secret) as fake:
        fake.add_room("room-AJ_live", sid="RM_1", participants=["agent-AJ_live"])
        env = {
            "LIVEKIT_URL": fake.url,
            "LIVEKIT_API_KEY": "devkey",
            "LIVEKIT_API_SECRET": secret,
            "PATH": "/usr/bin:/bin",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "lkwedge", "watch", "--window", "1s", "--evict"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            import datetime as dt

            log = Log(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2.5))
            give_up_sequence(log, 0, "AJ_live", OLD, base=0)
            assert proc.stdin is not None
            proc.stdin.write(log.text())
            proc.stdin.flush()
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not fake.removals():
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)  # watch keeps following stdin until stopped
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert fake.removals() == [("room-AJ_live", "agent-AJ_live")], err
    assert "ALERT ghost <stdin>:1" in out and "ghost room (high): gave up" in out, out + err
    assert "EVICT evicted" in err and proc.returncode == 1
    assert secret not in out + err


def test_settings_file_max_ghosts_and_fail_on_ghost(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the settings search stops at the repository root
    sample = str(SAMPLES / "agents_json_ghost_after_restart.log")
    (tmp_path / "lkwedge.toml").write_text("max_ghosts = 2\n", encoding="utf-8")
    assert run_lkwedge("check", sample, cwd=tmp_path).returncode == 0
    (tmp_path / "lkwedge.toml").write_text('max_ghosts = 5\nfail_on = ["ghost"]\n', encoding="utf-8")
    proc = run_lkwedge("check", sample, cwd=tmp_path)
    assert proc.returncode == 1 and "fail-on ghost: 2 ghost episodes" in proc.stdout
    (tmp_path / "lkwedge.toml").write_text('ghost_window = "40s"\n', encoding="utf-8")
    assert run_lkwedge("check", sample, cwd=tmp_path).returncode == 0  # the log ends before 40 s of silence
    (tmp_path / "lkwedge.toml").write_text('max_ghosts = "x"\n', encoding="utf-8")
    proc = run_lkwedge("check", sample, cwd=tmp_path)
    assert proc.returncode == 2 and "max_ghosts" in proc.stderr


def test_a_late_socket_error_after_the_give_up_does_not_hide_the_ghost(tmp_path: Path) -> None:
    log = Log()
    gave_up = give_up_sequence(log, 10, "AJ_a", OLD, base=0)
    log.sdk(
        gave_up + 1,
        "AJ_a",
        "unhandled websocket message Err(Io(Os { code: 104, kind: ConnectionReset, "
        'message: "Connection reset by peer" }))',
        300,
        target="livekit_api::signal_client::signal_stream",
    )
    log.activity(gave_up + 40, "AJ_b")
    path = tmp_path / "late.log"
    path.write_text(log.text())
    (ep,), _, _ = _episodes(path)
    assert (ep["verdict"], ep["confidence"]) == ("ghost", "high")
    assert ep["evidence"][-2]["fields"]["error_kind"] == "ConnectionReset"
