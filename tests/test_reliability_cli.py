"""Issue 9, end to end with the real command: the panel never delays alerts (a real pty), a slow webhook
never delays the console or another episode's webhook (a real slow HTTP server), shutdown names every
undelivered alert, --on-alert never sees LiveKit credentials, watch judges inputs as scan does, file
names are escaped in errors, CSV cells are defused, and a closed stdout pipe ends every command quietly.
Windows are 2 s instead of 20 s so each test takes a few seconds."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge
from test_delivery import SlowHook
from test_watch import ATTEMPT, CLOSE, Watch, agents, rust, sdk

EVIL = "\x1b]0;owned\x07"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def episodes_text(n: int, at: dt.datetime, prefix: str = "AJ_") -> str:
    return "".join(agents(sdk(CLOSE), f"{prefix}{i:05d}", "WARNING", at) + "\n"
                   + agents(sdk(ATTEMPT), f"{prefix}{i:05d}", "ERROR", at) + "\n" for i in range(n))


@pytest.fixture
def slow_hooks():
    made: list[SlowHook] = []

    def make(slow: set[str], delay: float = 30.0) -> SlowHook:
        made.append(SlowHook(slow, delay))
        return made[-1]

    yield make
    for h in made:
        h.close()


# -- the panel never delays an alert (item 3) -------------------------------------------------------------

def _alerts_on_a_terminal(n: int, window: float) -> tuple[dict[int, float], bytes, int]:
    """`lkwedge watch` on a real pty (200x40), n episodes written at once on its stdin: when each
    "ALERT stalled <stdin>:LINE" reached the terminal, in seconds after the write began; the screen;
    and how many panel frames were drawn in the 2 s before the write."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    r, w = os.pipe()
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--window", f"{window:g}s"],
                            stdin=r, stdout=slave, stderr=slave, env=env)
    os.close(r)
    os.close(slave)
    seen: dict[int, float] = {}
    screen = bytearray()
    t0 = 0.0

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                return
            now = time.monotonic()
            start = max(0, len(screen) - 64)
            screen.extend(data)
            for m in re.finditer(rb"ALERT stalled <stdin>:(\d+) ", screen[start:]):
                seen.setdefault(int(m.group(1)), now - t0)

    try:
        pump(2.0)
        assert b"lkwedge watch" in screen or b"watching stdin" in screen, bytes(screen[-500:])
        idle_frames = screen.count(b"lkwedge watch:")
        data = episodes_text(n, now_utc()).encode()
        t0 = time.monotonic()
        threading.Thread(target=os.write, args=(w, data), daemon=True).start()
        pump(window + 3.0)
    finally:
        os.close(w)
        proc.send_signal(signal.SIGINT)
        pump(1.0)
        proc.wait(15)
        os.close(master)
    return seen, bytes(screen), idle_frames


def test_3000_open_episodes_on_a_terminal_every_alert_within_window_plus_1s() -> None:
    window, n = 2.0, 3000
    # The machine running the suite is shared: one retry absorbs a load spike, never a real delay
    # (on main, 3000 open episodes put only 58 of 3000 alerts within 40 s).
    for _attempt in (1, 2):
        seen, screen, idle_frames = _alerts_on_a_terminal(n, window)
        late = sorted(t for t in seen.values() if t > window + 1.0)
        if len(seen) == n and not late:
            break
    assert len(seen) == n, f"{len(seen)} of {n} alerts shown"
    assert late == [], f"{len(late)} alerts later than window + 1 s (worst {late[-1]:.2f} s), twice"
    assert b"open episode(s)" in screen                         # the panel was drawn too
    assert 1 <= idle_frames <= 2 * 4 + 1                        # at most 4 redraws a second


# -- a slow webhook (item 4) --------------------------------------------------------------------------------

