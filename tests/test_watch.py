"""`lkwedge watch` end to end: the real command, real pipes, files, writer processes and HTTP server.

Windows are scaled down (2 s instead of 20 s) so every test stays within a few seconds; the time
semantics are the same at any scale (issue 3).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import killed_at_end, run_lkwedge, scan_json
from synthlog import write_synth

CLOSE = 'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume'
ATTEMPT = "resuming connection... attempt: 0"
RECOVERED = "RtcEngine successfully recovered"


def now_utc(offset: float = 0.0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)


def rust(msg: str, level: str = "ERROR", at: dt.datetime | None = None,
         target: str = "livekit::rtc_engine") -> str:
    """A tracing-subscriber line, stamped now (or `at`)."""
    t = at or now_utc()
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z {level:>5} {target}: {msg}"


def agents(msg: str, job: str, level: str = "INFO", at: dt.datetime | None = None) -> str:
    """A livekit-agents JSON line for one job."""
    name = "livekit" if msg.startswith("livekit::") else "livekit.agents"
    return json.dumps({"message": msg, "level": level, "name": name, "pid": 400 + ord(job[-1]),
                       "job_id": job, "room": f"room-{job}", "timestamp": (at or now_utc()).isoformat()})


def sdk(msg: str) -> str:
    return f"livekit::rtc_engine:474:livekit::rtc_engine - {msg}"


class Watch:
    """`lkwedge watch ...` in a subprocess; its stdout/stderr lines are timestamped as they arrive."""

    def __init__(self, *args: str, stdin: int | None = subprocess.PIPE, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "COLUMNS": "400", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", *args], stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        self._threads = [threading.Thread(target=self._pump, args=(s, d), daemon=True)
                         for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()
        assert self.wait_err("lkwedge: watching", timeout=15), self.stderr

    @staticmethod
    def _pump(stream, dest: list[tuple[float, str]]) -> None:
        for raw in iter(stream.readline, b""):
            dest.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def write(self, *lines: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()
        return time.monotonic()

    def _wait(self, dest: list, pred: Callable[[str], bool], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(dest):
                if pred(line):
                    return t
            time.sleep(0.02)
        return None

    def wait_out(self, text: str, timeout: float = 10.0) -> float | None:
        return self._wait(self.out, lambda line: text in line, timeout)

    def wait_err(self, text: str, timeout: float = 10.0) -> float | None:
        return self._wait(self.err, lambda line: text in line, timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for t in self._threads:
            t.join(2)
        return rc

    @property
    def stdout(self) -> str:
        return "\n".join(line for _, line in self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.err)

    def events(self) -> list[dict]:
        return [json.loads(line) for _, line in self.out if line.startswith("{")]


@pytest.fixture
def watches():
    with killed_at_end(Watch) as start:
        yield start


# -- time semantics -----------------------------------------------------------------------------------

def test_trigger_then_silence_alerts_within_window_on_an_open_pipe(watches) -> None:
    w = watches("--window", "2s")
    for i in range(3):
        w.write(rust(f"chatter {i}", "INFO", target="my_agent"))
        time.sleep(0.2)
    evil = CLOSE.replace("ping timeout", "ping timeout \x1b[2J\x1b]0;owned\x07")
    t_trigger = w.write(rust(evil, "WARN"), rust(ATTEMPT))
    t_alert = w.wait_out("ALERT stalled <stdin>:4", timeout=6)
    assert t_alert is not None, w.stdout + w.stderr
    assert 1.9 <= t_alert - t_trigger <= 2 + 1.5
    assert w.proc.poll() is None                       # still watching: the pipe is open
    rc = w.stop()
    assert rc == 1
    assert "\x1b" not in w.stdout and "\\x1b[2J" in w.stdout
    assert "open         <stdin>:4" in w.stdout and "stalled (alerted)" in w.stdout
    assert w.stdout.count("ALERT") == 1


def test_writer_process_piped_in_alerts_on_silence(tmp_path: Path, watches) -> None:
    """`writer | lkwedge watch` with two real processes and an OS pipe between them."""
    script = tmp_path / "writer.py"
    script.write_text(
        "import datetime as dt, sys, time\n"
        "def line(level, msg):\n"
        "    t = dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')\n"
        "    print(f'{t} {level} livekit::rtc_engine: {msg}', flush=True)\n"
        "time.sleep(float(sys.argv[1]))\n"
        f"line('WARN', {CLOSE!r}); line('ERROR', {ATTEMPT!r})\n"
        "print('TRIGGER', time.monotonic(), file=sys.stderr, flush=True)\n"
        "time.sleep(30)\n")
    r, wfd = os.pipe()
    writer = subprocess.Popen([sys.executable, str(script), "1.0"], stdout=wfd, stderr=subprocess.PIPE)
    os.close(wfd)
    try:
        w = watches("--window", "2s", stdin=r)
        os.close(r)
        trig = writer.stderr.readline().decode().split()
        t_alert = w.wait_out("ALERT stalled", timeout=8)
        assert t_alert is not None, w.stderr
        assert t_alert - float(trig[1]) <= 2 + 1.5
    finally:
        writer.kill()
        writer.wait(5)
    assert w.stop(signal.SIGTERM) == 1


def test_block_buffered_writer_late_progress_is_not_a_stall(watches) -> None:
    """A progress line stamped in time but delivered late, from a writer that is seen to buffer."""
    w = watches("--window", "2s", "--max-lag", "3s", "--jsonl", "-")
    t0 = now_utc()
    # One burst: lines stamped over the last 2.5 s arrive together (the buffer was flushed).
    w.write(*[rust(f"buffered chatter {i}", "INFO", at=t0 - dt.timedelta(seconds=2.5 - i * 0.5),
                   target="my_agent") for i in range(5)],
            rust(CLOSE, "WARN", at=t0), rust(ATTEMPT, at=t0))
    time.sleep(3.0)     # the window (2 s) passes on the wall clock before the next flush...
    w.write(rust(RECOVERED, "INFO", at=t0 + dt.timedelta(seconds=0.4)))   # ...stamped 0.4 s in
    time.sleep(1.0)
    rc = w.stop()
    assert [e["event"] for e in w.events()] == [], w.stdout
    assert rc == 0
    assert "1 recovered" in w.stderr


def test_without_signs_of_buffering_the_same_silence_alerts(watches) -> None:
    """Control for the test above: a writer seen to deliver at once gets no such allowance."""
    w = watches("--window", "2s", "--max-lag", "3s", "--jsonl", "-")
    t0 = now_utc()
    w.write(rust(CLOSE, "WARN", at=t0), rust(ATTEMPT, at=t0))
    time.sleep(3.0)
    w.write(rust(RECOVERED, "INFO", at=t0 + dt.timedelta(seconds=0.4)))
    time.sleep(0.5)
    assert w.stop() == 1
    assert [e["event"] for e in w.events()] == ["alert", "resolved"]


def test_recovery_stamped_after_the_window_but_delivered_at_once_is_a_stall(watches) -> None:
    w = watches("--window", "2s", "--jsonl", "-")
    t0 = now_utc()
    w.write(rust(CLOSE, "WARN", at=t0), rust(ATTEMPT, at=t0),
            rust(RECOVERED, "INFO", at=t0 + dt.timedelta(seconds=12)))   # "60 s later", scaled
    assert w.wait_out('"event": "resolved"', timeout=5)
    assert w.stop() == 1
    alert, resolved = w.events()
    assert alert["event"] == "alert" and alert["id"] == "<stdin>:1" and alert["verdict"] == "stalled"
    assert resolved["event"] == "resolved" and resolved["id"] == "<stdin>:1"
    assert resolved["outcome"] == "recovered" and resolved["outage_s"] == pytest.approx(12, abs=0.01)
    assert alert["wall_time"].endswith("Z")


# -- files --------------------------------------------------------------------------------------------

def _file_watch(watches, log: Path) -> object:
    w = watches("--window", "2s", "--jsonl", "-", str(log))
    time.sleep(0.4)                   # the follower opens the file at its end
    return w


def _append(path: Path, *lines: str) -> None:
    with open(path, "a") as fh:
        fh.write("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("how", ["rename", "copytruncate"])
def test_rotation_mid_episode_continues_the_episode_and_alerts_once(tmp_path: Path, watches, how) -> None:
    log = tmp_path / "agent.log"
    log.write_text(rust("old line before watch", "INFO", target="my_agent") + "\n")
    w = _file_watch(watches, log)
    _append(log, rust("chatter", "INFO", target="my_agent"), rust(CLOSE, "WARN"), rust(ATTEMPT))
    time.sleep(0.5)
    if how == "rename":
        os.rename(log, tmp_path / "agent.log.1")
        log.write_text(rust("first line of the new file", "INFO", target="my_agent") + "\n")
    else:
        with open(log, "r+") as fh:
            fh.truncate(0)
        _append(log, rust("first line after truncation", "INFO", target="my_agent"))
    assert w.wait_out('"event": "alert"', timeout=5), w.stderr
    _append(log, rust(RECOVERED, "INFO"))
    assert w.wait_out('"event": "resolved"', timeout=5), w.stderr
    assert w.stop() == 1
    events = w.events()
    assert [e["event"] for e in events] == ["alert", "resolved"]
    assert events[0]["id"] == events[1]["id"] == f"{log}:3"
    assert events[1]["evidence"][-1]["line"] == 6          # line numbers continue in the new file
    assert ("rotated" if how == "rename" else "truncated") in w.stderr


def test_glob_picks_up_a_log_that_appears_later(tmp_path: Path, watches) -> None:
    w = watches("--window", "2s", str(tmp_path / "*.log"))
    time.sleep(0.3)
    (tmp_path / "late.log").write_text(rust(CLOSE, "WARN") + "\n" + rust(ATTEMPT) + "\n")
    assert w.wait_out(f"ALERT stalled {tmp_path / 'late.log'}:1", timeout=6), w.stderr
    assert w.stop() == 1


# -- keys, sinks ---------------------------------------------------------------------------------------

def test_two_jobs_in_one_json_stream_never_resolve_each_other(watches) -> None:
    w = watches("--window", "2s", "--jsonl", "-")
    w.write(agents(sdk(CLOSE), "AJ_A", "WARNING"), agents(sdk(ATTEMPT), "AJ_A", "ERROR"),
            agents(sdk(CLOSE), "AJ_B", "WARNING"), agents(sdk(ATTEMPT), "AJ_B", "ERROR"))
    time.sleep(0.5)
    w.write(agents("STT metrics", "AJ_B"), agents(sdk(RECOVERED), "AJ_B"))   # B is fine; A says nothing
    for i in range(12):                                                     # B keeps chatting
        time.sleep(0.25)
        w.write(agents(f"llm turn {i}", "AJ_B"))
    assert w.stop() == 1
    events = w.events()
    assert [(e["event"], e["key"]) for e in events] == [("alert", "job:AJ_A")]
    assert events[0]["room"] == "room-AJ_A"
    assert "recovered    <stdin>:3  key=job:AJ_B" in w.stderr


def test_slow_on_alert_command_does_not_delay_the_next_alert(tmp_path: Path, watches) -> None:
    hook = tmp_path / "hook.py"
    hook.write_text("import json, os, sys, time\n"
                    "ep = json.load(sys.stdin)\n"
                    "with open(os.path.join(sys.argv[1], ep['key'].replace(':', '_')), 'w') as f:\n"
                    "    f.write(str(time.monotonic()))\n"
                    "if os.environ['LKWEDGE_JOB'] == 'AJ_A':\n"
                    "    time.sleep(30)\n")
    marks = tmp_path / "marks"
    marks.mkdir()
    w = watches("--window", "2s", "--on-alert", f"{sys.executable} {hook} {marks}")
    w.write(agents(sdk(CLOSE), "AJ_A", "WARNING"), agents(sdk(ATTEMPT), "AJ_A", "ERROR"))
    time.sleep(1.0)
    t_b = w.write(agents(sdk(CLOSE), "AJ_B", "WARNING"), agents(sdk(ATTEMPT), "AJ_B", "ERROR"))
    assert w.wait_out("ALERT stalled <stdin>:3", timeout=6), w.stderr
    mark_b = marks / "job_AJ_B"
    deadline = time.monotonic() + 5
    while not mark_b.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (marks / "job_AJ_A").exists()
    assert float(mark_b.read_text()) - t_b <= 2 + 1.5      # B's command ran while A's still sleeps
    t0 = time.monotonic()
    assert w.stop() == 1
    assert time.monotonic() - t0 < 8                        # shutdown is bounded despite the sleeper
    assert "killed 1 command" in w.stderr


class _Failing(BaseHTTPRequestHandler):
    hits: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Failing.hits.append(time.monotonic())
        self.send_response(500)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


def test_webhook_500_is_retried_then_reported_without_blocking(watches) -> None:
    _Failing.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hooks/SECRET"
        w = watches("--window", "2s", "--webhook", url)
        t_trigger = w.write(agents(sdk(CLOSE), "AJ_A", "WARNING"), agents(sdk(ATTEMPT), "AJ_A", "ERROR"))
        t_alert = w.wait_out("ALERT stalled <stdin>:1", timeout=5)
        assert t_alert is not None and t_alert - t_trigger <= 3.5
        t_report = w.wait_err("not delivered after 4 attempt(s): HTTP 500", timeout=8)
        assert t_report is not None, w.stderr
        assert t_report - t_alert >= (0.5 + 1 + 2) / 2 - 0.2    # backed off 0.5, 1, 2 s (jitter <= 50 %)
        assert w.proc.poll() is None                                # a failed webhook is not fatal
        w.stop()
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Failing.hits) == 4
    assert "SECRET" not in w.stderr


# -- eviction -------------------------------------------------------------------------------------------

def test_evict_removes_the_wedged_agent_once_with_an_audit_line(tmp_path: Path, watches) -> None:
    from lkwedge.testing import FakeRoomService

    audit = tmp_path / "audit.jsonl"
    with FakeRoomService(api_key="devkey", api_secret="a-long-enough-test-secret-0123456789") as fake:
        fake.add_room("r1", sid="RM_1", participants=["agent-AJ_x"])
        env = {"LIVEKIT_URL": fake.url, "LIVEKIT_API_KEY": "devkey",
               "LIVEKIT_API_SECRET": "a-long-enough-test-secret-0123456789"}
        w = watches("--window", "2s", "--evict", "--audit", str(audit), env=env)
        line = lambda msg, level: json.dumps({  # noqa: E731
            "message": sdk(msg), "level": level, "name": "livekit", "pid": 7, "job_id": "AJ_x",
            "room": "r1", "timestamp": now_utc().isoformat()})
        w.write(line(CLOSE, "WARNING"), line(ATTEMPT, "ERROR"))
        assert w.wait_out("ALERT stalled <stdin>:1", timeout=5), w.stderr
        assert w.wait_err("EVICT evicted", timeout=5), w.stderr
        w.write(line(CLOSE, "WARNING"))       # supersedes: the episode closes, a new one opens
        time.sleep(0.5)
        assert w.stop() == 1
        removals = fake.removals()
    assert removals == [("r1", "agent-AJ_x")]
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    assert {r.get("phase") for r in records} >= {"pending", "done"}
    assert "a-long-enough-test-secret" not in audit.read_text() + w.stderr + w.stdout


def test_evict_resolves_a_room_given_only_as_room_id_through_list_rooms(watches) -> None:
    from lkwedge.testing import FakeRoomService

    secret = "a-long-enough-test-secret-0123456789"
    with FakeRoomService(api_key="devkey", api_secret=secret) as fake:
        fake.add_room("support-7", sid="RM_SU4VXQTNVaCC", participants=["agent-AJ_rid"])
        env = {"LIVEKIT_URL": fake.url, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": secret}
        w = watches("--window", "2s", "--evict", env=env)
        line = lambda msg, level: json.dumps({  # noqa: E731  (agents 1.3-1.5: room_id, no room name)
            "message": sdk(msg), "level": level, "name": "livekit", "pid": 7, "job_id": "AJ_rid",
            "room_id": "RM_SU4VXQTNVaCC", "timestamp": now_utc().isoformat()})
        w.write(line(CLOSE, "WARNING"), line(ATTEMPT, "ERROR"))
        assert w.wait_err("EVICT evicted", timeout=8), w.stderr
        assert w.stop() == 1
        assert fake.removals() == [("support-7", "agent-AJ_rid")]
        assert any("ListRooms" in str(call) for call in fake.calls), fake.calls


def test_evict_dry_run_makes_no_request(watches) -> None:
    from lkwedge.testing import FakeRoomService

    with FakeRoomService(api_key="devkey", api_secret="a-long-enough-test-secret-0123456789") as fake:
        fake.add_room("r1", participants=["agent-AJ_x"])
        w = watches("--window", "2s", "--dry-run", env={"LIVEKIT_URL": fake.url})
        w.write(agents(sdk(CLOSE), "AJ_x", "WARNING"), agents(sdk(ATTEMPT), "AJ_x", "ERROR"))
        assert w.wait_err("dry run: would call", timeout=6), w.stderr
        assert w.stop() == 1
        assert fake.calls == []


# -- replay equals scan ---------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["env_logger", "agents"])
def test_once_from_start_replay_gives_the_same_stalls_as_scan(tmp_path: Path, style: str) -> None:
    log = tmp_path / f"{style}.log"
    jobs = [("AJ_one", "room-1"), ("AJ_two", "room-2"), ("AJ_three", "room-3")]
    synth = write_synth(log, lines=6000, stalls=4, recoveries=6, disconnects=2, style=style,
                        jobs=jobs if style == "agents" else None)
    scanned, scan_proc = scan_json(str(log))
    proc = run_lkwedge("watch", "--once", "--from-start", "--jsonl", "-", str(log), timeout=60)
    assert proc.returncode == scan_proc.returncode == 1, proc.stderr
    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    stalled_scan = sorted(e["id"] for e in scanned["episodes"] if e["verdict"] == "stalled")
    assert sorted(a["id"] for a in alerts if a["event"] == "alert") == stalled_scan
    assert len(stalled_scan) == len(synth.of("stall")) == 4
    totals = scanned["summary"]
    # the same summary sentence as scan's, word for word
    sentence = next(line for line in run_lkwedge("scan", str(log)).stderr.splitlines()
                    if line.startswith(f"{totals['episodes']} episodes in "))
    assert sentence in proc.stderr.splitlines()
    assert sentence.startswith(f"{totals['episodes']} episodes in {synth.lines} lines (1 file): "
                               f"{totals['stalled']} stalled")


def test_once_on_a_pipe_judges_pending_episodes_on_log_time(watches) -> None:
    t0 = now_utc(-100)
    stream = "\n".join([rust(CLOSE, "WARN", at=t0), rust(ATTEMPT, at=t0),
                        rust("chatter", "INFO", at=t0 + dt.timedelta(seconds=30), target="my_agent"),
                        rust(CLOSE, "WARN", at=t0 + dt.timedelta(seconds=31))]) + "\n"
    proc = run_lkwedge("watch", "--once", stdin=stream, timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("ALERT stalled <stdin>:1") == 1
    assert "unresolved   <stdin>:4" in proc.stdout


def test_sigterm_with_nothing_stalled_exits_zero_with_a_summary(watches) -> None:
    w = watches("--window", "5s")
    w.write(rust(CLOSE, "WARN"), rust(ATTEMPT))
    time.sleep(0.8)
    assert w.stop(signal.SIGTERM) == 0
    assert "stopped; episodes so far" in w.stdout
    assert "open         <stdin>:1" in w.stdout and "within the window" in w.stdout


# -- usage errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--once", "/nonexistent/agent.log"], "no such file"),
    (["--once", "/nonexistent/*.log"], "no file matches"),
    (["--jsonl", "/nonexistent/dir/alerts.jsonl", "-"], "cannot write /nonexistent/dir/alerts.jsonl"),
    (["--identity", "agent-x", "-"], "--identity needs --evict"),
    (["--on-alert", "notify 'unbalanced", "-"], "--on-alert"),
    (["--webhook", "ftp://example.invalid/x", "-"], "--webhook"),
    (["--max-lag", "soon", "-"], "--max-lag"),
    (["--window", "0", "-"], "--window"),
])
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    proc = run_lkwedge("watch", *args, stdin="", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
