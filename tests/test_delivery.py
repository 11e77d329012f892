"""The shared delivery/retry policy (lkwedge.retry) on virtual time, the per-sink work queue, and the
sinks' reliability promises (issue 9, items 3-5): real local HTTP servers and real child processes."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lkwedge.act.evict import Evictor
from lkwedge.act.targets import EvictionTarget
from lkwedge.detect.episodes import Episode
from lkwedge.live.events import LiveEvent
from lkwedge.live.sinks import CommandSink, WebhookSink, child_env
from lkwedge.live.workqueue import Job, WorkQueue
from lkwedge.retry import Failure, GaveUp, RetryPolicy, VirtualClock, deliver, retryable_status
from lkwedge.testing.fake_roomservice import FakeRoomService
from lkwedge.verdicts import Verdict


class Errors(list[str]):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, msg: str) -> None:
        with self.lock:
            self.append(msg)


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def episode(eid: str, **over: Any) -> Episode:
    ep = Episode(id=eid, file="agent.log", line=12, key=f"job:{eid}", job="AJ_1", room="demo",
                 verdict=Verdict.STALLED, silence_s=20.5)
    for name, value in over.items():
        setattr(ep, name, value)
    return ep


def event(kind: str, wall: float, eid: str, **over: Any) -> LiveEvent:
    return LiveEvent(kind, episode(eid, **over), wall)  # type: ignore[arg-type]


# -- the policy, on virtual time -------------------------------------------------------------------------

def test_backoff_doubles_with_jitter_and_stops_at_the_deadline_on_virtual_time() -> None:
    clock = VirtualClock()
    policy = RetryPolicy(first_delay=1.0, max_delay=8.0, jitter=0.5, deadline=60.0, clock=clock,
                         rng=random.Random(3))
    calls: list[float] = []

    def send(att: Any) -> None:
        calls.append(clock.monotonic())
        raise Failure("HTTP 503", retry=True, status=503)

    t0 = time.monotonic()
    with pytest.raises(GaveUp) as gave_up:
        deliver(send, policy)
    assert time.monotonic() - t0 < 0.5                       # a minute of back-off, no real sleeping
    assert gave_up.value.why == "deadline" and gave_up.value.last.message == "HTTP 503"
    waits = clock.sleeps
    caps = [min(1.0 * 2 ** i, 8.0) for i in range(len(waits))]
    assert all(cap / 2 <= w <= cap for w, cap in zip(waits, caps, strict=True))   # jitter within 50 %
    assert len(set(waits)) == len(waits)                                           # ...and it varies
    assert calls[-1] - calls[0] <= 60.0 and len(calls) == gave_up.value.tries == len(waits) + 1
    assert calls[-1] - calls[0] + 8.0 >= 60.0 - 8.0                                # used the budget


def test_final_failures_are_not_retried_and_success_returns_the_value() -> None:
    clock = VirtualClock()
    policy = RetryPolicy(clock=clock)
    with pytest.raises(GaveUp) as gave_up:
        deliver(lambda att: (_ for _ in ()).throw(Failure("HTTP 404", retry=False)), policy)
    assert gave_up.value.why == "not retried" and gave_up.value.tries == 1 and clock.sleeps == []
    answers = iter([Failure("refused", retry=True), Failure("HTTP 502", retry=True)])

    def flaky(att: Any) -> str:
        err = next(answers, None)
        if err:
            raise err
        return "ok"

    assert deliver(flaky, RetryPolicy(clock=clock)) == "ok" and len(clock.sleeps) == 2
    assert [s for s in (408, 429, 500, 502, 503, 504) if not retryable_status(s)] == []
    assert [s for s in (400, 401, 403, 404, 410, 422) if retryable_status(s)] == []


def test_max_tries_and_stop_end_the_retries() -> None:
    clock = VirtualClock()
    fail = Failure("HTTP 500", retry=True)
    with pytest.raises(GaveUp) as by_tries:
        deliver(lambda att: (_ for _ in ()).throw(fail), RetryPolicy(max_tries=3, clock=clock))
    assert by_tries.value.why == "tries" and by_tries.value.tries == 3
    stop = threading.Event()
    stop.set()
    with pytest.raises(GaveUp) as stopped:
        deliver(lambda att: (_ for _ in ()).throw(fail), RetryPolicy(clock=clock), stop)
    assert stopped.value.why == "stopped" and stopped.value.tries == 1


def test_eviction_retries_through_the_same_policy_on_virtual_time() -> None:
    """A 30 s retry budget against a server answering 503 runs in well under a second."""
    clock = VirtualClock()
    with FakeRoomService("devkey", "s3cr3t-Zq9-distinctive-value-0123456789") as fake:
        fake.add_room("r1", sid="RM_r1", participants=["agent-AJ_x"])
        fake.fail_next("RemoveParticipant", 503, times=1000)
        t0 = time.monotonic()
        with Evictor(fake.url, "devkey", "s3cr3t-Zq9-distinctive-value-0123456789", env={}, retry_for=30.0,
                     backoff=0.5, backoff_max=8.0, clock=clock) as ev:
            res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
        assert time.monotonic() - t0 < 10
    assert res.result == "failed" and "giving up" in (res.error or "") and res.http_status == 503
    assert 4 <= res.requests == len(fake.calls) <= 12
    assert sum(clock.sleeps) < 30.0 and all(0.25 <= s <= 8.0 for s in clock.sleeps)


# -- the work queue ---------------------------------------------------------------------------------------

def test_work_queue_runs_episodes_concurrently_and_one_episode_in_order() -> None:
    errors = Errors()
    log: list[tuple[str, str, float]] = []
    release = threading.Event()

    def handle(job: Job) -> None:
        log.append((job.key, job.event.kind, time.monotonic()))
        if job.key == "slow" and job.event.kind == "alert":
            release.wait(5)

    q = WorkQueue("test", handle, errors, workers=4)
    q.put(Job(event("alert", 0.0, "slow")))
    q.put(Job(event("resolved", 0.0, "slow")))
    q.put(Job(event("alert", 0.0, "fast")))
    assert wait_for(lambda: any(k == "fast" for k, _, _ in log), 2)      # not behind "slow"
    assert [e for k, e, _ in log if k == "slow"] == ["alert"]            # resolved waits for its alert
    release.set()
    q.close(2)
    assert [e for k, e, _ in log if k == "slow"] == ["alert", "resolved"] and errors == []


def test_work_queue_names_every_event_it_could_not_deliver_at_shutdown() -> None:
    errors = Errors()
    block = threading.Event()
    q = WorkQueue("hook", lambda job: block.wait(10), errors, workers=1, max_queue=3)
    for i in range(5):
        q.put(Job(event("alert", 0.0, f"agent.log:{i}\x1b]0;x\x07")))
    t0 = time.monotonic()
    q.close(0.3)
    block.set()
    assert time.monotonic() - t0 < 3
    text = "\n".join(errors)
    assert "dropped the alert for agent.log:3" in text and "dropped the alert for agent.log:4" in text
    assert "the alert for agent.log:1\\x1b]0;x\\x07 was not delivered" in text
    assert "the alert for agent.log:2" in text
    assert "agent.log:0" in text and "still being delivered" in text
    assert "\x1b" not in text


# -- webhook: a real slow local HTTP server ---------------------------------------------------------------

class SlowHook:
    """A local server: episode ids listed in `slow` answer only after `delay` s, the rest at once."""

    def __init__(self, slow: set[str], delay: float = 30.0) -> None:
        self.received: list[tuple[str, float]] = []
        self.answered: list[str] = []
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                eid = body["episode"]["id"]
                hook.received.append((eid, time.monotonic()))
                if eid in slow:
                    hook.release.wait(delay)
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                    hook.answered.append(eid)
                except OSError:
                    pass

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_hook() -> Iterator[Any]:
    made: list[SlowHook] = []

    def make(slow: set[str], delay: float = 30.0) -> SlowHook:
        made.append(SlowHook(slow, delay))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_a_30s_webhook_never_delays_another_episodes_webhook(slow_hook) -> None:
    hook = slow_hook({"a.log:1"})
    errors = Errors()
    sink = WebhookSink(hook.url, errors, timeout=30.0)
    t0 = time.monotonic()
    sink.emit(event("alert", time.time(), "a.log:1"))
    for i in range(2, 6):
        sink.emit(event("alert", time.time(), f"b.log:{i}"))
    assert time.monotonic() - t0 < 0.1
    assert wait_for(lambda: len(hook.answered) == 4, 3), hook.received
    assert sorted(hook.answered) == [f"b.log:{i}" for i in range(2, 6)]
    assert max(t for _, t in hook.received) - t0 < 1.0
    t1 = time.monotonic()
    sink.close(0.5)                    # a.log:1 is still in flight: bounded, and reported by name
    assert time.monotonic() - t1 < 4
    assert any("the alert for a.log:1" in e for e in errors), errors
    assert all("SECRET-TOKEN" not in e for e in errors)


# -- --on-alert: minimal environment, capped and drained output -----------------------------------------

def test_on_alert_child_gets_a_minimal_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws")
    monkeypatch.setenv("LKWEDGE_PAGER_TOKEN", "mine")
    dump = tmp_path / "env.json"
    errors = Errors()
    code = f"import json, os; json.dump(dict(os.environ), open({str(dump)!r}, 'w'))"
    sink = CommandSink([sys.executable, "-c", code], errors)
    sink.emit(event("alert", time.time(), "agent.log:12"))
    assert wait_for(dump.exists)
    sink.close(5)
    env = json.loads(dump.read_text())
    assert not any("LIVEKIT" in k or "SECRET" in k for k in env if not k.startswith("LKWEDGE_")), env
    assert "s3cr3t-value" not in json.dumps(env)
    assert env["LKWEDGE_PAGER_TOKEN"] == "mine" and env["LKWEDGE_EVENT"] == "alert"
    assert set(env) - {"PATH", "LANG"} <= {k for k in env if k.startswith("LKWEDGE_")} | {"LC_CTYPE"}
    assert errors == []
    env = child_env({"LANG": "C.UTF-8", "HOME": "/root"}, event("alert", 0.0, "a.log:1"))
    assert env["PATH"] == os.defpath


def test_a_flooding_on_alert_command_is_capped_and_drained() -> None:
    errors, shown = Errors(), Errors()
    flood = ("import sys\n"
             "for _ in range(800):\n"
             "    sys.stderr.write('x' * 65535 + '\\x1b]0;owned\\x07\\n')\n")    # ~50 MB
    sink = CommandSink([sys.executable, "-c", flood], errors, on_output=shown, timeout=30)
    t0 = time.monotonic()
    sink.emit(event("alert", time.time(), "agent.log:12"))
    assert wait_for(lambda: any("not shown" in s for s in shown), 20), shown[-1:]
    sink.close(5)
    assert time.monotonic() - t0 < 20                          # drained: the child was never blocked
    total = sum(len(s) for s in shown)
    assert total < 2 * 16 * 1024 + 4096                        # what reached us is capped
    assert "\x1b" not in "".join(shown)
    assert any("more byte(s) of output not shown" in s for s in shown)
    assert errors == []
