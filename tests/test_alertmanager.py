"""`watch --alertmanager`: a real Alertmanager (Debian prometheus-alertmanager) on loopback receives the
alerts of a real `lkwedge watch` fed through a pipe or a file.  Windows are 2 s so each test takes seconds."""

from __future__ import annotations

import datetime as dt
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from fleet_helpers import (
    ATTEMPT,
    CLOSE,
    GAVE_UP,
    RECOVERED,
    RESTART_FAILED,
    Alertmanager,
    agents,
    free_port,
    http_get,
    metric_value,
    wait_for,
)


@pytest.fixture
def alertmanager(tmp_path: Path):
    am = Alertmanager(tmp_path)
    yield am
    am.stop()


def _iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_live_stall_is_an_active_alert_with_its_labels_re_sent_while_open_and_resolved_on_recovery(
        tmp_path: Path, alertmanager: Alertmanager, watches) -> None:
    peer = Alertmanager(tmp_path, "am-peer")         # both members of an HA pair get every alert
    dead = f"http://127.0.0.1:{free_port()}"        # a third member is down: the others must not wait for it
    try:
        _live_stall(alertmanager, peer, dead, watches)
    finally:
        peer.stop()


def _live_stall(alertmanager: Alertmanager, peer: Alertmanager, dead: str, watches) -> None:
    w = watches("--window", "2s", "--alertmanager", dead, "--alertmanager", alertmanager.url,
                "--alertmanager", peer.url, "--alertmanager-resend", "1s", "--alert-label", "cluster=test-eu")
    w.write(agents("starting job", level="INFO"))
    time.sleep(0.3)
    t0 = time.monotonic()
    w.write(agents(CLOSE), agents(ATTEMPT, level="ERROR"))
    active = wait_for(lambda: alertmanager.active("LiveKitReconnectStalled"), 2 + 3 + 1)
    elapsed = time.monotonic() - t0
    assert active, w.stdout + w.stderr
    assert elapsed <= 2 + 3, elapsed
    (alert,) = active
    assert alert["labels"] == {"alertname": "LiveKitReconnectStalled", "job_id": "AJ_fleet1",
                               "room": "room-fleet", "participant": "agent-AJ_fleet1",
                               "instance": socket.gethostname(), "severity": "critical", "cluster": "test-eu"}
    notes = alert["annotations"]
    assert notes["summary"].startswith(
        "ALERT stalled <stdin>:2 [job:AJ_fleet1 room=room-fleet] no progress for")
    assert re.fullmatch(r"\d+\.\ds", notes["silence"])
    assert "resuming connection... attempt: 0" in notes["evidence"]
    fingerprint, first_end = alert["fingerprint"], _iso(alert["endsAt"])
    assert [a["fingerprint"] for a in wait_for(lambda: peer.active(), 2)] == [fingerprint]
    # endsAt is 4 re-send intervals ahead: without the re-sends Alertmanager would resolve it by now.
    time.sleep(5)
    (again,) = alertmanager.active("LiveKitReconnectStalled")
    assert again["fingerprint"] == fingerprint
    assert _iso(again["endsAt"]) > first_end + dt.timedelta(seconds=3)
    assert _iso(again["startsAt"]) == _iso(alert["startsAt"])
    assert float(again["annotations"]["silence"][:-1]) > float(notes["silence"][:-1])

    t1 = time.monotonic()
    w.write(agents(RECOVERED, level="INFO"))
    assert wait_for(lambda: not alertmanager.active(), 3), alertmanager.alerts()
    assert time.monotonic() - t1 <= 3
    assert wait_for(lambda: not peer.active(), 2), peer.alerts()
    assert w.stop() == 1
    dead_reports = [line for line in w.err if dead.removeprefix("http://") in line]
    # Reported once per failure streak, not per retry; and at shutdown, what it never got.
    assert sum("connection failed" in line for line in dead_reports) == 1, w.stderr
    assert "shut down with 1 resolution(s) undelivered" in dead_reports[-1], w.stderr


