"""The live panel on a real pseudo-terminal: Ctrl-C (typed, echoed "^C" by the terminal) clears it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from lkwedge.detect.episodes import Episode, Evidence
from lkwedge.live.events import LiveEvent
from lkwedge.live.view import compact_event

WIDTH, HEIGHT = 80, 24
CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


class Screen:
    """Just enough of a VT100 for what Rich's Live writes: text with deferred auto-wrap (as xterm does),
    CR, LF, cursor up/down/column, erase line, scrolling; colours and cursor visibility are ignored."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.rows = [[" "] * width for _ in range(height)]
        self.r = self.c = 0
        self.wrap_pending = False

    def _newline(self) -> None:
        self.r += 1
        if self.r == self.h:
            self.rows.pop(0)
            self.rows.append([" "] * self.w)
            self.r = self.h - 1

    def feed(self, data: str) -> None:
        i = 0
        while i < len(data):
            m = CSI.match(data, i)
            if m:
                args, op = m.group(1), m.group(2)
                n = int(args) if args.isdigit() else 1
                if op == "A":
                    self.r = max(0, self.r - n)
                elif op == "B":
                    self.r = min(self.h - 1, self.r + n)
                elif op == "G":
                    self.c = n - 1
                elif op == "K":
                    self.rows[self.r] = [" "] * self.w
                self.wrap_pending = False
                i = m.end()
                continue
            ch = data[i]
            i += 1
            if ch == "\r":
                self.c, self.wrap_pending = 0, False
            elif ch == "\n":
                self._newline()
                self.wrap_pending = False
            elif ch == "\x1b":
                continue
            elif ch >= " ":
                if self.wrap_pending:
                    self.c, self.wrap_pending = 0, False
                    self._newline()
                self.rows[self.r][self.c] = ch
                if self.c == self.w - 1:
                    self.wrap_pending = True
                else:
                    self.c += 1

    def text(self) -> str:
        return "\n".join("".join(row).rstrip() for row in self.rows)


def test_the_screen_wraps_like_xterm() -> None:
    s = Screen(4, 3)
    s.feed("abcd^C\r\n")
    assert s.text().splitlines()[:2] == ["abcd", "^C"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_ctrl_c_clears_the_panel_and_prints_the_summary(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"

    def controlling_tty() -> None:        # the child's own session, with the pty as its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", str(log)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    screen = Screen(WIDTH, HEIGHT)
    out = b""

    def pump(until: float) -> None:
        nonlocal out
        while time.monotonic() < until:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk
            elif proc.poll() is not None:
                return

    try:
        deadline = time.monotonic() + 30
        while b"lkwedge watch:" not in out and time.monotonic() < deadline:
            pump(time.monotonic() + 0.2)
        assert b"lkwedge watch:" in out, out[-500:]
        pump(time.monotonic() + 0.6)            # a few redraws
        os.write(master, b"\x03")               # the user types Ctrl-C: the terminal echoes ^C
        pump(time.monotonic() + 15)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    screen.feed(out.decode("utf-8", "replace"))
    shown = screen.text()
    assert "lkwedge: stopped; episodes so far:" in shown
    assert "0 episodes in 0 lines (1 file)" in shown
    assert "╭" not in shown and "╰" not in shown and "lkwedge watch:" not in shown, shown


def test_an_alert_is_one_row_at_80_columns() -> None:
    ep = Episode(id="a.log:20", file="samples/agents_json_seed_stall.log", line=20,
                 key="job:AJ_5cQwZ8mLr3Tx", room="hotel-frontdesk-118", silence_s=25.5,
                 evidence=[Evidence(20, None, "trigger", "{\"message\": \"" + "x" * 300 + "\"}")])
    line = compact_event(LiveEvent("alert", ep, 0.0), 80)
    assert len(line) <= 80 and "\n" not in line and "{" not in line
    assert "ALERT stalled samples/agents_json_seed_stall.log:20 silent 25.5s" in line


def test_an_eviction_shows_in_the_panel_instead_of_stalled() -> None:
    import io

    from rich.console import Console

    from lkwedge.live.view import PanelRow, PanelSnapshot, panel

    snap = PanelSnapshot([PanelRow("a.log:7", "job:AJ_x", "r1", 31.0, 40.0, True)], 1, 1, 20.0)

    def shown(evictions: dict[str, str]) -> str:
        console = Console(file=io.StringIO(), width=80, color_system=None, legacy_windows=False)
        console.print(panel(snap, evictions))
        return console.file.getvalue()

    assert "STALLED 31s" in shown({})
    after = shown({"a.log:7": "evicted"})
    assert "EVICTED" in after and "STALLED" not in after
    assert all(len(line) <= 79 for line in after.splitlines())


def test_watch_summary_mentions_the_evictions() -> None:
    from conftest import REPO, run_lkwedge

    proc = run_lkwedge("watch", "--once", "--dry-run", "samples/agents_json_seed_stall.log", cwd=REPO)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    row = [ln for ln in lines if ln.startswith("stalled      samples/agents_json_seed_stall.log:20")]
    assert len(row) == 1 and row[0].endswith("eviction=dry_run")
    assert "evictions: 1 dry run" in lines
