"""`watch --job/--room`: only the selected episodes alert, are evicted, shown and counted. The real
`lkwedge watch` on a real appended file and on a pipe."""

from __future__ import annotations

import json
import time
from pathlib import Path

import test_watch as tw
from conftest import REPO, run_lkwedge
from test_watch import watches  # noqa: F401 - test_watch's fixture (kills the watches it started)

TWO_JOBS = REPO / "samples" / "agents_json_two_jobs.log"   # AJ_Xq3kW9vTn2Lp stalls, AJ_Rt7mB2yHc5Ue recovers


def _wedge(job: str, room: str | None = None) -> list[str]:
    """A resume of `job` that then says nothing (agents JSON, stamped now)."""
    lines = [tw.agents(tw.sdk(tw.CLOSE), job, "WARNING"), tw.agents(tw.sdk(tw.ATTEMPT), job, "ERROR")]
    if room is None:
        return lines
    return [json.dumps({**json.loads(line), "room": room}) for line in lines]


def test_job_on_a_followed_file_alerts_only_for_that_job(tmp_path: Path, watches) -> None:  # noqa: F811
    log = tmp_path / "agent.log"
    log.write_text(tw.agents("worker started", "AJ_A") + "\n")
    w = watches("--window", "2s", "--jsonl", "-", "--job", "AJ_A", str(log))
    time.sleep(0.4)                                      # the follower opens the file at its end
    tw._append(log, *_wedge("AJ_B"), *_wedge("AJ_A"))     # both wedge; B first
    assert w.wait_out('"event": "alert"', timeout=6), w.stderr
    time.sleep(1.5)                                      # B's alert would have come by now
    assert w.stop() == 1
    assert [(e["event"], e["job"]) for e in w.events()] == [("alert", "AJ_A")]
    summary = w.stderr
    assert "key=job:AJ_A" in summary and "AJ_B" not in summary
    assert "0 episodes in 5 lines (1 file): 0 stalled" in summary and "1 still open" in summary


def test_room_on_a_pipe_selects_by_room_and_exits_0_when_the_selected_room_is_fine(watches) -> None:  # noqa: F811
    w = watches("--window", "2s", "--room", "room-quiet")
    w.write(*_wedge("AJ_A", "room-busy"), tw.agents("STT metrics", "AJ_Q"))
    time.sleep(3.0)                                      # more than the window: AJ_A is stalled
    assert w.stop() == 0, w.stderr
    assert "ALERT" not in w.stdout and "AJ_A" not in w.stdout + w.stderr

    w = watches("--window", "2s", "--room", "room-busy")
    w.write(*_wedge("AJ_A", "room-busy"), *_wedge("AJ_B", "room-other"))
    assert w.wait_out("ALERT stalled <stdin>:1", timeout=6), w.stderr
    time.sleep(1.0)
    assert w.stop() == 1
    assert next(line for line in w.stdout.splitlines() if "ALERT" in line).count("room=room-busy") == 1
    assert "<stdin>:3" not in w.stdout + w.stderr      # AJ_B's episode is neither alerted nor listed


def test_evict_only_the_selected_job(watches) -> None:  # noqa: F811
    from lkwedge.testing import FakeRoomService

    secret = "a-long-enough-test-secret-0123456789"
    with FakeRoomService(api_key="devkey", api_secret=secret) as fake:
        fake.add_room("r1", sid="RM_1", participants=["agent-AJ_x", "agent-AJ_y"])
        env = {"LIVEKIT_URL": fake.url, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": secret}
        w = watches("--window", "2s", "--evict", "--job", "AJ_y", env=env)
        w.write(*_wedge("AJ_x", "r1"), *_wedge("AJ_y", "r1"))
        assert w.wait_err("EVICT evicted", timeout=8), w.stderr
        time.sleep(1.0)
        assert w.stop() == 1
        assert fake.removals() == [("r1", "agent-AJ_y")]


def test_once_with_job_and_room_gives_scan_s_filtered_answer() -> None:
    for flags in (["--job", "AJ_Rt7mB2yHc5Ue"], ["--room", "call-_+15551230001_Ab3x"]):
        watched = run_lkwedge("watch", "--once", "--format", "json", *flags, str(TWO_JOBS))
        scanned = run_lkwedge("scan", "--format", "json", *flags, str(TWO_JOBS))
        assert watched.returncode == scanned.returncode
        assert json.loads(watched.stdout) == json.loads(scanned.stdout)
        assert json.loads(watched.stdout)["summary"]["filtered_out"] == 1
    text = run_lkwedge("watch", "--once", "--job", "AJ_Rt7mB2yHc5Ue", str(TWO_JOBS))
    assert text.returncode == 0                          # the stalled job was not selected
    assert "ALERT" not in text.stdout and "AJ_Xq3kW9vTn2Lp" not in text.stdout
    assert "1 episode in 45 lines (1 file): 0 stalled, 0 ghost, 0 unresolved, 0 disconnected, " \
           "1 recovered" in text.stdout


def test_evict_room_needs_evict() -> None:
    proc = run_lkwedge("watch", "--evict-room", "r1", "-", stdin="", timeout=30)
    assert proc.returncode == 2 and "--evict-room needs --evict" in proc.stderr
