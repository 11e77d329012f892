"""lkwedge.live.sinks: real files, real commands and a real local HTTP server."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lkwedge.detect.episodes import Episode, Evidence
from lkwedge.live.events import LiveEvent
from lkwedge.live.sinks import CommandSink, Fanout, JsonlSink, WebhookSink, format_console
from lkwedge.verdicts import Verdict

EVIL = "$(touch PWNED); `touch PWNED2` \x1b[31m[bold]red[/bold] \r\n next"


def episode(key: str = "job:AJ_1", **over: Any) -> Episode:
    ep = Episode(id="agent.log:12", file="agent.log", line=12, key=key, job="AJ_1", pid=460, room="demo-room",
                 start=dt.datetime(2026, 5, 1, 10, 0, 5, tzinfo=dt.UTC), silence_s=20.5, attempts=1,
                 verdict=Verdict.STALLED, note="no progress for 20.5 s",
                 evidence=[Evidence(12, dt.datetime(2026, 5, 1, 10, 0, 5, tzinfo=dt.UTC), "attempt",
                                    "resuming connection... attempt: 0", "resume-attempt")])
    for name, value in over.items():
        setattr(ep, name, value)
    return ep


def event(kind: str, wall: float, *args: Any, outage_s: float | None = None, **over: Any) -> LiveEvent:
    return LiveEvent(kind, episode(*args, **over), wall, outage_s)  # type: ignore[arg-type]


class Errors(list):
    def __call__(self, msg: str) -> None:
        self.append(msg)


def wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# -- JSON lines ---------------------------------------------------------------------------------------

def test_jsonl_file_gets_one_object_per_event(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    sink = JsonlSink(str(out))
    sink.emit(event("alert", 1777629625.25))
    sink.emit(event("resolved", 1777629668.0, verdict="recovered", outcome="recovered", outage_s=63.0))
    sink.close()
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["event"] for r in recs] == ["alert", "resolved"]
    assert recs[0]["wall_time"] == "2026-05-01T10:00:25.250Z"
    assert recs[0]["key"] == "job:AJ_1" and recs[0]["verdict"] == "stalled"
    assert recs[0]["evidence"][0]["text"] == "resuming connection... attempt: 0"
    assert recs[1]["outage_s"] == 63.0


def test_jsonl_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonlSink("-")
    sink.emit(event("alert", time.time()))
    sink.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and json.loads(out[0])["event"] == "alert"


# -- console line --------------------------------------------------------------------------------------

def test_console_line_escapes_log_text() -> None:
    ep = episode(key=EVIL, room=EVIL)
    ep.evidence[0].text = EVIL
    line = format_console(LiveEvent("alert", ep, time.time()))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\\x1b[31m" in line and "[bold]red[/bold]" in line
    assert "ALERT stalled agent.log:12" in line and "20.5s" in line
    resolved = format_console(event("resolved", time.time(), outcome="recovered", outage_s=42.25))
    assert "RESOLVED agent.log:12" in resolved and "recovered" in resolved and "42.2s" in resolved


# -- command -------------------------------------------------------------------------------------------

RECORDER = r"""
import json, os, sys, time
out = sys.argv[1]
rec = {"stdin": json.loads(sys.stdin.read()), "started": time.time(),
       "env": {k: v for k, v in os.environ.items() if k.startswith("LKWEDGE_")}}
with open(os.path.join(out, os.environ["LKWEDGE_KEY"].replace("/", "_") + ".json"), "w") as f:
    json.dump(rec, f)
if os.environ["LKWEDGE_KEY"] == "slow":
    time.sleep(30)
sys.exit(int(os.environ.get("LKWEDGE_TEST_EXIT_WITH", "0")))
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    out = tmp_path / "calls"
    out.mkdir()
    yield [sys.executable, "-c", RECORDER, str(out)], out


def test_command_gets_episode_json_and_env_without_a_shell(recorder, tmp_path: Path, monkeypatch) -> None:
    argv, out = recorder
    monkeypatch.chdir(tmp_path)
    errors = Errors()
    sink = CommandSink(argv, errors)
    sink.emit(event("alert", 1777629625.0, key="job:AJ_1", room=EVIL))
    assert wait_for(lambda: (out / "job:AJ_1.json").exists())
    sink.close(5)
    rec = json.loads((out / "job:AJ_1.json").read_text())
    assert rec["stdin"]["event"] == "alert" and rec["stdin"]["room"] == EVIL
    assert rec["env"] == {
        "LKWEDGE_EVENT": "alert", "LKWEDGE_VERDICT": "stalled", "LKWEDGE_FILE": "agent.log",
        "LKWEDGE_LINE": "12", "LKWEDGE_KEY": "job:AJ_1", "LKWEDGE_JOB": "AJ_1", "LKWEDGE_ROOM": EVIL,
        "LKWEDGE_SILENCE_S": "20.500", "LKWEDGE_START": "2026-05-01T10:00:05+00:00"}
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    assert errors == []


def test_slow_command_does_not_delay_the_next_alert(recorder) -> None:
    argv, out = recorder
    errors = Errors()
    sink = CommandSink(argv, errors)
    sink.emit(event("alert", time.time(), key="slow"))
    assert wait_for(lambda: (out / "slow.json").exists())       # the 30 s sleeper is running
    t_emit = time.time()
    sink.emit(event("alert", time.time(), key="fast", id="agent.log:40"))   # another episode
    assert wait_for(lambda: (out / "fast.json").exists(), timeout=3)
    started = json.loads((out / "fast.json").read_text())["started"]
    assert started - t_emit < 1.0
    t0 = time.monotonic()
    sink.close(timeout=0.5)                 # bounded: the sleeper is killed, and that is reported
    assert time.monotonic() - t0 < 3
    assert any("killed 1 command" in e for e in errors)