def test_a_30s_webhook_never_delays_the_console_or_another_episodes_webhook(slow_hooks) -> None:
    hook = slow_hooks({"<stdin>:1"})
    w = Watch("--window", "2s", "--webhook", hook.url)
    try:
        t_a = w.write(agents(sdk(CLOSE), "AJ_A", "WARNING"), agents(sdk(ATTEMPT), "AJ_A", "ERROR"))
        assert w.wait_out("ALERT stalled <stdin>:1", timeout=5)
        time.sleep(0.5)                                     # A's POST is now hanging on the server
        t_b = w.write(agents(sdk(CLOSE), "AJ_B", "WARNING"), agents(sdk(ATTEMPT), "AJ_B", "ERROR"))
        t_console_b = w.wait_out("ALERT stalled <stdin>:3", timeout=5)
        assert t_console_b is not None and t_console_b - t_b <= 2 + 1.0
        deadline = time.monotonic() + 5
        while "<stdin>:3" not in hook.answered and time.monotonic() < deadline:
            time.sleep(0.02)
        got_b = [t for eid, t in hook.received if eid == "<stdin>:3"]
        assert got_b and got_b[0] - t_b <= 2 + 1.0, hook.received
        assert [eid for eid, _ in hook.received if eid == "<stdin>:1"] == ["<stdin>:1"]
        assert t_a < got_b[0]
        t_stop = time.monotonic()
        rc = w.stop(timeout=20)
        assert time.monotonic() - t_stop < 12                  # shutdown is bounded
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    assert rc == 1
    assert "the alert for <stdin>:1" in w.stderr               # A's alert: reported by name
    assert "SECRET-TOKEN" not in w.stderr


