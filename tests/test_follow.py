"""lkwedge.live.follow: real files, renames, truncations, pipes and writer processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lkwedge.live.follow import STDIN_NAME, Follower, LineEvent, Notice

POLL = 0.05


def collect(f: Follower, until: Callable[[list], bool], timeout: float = 5.0) -> list:
    """Items from `f` until `until(items)` holds (or the timeout: the caller's assert then fails)."""
    items: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(items):
        item = f.get(timeout=0.05)
        if item is not None:
            items.append(item)
    return items


def lines(items: list) -> list[tuple[int, str]]:
    return [(i.lineno, i.text) for i in items if isinstance(i, LineEvent)]


def texts(items: list) -> list[str]:
    return [i.text for i in items if isinstance(i, LineEvent)]


def kinds(items: list) -> list[str]:
    return [i.kind for i in items if isinstance(i, Notice)]


def has_text(t: str) -> Callable[[list], bool]:
    return lambda items: t in texts(items)


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def test_follows_from_the_end_with_physical_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("old 1\nold 2\nold 3\n")
    with Follower([str(log)], poll_interval=POLL) as f:
        assert collect(f, lambda it: "opened" in kinds(it))
        append(log, "new 4\nnew 5\n")
        items = collect(f, has_text("new 5"))
    assert lines(items) == [(4, "new 4"), (5, "new 5")]
    assert all(i.source == str(log) for i in items)


def test_from_start_reads_the_whole_file_then_follows(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("a\nb\n")
    with Follower([str(log)], from_start=True, poll_interval=POLL) as f:
        first = collect(f, has_text("b"))
        append(log, "c\n")
        later = collect(f, has_text("c"))
    assert lines(first) == [(1, "a"), (2, "b")]
    assert lines(later) == [(3, "c")]


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("done\nhalf a li")       # following from the end starts at the partial line
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        time.sleep(0.3)
        assert lines(collect(f, lambda it: False, timeout=0.3)) == []
        append(log, "ne\n")
        items = collect(f, has_text("half a line"))
    assert lines(items) == [(2, "half a line")]


def test_once_reads_to_eof_and_flushes_the_partial_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"one\r\ntwo \xff\xfe bad utf8\nno newline at end")
    f = Follower([str(log)], from_start=True, once=True, poll_interval=POLL).start()
    items = list(f)
    assert lines(items) == [(1, "one"), (2, "two \ufffd\ufffd bad utf8"), (3, "no newline at end")]
    assert kinds(items)[-1] == "eof"
    assert f.finished


def test_once_on_a_big_file_keeps_every_line_in_order(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    n = 60_000
    log.write_text("".join(f"line {i} " + "x" * (i % 97) + "\n" for i in range(1, n + 1)))
    f = Follower([str(log)], from_start=True, once=True, max_batches=4).start()
    got = [i for i in f if isinstance(i, LineEvent)]
    assert len(got) == n
    assert [g.lineno for g in got] == list(range(1, n + 1))
    assert got[-1].text.startswith(f"line {n} ")


def test_rename_and_recreate_finishes_old_file_then_continues_numbering(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("before\n")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        append(log, "line 2\n")
        collect(f, has_text("line 2"))
        os.rename(log, tmp_path / "agent.log.1")
        append(tmp_path / "agent.log.1", "written to the old file after the rename\n")
        time.sleep(0.2)
        log.write_text("first of the new file\n")
        items = collect(f, has_text("first of the new file"))
    assert lines(items) == [(3, "written to the old file after the rename"), (4, "first of the new file")]
    assert "rotated" in kinds(items)
    assert texts(items).count("first of the new file") == 1


def test_rotation_flushes_the_old_files_partial_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        append(log, "complete\nunterminated")
        collect(f, has_text("complete"))
        os.rename(log, tmp_path / "agent.log.1")
        log.write_text("new\n")
        items = collect(f, has_text("new"))
    assert lines(items) == [(2, "unterminated"), (3, "new")]


def test_copytruncate_restarts_at_offset_zero(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        append(log, "a fairly long line before the truncation\n" * 3)
        collect(f, lambda it: len(lines(it)) == 3)
        with open(log, "r+b") as fh:     # logrotate copytruncate: copy elsewhere, truncate in place
            fh.truncate(0)
        time.sleep(0.2)
        append(log, "after truncate\n")
        items = collect(f, has_text("after truncate"))
    assert "truncated" in kinds(items)
    assert lines(items) == [(4, "after truncate")]


def test_truncate_and_refill_past_our_offset_is_noticed(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        append(log, "short 1\n")
        collect(f, has_text("short 1"))
        f_stop_reading = f                  # the same follower; refill faster than it polls
        with open(log, "r+b") as fh:
            fh.truncate(0)
            fh.write(b"REWRITTEN much longer first line than before\n")
        items = collect(f_stop_reading, has_text("REWRITTEN much longer first line than before"))
    assert "truncated" in kinds(items)


def test_a_refill_right_after_the_first_lines_are_delivered_is_noticed(tmp_path: Path) -> None:
    """The race of the test above, made certain: the file is truncated and refilled at the very moment
    its first line is handed over (before this poll's stat), on a file that was empty when opened."""
    from lkwedge.live.follow import _FileTail

    log = tmp_path / "agent.log"
    log.write_text("")
    tail = _FileTail(Follower([str(log)]), str(log), from_start=True)
    said: list[str] = []
    delivered: list[bytes] = []
    tail.em.notice = lambda kind, detail="": said.append(kind)  # type: ignore[method-assign]

    def feed(data: bytes, when: float) -> None:
        delivered.append(data)
        if data == b"short 1\n":
            with open(log, "r+b") as fh:
                fh.truncate(0)
                fh.write(b"REWRITTEN much longer first line than before\n")

    tail.em.feed = feed  # type: ignore[method-assign]
    tail.step()                         # opens the empty file
    append(log, "short 1\n")
    tail.step()                         # delivers it; the file is rewritten before the stat
    tail.step()
    assert "truncated" in said
    assert delivered[-1] == b"REWRITTEN much longer first line than before\n"


def test_missing_file_is_read_whole_when_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    with Follower([str(log)], poll_interval=POLL) as f:
        assert "missing" in kinds(collect(f, lambda it: "missing" in kinds(it)))
        log.write_text("x1\nx2\n")
        items = collect(f, has_text("x2"))
    assert lines(items) == [(1, "x1"), (2, "x2")]


def test_deleted_file_is_reported_and_followed_again_when_recreated(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("x\n")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        log.unlink()
        assert "deleted" in kinds(collect(f, lambda it: "deleted" in kinds(it)))
        log.write_text("back\n")
        items = collect(f, has_text("back"))
    assert lines(items) == [(2, "back")]


def test_glob_picks_up_new_files_but_not_rotated_copies(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    a.write_text("a old\n")
    with Follower([str(tmp_path / "*.log*")], poll_interval=POLL, glob_interval=0.1) as f:
        collect(f, lambda it: "opened" in kinds(it))
        (tmp_path / "b.log").write_text("b first\nb second\n")
        got_b = collect(f, has_text("b second"))
        append(a, "a live\n")
        collect(f, has_text("a live"))
        os.rename(a, tmp_path / "a.log.1")   # matched by the glob: must not be read a second time
        a.write_text("a new file\n")
        items = collect(f, has_text("a new file"))
        items += collect(f, lambda it: False, timeout=0.5)
    assert [(i.source, i.lineno, i.text) for i in got_b if isinstance(i, LineEvent)] == [
        (str(tmp_path / "b.log"), 1, "b first"), (str(tmp_path / "b.log"), 2, "b second")]
    assert texts(items).count("a live") == 0
    assert texts(items).count("a old") == 0
    assert texts(items).count("a new file") == 1


def test_writer_process_lines_arrive_while_it_runs(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    code = ("import sys, time\n"
            "with open(sys.argv[1], 'a', buffering=1) as f:\n"
            "    for i in range(3):\n"
            "        f.write(f'tick {i}\\n'); time.sleep(0.3)\n")
    with Follower([str(log)], poll_interval=POLL) as f:
        collect(f, lambda it: "opened" in kinds(it))
        proc = subprocess.Popen([sys.executable, "-c", code, str(log)])
        try:
            first = collect(f, has_text("tick 0"), timeout=3)
            assert proc.poll() is None, "the first line must arrive while the writer still runs"
            rest = collect(f, has_text("tick 2"), timeout=5)
        finally:
            proc.wait(5)
    assert texts(first + rest) == ["tick 0", "tick 1", "tick 2"]
    arrivals = [i.arrival for i in first + rest if isinstance(i, LineEvent)]
    assert arrivals[2] - arrivals[0] >= 0.4


def test_stdin_pipe_from_a_writer_subprocess(tmp_path: Path) -> None:
    r, w = os.pipe()
    code = ("import os, sys, time\n"
            "os.write(1, b'hello\\npart'); time.sleep(0.3); os.write(1, b'ial\\nlast no newline')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=w)
    os.close(w)
    try:
        f = Follower(["-"], stdin_fd=r, poll_interval=POLL).start()
        items = list(f)
    finally:
        proc.wait(5)
        os.close(r)
    assert [(i.source, i.lineno, i.text) for i in items if isinstance(i, LineEvent)] == [
        (STDIN_NAME, 1, "hello"), (STDIN_NAME, 2, "partial"), (STDIN_NAME, 3, "last no newline")]
    assert kinds(items) == ["eof"]
    assert f.finished


def test_stop_returns_promptly_while_a_pipe_stays_open() -> None:
    r, w = os.pipe()
    try:
        f = Follower([], stdin_fd=r, poll_interval=POLL).start()   # no paths = stdin
        os.write(w, b"one\n")
        assert texts(collect(f, has_text("one"))) == ["one"]
        t0 = time.monotonic()
        f.stop(timeout=2)
        assert time.monotonic() - t0 < 1.0
        assert not any(t.is_alive() for t in f._threads)
    finally:
        os.close(w)
        os.close(r)


def test_once_with_a_missing_file_ends_with_a_notice(tmp_path: Path) -> None:
    f = Follower([str(tmp_path / "nope.log")], once=True, poll_interval=POLL).start()
    items = list(f)
    assert kinds(items) == ["missing", "eof"]


def test_last_line_without_newline_is_never_lost(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"y" * 5)
    items = list(Follower([str(log)], from_start=True, once=True).start())
    assert texts(items) == ["yyyyy"]


def test_line_longer_than_max_line_is_one_counted_placeholder(tmp_path: Path) -> None:
    """Issue 9: a line over --max-line is skipped in one pass (never held whole) and keeps its number."""
    from lkwedge.read.framing import TOO_LONG

    log = tmp_path / "agent.log"
    log.write_bytes(b"a\n" + b"y" * ((1 << 20) + 10) + b"\nb\n" + b"z" * ((1 << 20) + 5))
    items = list(Follower([str(log)], from_start=True, once=True).start())
    assert texts(items) == ["a", TOO_LONG, "b", TOO_LONG]