def test_command_failures_are_reported_not_raised(recorder, monkeypatch) -> None:
    argv, _ = recorder
    errors = Errors()
    monkeypatch.setenv("LKWEDGE_TEST_EXIT_WITH", "3")   # LKWEDGE_* reaches the command
    sink = CommandSink(argv, errors)
    sink.emit(event("alert", time.time()))
    missing = CommandSink(["/nonexistent/lkwedge-hook"], errors)
    missing.emit(event("alert", time.time()))
    slow = CommandSink([sys.executable, "-c", "import time; time.sleep(30)"], errors, timeout=0.3)
    slow.emit(event("alert", time.time()))
    assert wait_for(lambda: len(errors) >= 3)
    for s in (sink, missing, slow):
        s.close(2)
    text = "\n".join(errors)
    assert "exited with status 3" in text
    assert "cannot run /nonexistent/lkwedge-hook" in text
    assert "did not finish within 0.3s; killed" in text


# -- webhook -------------------------------------------------------------------------------------------

class Hook:
    """A local HTTP server answering with scripted status codes (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append({"path": self.path, "body": body, "t": time.monotonic(),
                                      "ctype": self.headers["Content-Type"]})
                i = min(len(hook.requests), len(hook.statuses)) - 1
                self.send_response(hook.statuses[i])
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(statuses: list[int]) -> Hook:
        hooks.append(Hook(statuses))
        return hooks[-1]

    yield make
    for h in hooks:
        h.close()


def test_webhook_500_is_retried_then_delivered(hook_factory) -> None:
    hook = hook_factory([500, 200])
    errors = Errors()
    sink = WebhookSink(hook.url, errors, tries=4, backoff=0.1)
    sink.emit(event("alert", 1777629625.0, room="<!channel> & co"))
    sink.close(5)
    assert len(hook.requests) == 2 and errors == []
    assert hook.requests[1]["t"] - hook.requests[0]["t"] >= 0.045       # backed off (0.1 s, jitter 50 %)
    body = hook.requests[1]["body"]
    assert hook.requests[1]["ctype"] == "application/json"
    assert body["event"] == "alert" and body["episode"]["key"] == "job:AJ_1"
    assert "ALERT stalled agent.log:12" in body["text"]
    assert "&lt;!channel&gt; &amp; co" in body["text"]            # no Slack mention injection


def test_webhook_always_500_is_reported_after_bounded_tries(hook_factory) -> None:
    hook = hook_factory([500])
    errors = Errors()
    sink = WebhookSink(hook.url, errors, tries=3, backoff=0.05)
    t0 = time.monotonic()
    sink.emit(event("alert", time.time()))
    assert time.monotonic() - t0 < 0.1                                 # emit never waits for HTTP
    sink.close(5)
    assert len(hook.requests) == 3
    assert len(errors) == 1 and "after 3 attempt(s): HTTP 500" in errors[0]
    assert "SECRET-TOKEN" not in errors[0]
    gaps = [b["t"] - a["t"] for a, b in zip(hook.requests, hook.requests[1:], strict=False)]
    assert gaps[1] > gaps[0]                                          # exponential back-off


def test_webhook_4xx_is_not_retried(hook_factory) -> None:
    hook = hook_factory([404])
    errors = Errors()
    sink = WebhookSink(hook.url, errors, tries=5, backoff=0.05)
    sink.emit(event("resolved", time.time(), outage_s=70.0))
    sink.close(5)
    assert len(hook.requests) == 1
    assert len(errors) == 1 and "HTTP 404" in errors[0]


def test_webhook_connection_refused_is_retried_and_reported(hook_factory) -> None:
    hook = hook_factory([200])
    url = hook.url
    hook.close()                                                       # nothing listens any more
    errors = Errors()
    sink = WebhookSink(url, errors, tries=2, backoff=0.05, timeout=1)
    sink.emit(event("alert", time.time()))
    sink.close(5)
    assert len(errors) == 1 and "after 2 attempt(s): connection failed" in errors[0]


def test_webhook_close_is_bounded_when_the_server_keeps_failing(hook_factory) -> None:
    hook = hook_factory([503])
    errors = Errors()
    sink = WebhookSink(hook.url, errors, tries=10, backoff=1.0)
    sink.emit(event("alert", time.time()))
    assert wait_for(lambda: len(hook.requests) >= 1)
    t0 = time.monotonic()
    sink.close(timeout=0.3)
    assert time.monotonic() - t0 < 2
    assert any("undelivered" in e or "shutting down" in e for e in errors)


def test_fanout_keeps_going_when_one_sink_breaks(tmp_path: Path) -> None:
    class Broken:
        def emit(self, *a: object) -> None:
            raise RuntimeError("boom")

        def close(self, timeout: float = 5.0) -> None:
            pass

    out = tmp_path / "e.jsonl"
    errors = Errors()
    fan = Fanout([Broken(), JsonlSink(str(out))], errors)
    fan.emit(event("alert", time.time()))
    fan.close()
    assert len(out.read_text().splitlines()) == 1
    assert errors == ["Broken: boom"]
