from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# lkwedge keeps parsed data files in the user's cache (lkwedge.datafile): the tests, and the commands
# they run, use a cache of their own instead of the home directory's
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lkwedge-test-cache-")


def run_lkwedge(*args: str, stdin: str | None = None, timeout: float = 120,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `lkwedge` command (the installed package, as a user would)."""
    return subprocess.run([sys.executable, "-m", "lkwedge", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def scan_json(*args: str, stdin: str | None = None) -> tuple[dict, subprocess.CompletedProcess[str]]:
    proc = run_lkwedge("scan", "--format", "json", *args, stdin=stdin)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout), proc


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def feed_in_pieces(data: bytes, rnd, sizes: tuple[int, ...], options=None, name: str = "<stdin>"):
    """Bytes as a pipe delivers them to `watch`: random-sized pieces, each cut into lines as it comes,
    fed line by line through the detector's str API. Returns the finished Detector."""
    from lkwedge.detect.engine import Detector, ScanOptions
    from lkwedge.read.framing import LineFramer

    detector = Detector(options or ScanOptions())
    stream = detector.stream(name)
    framer = LineFramer(detector.options.max_line)
    lineno, pos = 1, 0
    while pos < len(data):
        size = rnd.choice(sizes)
        lines = framer.feed(data[pos:pos + size])
        detector.feed_lines(stream, lineno, lines)
        lineno += len(lines)
        pos += size
    detector.feed_lines(stream, lineno, framer.finish())
    detector.finish(stream)
    return detector


@contextlib.contextmanager
def spilling_every_episode():
    """Scans inside spill every settled closed episode to disk at once (as a long scan does past
    `lkwedge.detect.spool.HOLD`)."""
    from lkwedge.detect import spool

    held, spool.HOLD = spool.HOLD, 0
    try:
        yield
    finally:
        spool.HOLD = held


@contextlib.contextmanager
def killed_at_end(make):  # type: ignore[no-untyped-def]
    """A starter of watch processes (``make(*args, **kw)`` returns an object with a ``proc``); any still
    running when the block ends is killed."""
    started = []

    def start(*args: str, **kw: object):  # type: ignore[no-untyped-def]
        started.append(make(*args, **kw))
        return started[-1]

    try:
        yield start
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(5)


@pytest.fixture
def watches():
    """Start `lkwedge watch` processes (`fleet_helpers.Watch`). (test_watch.py has a Watch of its own and
    its own fixture of this name, on the same `killed_at_end`.)"""
    from fleet_helpers import Watch

    with killed_at_end(Watch) as start:
        yield start
