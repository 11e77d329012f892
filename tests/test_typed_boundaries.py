"""Typed objects from the engine to every sink: a `LiveEvent` with an `Episode` snapshot for the alert
sinks, the console and the hooks, a `Summary` for the outputs. The texts they produce are the ones the
dict-based code produced (the expected strings below were made by it on the same episode), and a sink
handed a dict fails instead of guessing."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge

from lkwedge.detect.engine import ScanResult, scan
from lkwedge.detect.episodes import Episode, Evidence
from lkwedge.live.events import LiveEvent, snapshot
from lkwedge.live.sinks import JsonlSink, WebhookSink, command_env, format_console
from lkwedge.live.view import compact_event
from lkwedge.live.workqueue import Job, WorkQueue
from lkwedge.output.check import CheckOptions, run_checks
from lkwedge.output.junit import build_junit
from lkwedge.verdicts import Verdict

TWO_JOBS = "samples/agents_json_two_jobs.log"
ALERT_WALL, RESOLVED_WALL = 1777629625.25, 1777629668.0


@pytest.fixture(scope="module")
def scanned() -> ScanResult:
    import os

    here = os.getcwd()
    os.chdir(REPO)                      # the file name as a user gives it, relative
    try:
        return scan([TWO_JOBS])
    finally:
        os.chdir(here)


@pytest.fixture
def stalled(scanned: ScanResult) -> Episode:
    ep = scanned.episodes[0]
    assert (ep.key, ep.verdict) == ("job:AJ_Xq3kW9vTn2Lp", Verdict.STALLED)
    return ep


def test_console_line_of_an_alert_and_a_resolution(stalled: Episode) -> None:
    alert = LiveEvent("alert", snapshot(stalled, verdict=Verdict.STALLED), ALERT_WALL)
    assert format_console(alert) == (
        '2026-05-01T10:00:25.250Z ALERT stalled samples/agents_json_two_jobs.log:19 [job:AJ_Xq3kW9vTn2Lp '
        'room=call-_+15551230001_Ab3x] no progress for 36.2s since 2026-03-05T09:12:05.331870+00:00: '
        '{"job_id": "AJ_Xq3kW9vTn2Lp", "level": "WARNING", "message": "livekit::rtc_engine:519:livekit::'
        'rtc_engine - received session close: \\"signal client closed: \\\\\\…')
    resolved = LiveEvent("resolved", snapshot(stalled), RESOLVED_WALL, outage_s=39.512)
    assert format_console(resolved) == (
        "2026-05-01T10:01:08.000Z RESOLVED samples/agents_json_two_jobs.log:19 [job:AJ_Xq3kW9vTn2Lp "
        "room=call-_+15551230001_Ab3x] activity after an outage of 39.5s")
    assert compact_event(resolved, 80)[9:] == \
        "RESOLVED samples/agents_json_two_jobs.log:19 activity after 39.5s job:…"


def test_on_alert_environment(stalled: Episode) -> None:
    assert command_env(LiveEvent("alert", snapshot(stalled), ALERT_WALL)) == {
        "LKWEDGE_EVENT": "alert", "LKWEDGE_VERDICT": "stalled", "LKWEDGE_FILE": TWO_JOBS,
        "LKWEDGE_LINE": "19", "LKWEDGE_KEY": "job:AJ_Xq3kW9vTn2Lp", "LKWEDGE_JOB": "AJ_Xq3kW9vTn2Lp",
        "LKWEDGE_ROOM": "call-_+15551230001_Ab3x", "LKWEDGE_SILENCE_S": "36.195",
        "LKWEDGE_START": "2026-03-05T09:12:05.331870+00:00"}


def test_json_records_are_scan_s_episode_plus_the_event(stalled: Episode, tmp_path: Path) -> None:
    resolved = LiveEvent("resolved", snapshot(stalled), RESOLVED_WALL, outage_s=39.512)
    out = tmp_path / "events.jsonl"
    sink = JsonlSink(str(out))
    sink.emit(resolved)
    sink.close()
    line = out.read_text()
    expected = {**stalled.to_dict(), "outage_s": 39.512, "event": "resolved",
                "wall_time": "2026-05-01T10:01:08.000Z"}
    assert line == json.dumps(expected, ensure_ascii=False) + "\n"      # byte for byte, key order too
    body = WebhookSink.body(resolved)
    assert list(body) == ["text", "event", "wall_time", "episode"]
    assert body["episode"] == {**stalled.to_dict(), "outage_s": 39.512}


def test_a_sink_handed_a_dict_fails_loudly(stalled: Episode, tmp_path: Path) -> None:
    as_dict = {**stalled.to_dict(), "event": "alert"}
    with pytest.raises(AttributeError):
        format_console(as_dict)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        command_env(as_dict)  # type: ignore[arg-type]
    sink = JsonlSink(str(tmp_path / "x.jsonl"))
    try:
        with pytest.raises(TypeError, match="a sink takes a LiveEvent, not dict"):
            sink.emit(as_dict)  # type: ignore[arg-type]
    finally:
        sink.close()


def test_an_event_keeps_the_episode_as_it_was_when_it_happened(stalled: Episode) -> None:
    """Sinks run on other threads while the detector goes on: the event's episode is a snapshot."""
    live = snapshot(stalled)                        # stands for the detector's own object
    alert = LiveEvent("alert", snapshot(live, verdict=Verdict.STALLED, silence_s=25.0), ALERT_WALL)
    live.evidence.append(Evidence(99, None, "success", "RtcEngine successfully recovered"))
    live.verdict, live.silence_s, live.note = Verdict.RECOVERED, 40.0, "changed"
    assert alert.episode.verdict == Verdict.STALLED and alert.episode.silence_s == 25.0
    assert [e.line for e in alert.episode.evidence] == [e.line for e in stalled.evidence]
    assert alert.to_dict()["verdict"] == "stalled" and alert.to_dict()["silence_s"] == 25.0