def test_once_names_every_alert_the_webhook_could_not_take(tmp_path: Path, slow_hooks) -> None:
    hook = slow_hooks({f"{tmp_path / 'five.log'}:{i}" for i in range(1, 11)})
    log = tmp_path / "five.log"
    at = now_utc() - dt.timedelta(minutes=5)
    log.write_text(episodes_text(5, at) + rust("later chatter", "INFO", at=at + dt.timedelta(seconds=60),
                                                target="my_agent") + "\n")
    t0 = time.monotonic()
    proc = run_lkwedge("watch", "--once", "--window", "2s", "--webhook", hook.url, str(log), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - t0 < 20
    assert proc.stdout.count("ALERT stalled") == 5
    for i in (1, 3, 5, 7, 9):
        assert f"the alert for {log}:{i} " in proc.stderr, proc.stderr
    assert "SECRET-TOKEN" not in proc.stderr


# -- --on-alert (item 5) ------------------------------------------------------------------------------------

def test_on_alert_never_sees_livekit_credentials(tmp_path: Path) -> None:
    dump = tmp_path / "env.json"
    script = tmp_path / "hook.py"
    script.write_text(f"import json, os\njson.dump(dict(os.environ), open({str(dump)!r}, 'w'))\n")
    secret = "s3cr3t-Zq9-distinctive-value-0123456789"
    w = Watch("--window", "2s", "--on-alert", f"{sys.executable} {script}",
              env={"LIVEKIT_API_SECRET": secret, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_URL": "http://x",
                   "LKWEDGE_ONCALL": "team-a"})
    try:
        w.write(agents(sdk(CLOSE), "AJ_A", "WARNING"), agents(sdk(ATTEMPT), "AJ_A", "ERROR"))
        deadline = time.monotonic() + 8
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert w.stop() == 1
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    env = json.loads(dump.read_text())
    assert secret not in json.dumps(env)
    assert not [k for k in env if k.startswith("LIVEKIT")]
    assert set(env) <= {"PATH", "LANG", "LC_CTYPE"} | {k for k in env if k.startswith("LKWEDGE_")}
    assert env["LKWEDGE_ONCALL"] == "team-a" and env["LKWEDGE_JOB"] == "AJ_A"


# -- watch judges inputs as scan does (item 7) --------------------------------------------------------------

def test_watch_directory_and_unreadable_path_exit_2_naming_the_file(tmp_path: Path) -> None:
    adir = tmp_path / f"logs{EVIL}"
    adir.mkdir()
    afile = tmp_path / "agent.log"
    afile.write_text("x\n")
    for path, says in ((adir, "not a regular file"), (afile / "nested.log", "Not a directory")):
        proc = run_lkwedge("watch", str(path), timeout=30)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr
        assert printable_name(path) in proc.stderr and "\x1b" not in proc.stderr + proc.stdout
        once = run_lkwedge("watch", "--once", str(path), timeout=30)
        scan = run_lkwedge("scan", str(path), timeout=30)
        assert once.returncode == scan.returncode == 2
        assert once.stderr.splitlines()[-1] == scan.stderr.splitlines()[-1]       # the same words


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_watch_unreadable_file_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "secret.log"
    f.write_text("x\n")
    f.chmod(0)
    proc = run_lkwedge("watch", str(f), timeout=30)
    assert proc.returncode == 2 and "permission denied" in proc.stderr and str(f) in proc.stderr


def test_watch_keeps_following_other_inputs_when_one_fails(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_text("")
    w = Watch("--window", "2s", str(good), str(tmp_path))
    try:
        assert w.wait_err(f"error: {tmp_path}: not a regular file", timeout=5), w.stderr
        time.sleep(0.5)
        with good.open("a") as fh:
            fh.write(rust(CLOSE, "WARN") + "\n" + rust(ATTEMPT) + "\n")
        assert w.wait_out(f"ALERT stalled {good}:1", timeout=6), w.stderr
        assert w.proc.poll() is None
        assert w.stop() == 1
    finally:
        if w.proc.poll() is None:
            w.proc.kill()


def test_watch_reads_a_fifo_and_alerts(tmp_path: Path) -> None:
    fifo = tmp_path / "agent.pipe"
    os.mkfifo(fifo)
    w = Watch("--window", "2s", str(fifo))
    fd = os.open(fifo, os.O_WRONLY)
    try:
        t0 = time.monotonic()
        os.write(fd, (rust(CLOSE, "WARN") + "\n" + rust(ATTEMPT) + "\n").encode())
        t_alert = w.wait_out(f"ALERT stalled {fifo}:1", timeout=6)
        assert t_alert is not None and t_alert - t0 <= 2 + 1.5, w.stderr
        assert "Illegal seek" not in w.stderr
    finally:
        os.close(fd)
        rc = w.stop()
    assert rc == 1


def test_watch_once_reads_a_fifo_like_scan(tmp_path: Path) -> None:
    fifo = tmp_path / "agent.pipe"
    os.mkfifo(fifo)
    at = now_utc() - dt.timedelta(minutes=1)
    text = rust(CLOSE, "WARN", at=at) + "\n" + rust(ATTEMPT, at=at) + "\n" + rust(
        "tick", "INFO", at=at + dt.timedelta(seconds=30), target="my_agent") + "\n"

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write(text)

    threading.Thread(target=feed, daemon=True).start()
    proc = run_lkwedge("watch", "--once", "--window", "2s", str(fifo), timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "1 stalled" in proc.stdout


# -- escaping (item 9) ------------------------------------------------------------------------------------

def printable_name(path: Path) -> str:
    return str(path).replace("\x1b", "\\x1b").replace("\x07", "\\x07")


def test_file_names_in_errors_are_escaped_in_every_command(tmp_path: Path) -> None:
    missing = tmp_path / f"gone{EVIL}.log"
    for args in (["scan"], ["check"], ["report"], ["watch", "--once"]):
        proc = run_lkwedge(*args, str(missing), timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, args
        assert printable_name(missing) in proc.stderr, (args, proc.stderr)
    w = Watch("--window", "2s", str(missing))
    try:
        assert w.wait_err("waiting for it to appear", timeout=5)
    finally:
        w.stop()
    assert "\x1b" not in w.stderr and printable_name(missing) in w.stderr


def test_csv_export_defuses_formulas_and_escapes_control_characters(tmp_path: Path) -> None:
    at = now_utc() - dt.timedelta(hours=1)
    rows = []
    rooms_in = (("AJ_1", '=HYPERLINK("http://evil.example","click")'), ("AJ_2", "+cmd|x\x1b[31m\r\nrow"),
                ("AJ_3", "@SUM(A1)"), ("AJ_4", "-2+3"), ("AJ_5", "plain-room"))
    for job, room in rooms_in:
        for msg, level in ((sdk(CLOSE), "WARNING"), (sdk(ATTEMPT), "ERROR")):
            rec = json.loads(agents(msg, job, level, at))
            rec["room"] = room
            rows.append(json.dumps(rec))
    rows.append(rust("tick", "INFO", at=at + dt.timedelta(seconds=60), target="my_agent"))
    log = tmp_path / "agent.log"
    log.write_text("\n".join(rows) + "\n")
    out = tmp_path / "e.csv"
    proc = run_lkwedge("report", str(log), "--csv", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    raw = out.read_text()
    assert "\x1b" not in raw and "\r" not in raw
    with out.open(newline="") as fh:
        rooms = [r["room"] for r in csv.DictReader(fh)]
    assert len(raw.splitlines()) == 6                         # one line per episode: no CR/LF split a row
    assert rooms == ["'=HYPERLINK(\"http://evil.example\",\"click\")", "'+cmd|x\\x1b[31m\\x0d\\x0arow",
                     "'@SUM(A1)", "'-2+3", "plain-room"]


# -- a closed stdout pipe (item 9) ------------------------------------------------------------------------

def run_into_closed_pipe(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The command with its stdout a pipe whose reader is already gone (`... | head -0`)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "lkwedge", *args], stdout=w, stderr=subprocess.PIPE,
                              input=stdin, timeout=120)
    finally:
        os.close(w)


def test_a_closed_stdout_pipe_exits_quietly_with_the_results_code(tmp_path: Path) -> None:
    healthy = REPO / "samples" / "agents_json_healthy_resume.log"
    many = tmp_path / "many.log"
    many.write_text(healthy.read_text() * 200)
    stall = REPO / "samples" / "agents_json_seed_stall.log"
    cases = [
        (["scan", str(many)], 0), (["scan", "--format", "json", str(many)], 0),
        (["scan", "--format", "jsonl", str(many)], 0), (["scan", str(stall)], 1),
        (["check", str(many)], 0), (["check", str(stall)], 1), (["report", str(many)], 0),
        (["watch", "--once", str(many)], 0),
        (["watch", "--once", str(stall)], 1),
        (["evict", "--room", "r1", "--identity", "agent-x", "--dry-run"], 0),
    ]
    for args, code in cases:
        proc = run_into_closed_pipe(*args)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr[-500:])
        assert b"Traceback" not in proc.stderr and b"Broken pipe" not in proc.stderr, (args, proc.stderr)


def test_watch_stops_quietly_when_its_reader_leaves(tmp_path: Path) -> None:
    """`(logs; sleep) | lkwedge watch | head -1`: head leaves after the alert; watch ends at once."""
    r, w = os.pipe()
    inp_r, inp_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--window", "2s"], stdin=inp_r,
                            stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    os.close(inp_r)
    try:
        os.write(inp_w, (rust(CLOSE, "WARN") + "\n" + rust(ATTEMPT) + "\n").encode())
        with os.fdopen(r, "rb") as reader:
            first = reader.readline()
        assert b"ALERT stalled" in first
        rc = proc.wait(10)
    finally:
        os.close(inp_w)
        if proc.poll() is None:
            proc.kill()
    assert rc == 1
    assert b"Traceback" not in proc.stderr.read()


def test_a_blocked_console_never_delays_the_alert_sinks(tmp_path: Path) -> None:
    """stdout is a pipe nobody reads (it fills after a few hundred lines): the --jsonl file still gets
    every alert on time, because the console has its own thread and queue."""
    window, n = 2.0, 1500
    alerts = tmp_path / "alerts.jsonl"
    out_r, out_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", "--window", f"{window:g}s",
                             "--jsonl", str(alerts)], stdin=subprocess.PIPE, stdout=out_w,
                            stderr=subprocess.DEVNULL)
    os.close(out_w)
    try:
        time.sleep(1.5)
        assert proc.stdin is not None
        t0 = time.monotonic()
        proc.stdin.write(episodes_text(n, now_utc()).encode())
        proc.stdin.flush()
        done_at = None
        while time.monotonic() - t0 < window + 4:
            if alerts.exists() and alerts.read_text().count('"event": "alert"') == n:
                done_at = time.monotonic()
                break
            time.sleep(0.05)
        assert done_at is not None, "not every alert reached the --jsonl sink"
        assert done_at - t0 <= window + 1.0 + 0.2
    finally:
        proc.send_signal(signal.SIGINT)
        drained = bytearray()
        while proc.poll() is None or select.select([out_r], [], [], 0)[0]:
            ready, _, _ = select.select([out_r], [], [], 0.2)
            if ready:
                chunk = os.read(out_r, 1 << 16)
                if not chunk:
                    break
                drained.extend(chunk)
        proc.wait(20)
        os.close(out_r)
    assert drained.count(b"ALERT stalled") == n               # and the console caught up in the end


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_one_error_line_and_exit_2() -> None:
    healthy = REPO / "samples" / "agents_json_healthy_resume.log"
    for args in (["scan"], ["check"], ["report"], ["watch", "--once"]):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "lkwedge", *args, str(healthy)], stdout=full,
                                  stderr=subprocess.PIPE, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "lkwedge: error: cannot write the output: No space left on device" in proc.stderr, args
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, args