def test_a_stall_that_ends_in_a_give_up_becomes_a_ghost_room_alert(alertmanager: Alertmanager,
                                                                    watches) -> None:
    w = watches("--window", "2s", "--alertmanager", alertmanager.url, "--alertmanager-resend", "1s",
                "--metrics", "127.0.0.1:0")
    w.write(agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR"))
    assert wait_for(lambda: alertmanager.active("LiveKitReconnectStalled"), 5), w.stderr
    # The SDK gives up; no disconnect follows (livekit-ffi < 0.12.59): after a window it is a ghost room.
    w.write(agents(RESTART_FAILED, level="ERROR"), agents(GAVE_UP, level="ERROR"))
    ghost = wait_for(lambda: alertmanager.active("LiveKitGhostRoom"), 2 + 3)
    assert ghost, alertmanager.alerts()
    assert ghost[0]["labels"]["job_id"] == "AJ_fleet1" and ghost[0]["labels"]["room"] == "room-fleet"
    assert ghost[0]["annotations"]["summary"].startswith("ghost room")
    assert wait_for(lambda: not alertmanager.active("LiveKitReconnectStalled"), 3)
    text = wait_for(lambda: (t := http_get(w.metrics_url())[2]) and
                    metric_value(t, "lkwedge_open_episodes", 'state="ghost"') == 1 and t, 3)
    assert text, http_get(w.metrics_url())[2]
    assert metric_value(text, "lkwedge_open_episodes", 'state="stalled"') == 0
    # The job finally exits: the ghost is resolved.
    w.write(agents("process exiting", level="INFO"))
    assert wait_for(lambda: not alertmanager.active(), 3), alertmanager.alerts()
    w.stop()


def test_the_same_wedge_seen_by_a_restarted_watcher_is_the_same_alert(tmp_path: Path,
                                                                       alertmanager: Alertmanager,
                                                                       watches) -> None:
    log = tmp_path / "agent.log"
    log.write_text(agents("job running", level="INFO") + "\n" + agents(CLOSE) + "\n"
                   + agents(ATTEMPT, level="ERROR") + "\n")
    args = ("--window", "2s", "--from-start", str(log), "--alertmanager", alertmanager.url,
            "--alertmanager-resend", "1s")
    first = watches(*args)
    (alert,) = wait_for(lambda: alertmanager.active(), 6) or [None]
    assert alert is not None, first.stderr
    assert first.stop(signal.SIGTERM) == 1
    assert alertmanager.active(), "stopping a watcher must not resolve a wedge that is still open"
    second = watches(*args)
    wait_for(lambda: any("ALERT stalled" in line for line in second.out), 8)
    time.sleep(1.5)                      # let the second watcher's first POST land
    alerts = alertmanager.active()
    assert [a["fingerprint"] for a in alerts] == [alert["fingerprint"]], alerts
    assert alerts[0]["startsAt"] == alert["startsAt"]        # Alertmanager merged it into the same alert
    assert _iso(alerts[0]["updatedAt"]) > _iso(alert["updatedAt"])
    second.stop()


def test_a_job_that_wedges_again_right_after_recovering_fires_a_new_alert(alertmanager: Alertmanager,
                                                                          watches) -> None:
    w = watches("--window", "2s", "--alertmanager", alertmanager.url, "--alertmanager-resend", "1s")
    w.write(agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR"))
    (first,) = wait_for(lambda: alertmanager.active(), 5) or [None]
    assert first is not None, w.stderr
    # Recovered, and at once a new reconnect of the same job that wedges too: same labels, new alert.
    w.write(agents(RECOVERED, level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR"))
    assert wait_for(lambda: not alertmanager.active(), 2), alertmanager.alerts()
    (second,) = wait_for(lambda: alertmanager.active(), 5) or [None]
    assert second is not None, w.stdout + w.stderr
    assert second["fingerprint"] == first["fingerprint"]
    assert _iso(second["startsAt"]) > _iso(first["startsAt"])
    assert "<stdin>:5" in second["annotations"]["episode"]
    time.sleep(1.5)                                   # re-sends keep it firing
    assert alertmanager.active()
    w.stop()


def test_log_text_in_labels_and_annotations_is_inert_and_valid_utf8() -> None:
    """Room names, job ids and evidence come from untrusted log text (and file names may not be UTF-8)."""
    import json

    from lkwedge.detect.episodes import Episode, Evidence
    from lkwedge.live.alertmanager import AlertmanagerHook

    hook = AlertmanagerHook([], on_error=lambda msg: None, instance="h1")
    name = "/var/log/\udcffagent.log"            # a file name that is not UTF-8 (surrogate-escaped)
    ep = Episode(id=f"{name}:7", file=name, line=7, key="job:AJ\x1b[2J",
                 job="AJ\x1b[2J", room="room\n\x1b]0;owned\x07", stalled=True, outcome="escalated",
                 evidence=[Evidence(7, None, "trigger", "received session close \x1b[31mred\u2028x")])
    labels = hook.labels_for(ep, "stalled")
    notes = hook.annotations_for(ep, "stalled", 21.0)
    assert labels["job_id"] == "AJ\\x1b[2J" and labels["room"] == "room\\x0a\\x1b]0;owned\\x07"
    assert labels["participant"] == "agent-AJ\\x1b[2J"
    body = json.dumps([labels, notes], ensure_ascii=False).encode("utf-8")      # no surrogates left
    assert b"\x1b" not in body and b"\x07" not in body
    assert "line 7: received session close \\x1b[31mred\\x2028x" in notes["evidence"]
    assert notes["episode"] == "/var/log/\\xffagent.log:7"
    hook.close(0.1)