def test_work_queue_orders_events_by_episode() -> None:
    seen: list[str] = []
    done = threading.Event()

    def handle(job: Job) -> None:
        seen.append(f"{job.event.kind} {job.key}")
        if len(seen) == 2:
            done.set()

    ep = Episode(id="a.log:3", file="a.log", line=3, key="job:AJ_1", verdict=Verdict.STALLED)
    q = WorkQueue("test", handle, lambda msg: None)
    q.put(Job(LiveEvent("alert", ep, 0.0)))
    q.put(Job(LiveEvent("resolved", ep, 1.0, outage_s=3.0)))
    assert done.wait(5)
    q.close(1)
    assert seen == ["alert a.log:3", "resolved a.log:3"]


def test_junit_and_json_from_the_typed_result(scanned: ScanResult) -> None:
    outcome = run_checks(scanned, CheckOptions())
    tree = build_junit([TWO_JOBS], scanned, outcome.failures)
    failures = tree.getroot().findall(".//failure")
    assert [(f.get("type"), f.get("line")) for f in failures] == [("stalled", "19")]
    assert f"{TWO_JOBS}:19: [trigger]" in (failures[0].text or "")
    assert ET.tostring(tree.getroot()).count(b"<testcase") == 1
    # the summary's JSON is the CLI's, key for key
    cli = json.loads(run_lkwedge("scan", "--format", "jsonl", TWO_JOBS, cwd=REPO).stdout.splitlines()[-1])
    assert json.dumps(scanned.summary.to_dict() | {"incidents": 1}) == json.dumps(cli["summary"])
    assert list(cli["summary"]) == [
        "files", "lines", "records", "unparsed", "unparsed_reasons", "episodes", "recovered", "disconnected",
        "stalled", "unresolved", "ghost", "open", "window_s", "out_of_order", "clock_jumps", "bad_times",
        "duplicates", "unrecognised_inputs", "notes", "sdk", "incidents"]
    assert scanned.summary.count(Verdict.STALLED) == 1 and scanned.summary.wedged
