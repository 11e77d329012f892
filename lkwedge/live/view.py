"""Console views for `lkwedge watch`: plain lines when piped, a live panel on a terminal.

The alert path never waits on the console (issue 9, "alert path first"): every view method the
Watcher calls only puts a line on a bounded queue or swaps in a snapshot; one console thread owns the
output stream(s) and does all writing and rendering.  On a terminal the panel is redrawn at most
`PANEL_HZ` times a second from a snapshot of at most one screen of rows, so the cost of a redraw does
not grow with the number of open episodes, and lines queued while a redraw ran are printed together
(Rich re-renders the panel after every print, so printing one line at a time would be quadratic).
If the console cannot keep up (a stalled pipe reader), lines beyond `MAX_PENDING_LINES` are dropped
and counted; the alert sinks get every event regardless.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from lkwedge.live.events import LiveEvent, rounded
from lkwedge.live.follow import STDIN_NAME, Notice
from lkwedge.live.sinks import format_console
from lkwedge.output.present import plural, seconds, shown_path, summary_notes, summary_sentence
from lkwedge.output.render import episode_line
from lkwedge.safe import printable

if TYPE_CHECKING:
    from lkwedge.live.watch import Watcher

PANEL_HZ = 4.0              # most panel redraws per second
MAX_PENDING_LINES = 10_000  # console lines queued behind a slow terminal/pipe before we drop
CLOSE_TIMEOUT = 3.0         # how long close() waits for the console to take what is queued


class View(Protocol):
    def event(self, event: LiveEvent) -> None: ...
    def notice(self, notice: Notice) -> None: ...
    def error(self, msg: str) -> None: ...
    def info(self, msg: str) -> None: ...
    def eviction(self, episode_id: str | None, result: str, line: str, ok: bool) -> None: ...
    def refresh(self, watcher: Watcher) -> None: ...
    def close(self) -> None: ...


_NOTICE_TEXT = {
    "missing": "waiting for it to appear", "deleted": "was deleted or renamed; waiting for it to return",
    "rotated": "was rotated; following the new file", "truncated": "was truncated; reading from its start",
    "eof": "ended", "opened": "following",
}


def notice_text(n: Notice) -> str:
    what = _NOTICE_TEXT.get(n.kind, n.kind)
    if n.kind == "error" or (n.kind == "missing" and "match" in n.detail):
        what = n.detail
    return f"{printable(n.source, 200)}: {printable(what, 200)}"


def _notice_shown(notice: Notice) -> bool:
    # "opened" and a file's "eof" are not worth a line each; stdin ending is.
    return notice.kind != "opened" and not (notice.kind == "eof" and notice.source != STDIN_NAME)


@dataclass(frozen=True, slots=True)
class _Line:
    kind: str                               # "alert" | "resolved" | "notice" | "error" | "info"
    text: str = ""                          # already escaped
    event: LiveEvent | None = None          # an alert or resolution, formatted on the console thread

    def render(self, width: int | None = None) -> str:
        if self.event is None:
            return self.text if width is None else _fit(self.text, width)
        try:
            if width is not None:
                return compact_event(self.event, width)
            return format_console(self.event)
        except Exception:           # an event we cannot format: say what we can
            return f"{self.kind.upper()} {printable(self.event.id, 200)}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def compact_event(event: LiveEvent, width: int) -> str:
    """An alert or resolution in one terminal row: time, what, where, job, room, silence. The trigger
    line (often a whole JSON record) is left to --jsonl and the final summary."""
    episode = event.episode
    clock = time.strftime("%H:%M:%S", time.localtime(event.wall_time))
    where = printable(f"{shown_path(episode.file)}:{episode.line}", 200)
    key = episode.key or ""
    tags = [] if key == episode.file else [printable(key, 60)]
    if episode.room:
        tags.append(f"room={printable(episode.room, 60)}")
    if event.kind == "alert":
        head = f"{clock} ALERT stalled {where} silent {seconds(rounded(episode.silence_s))}"
    else:
        outcome = printable(episode.outcome or episode.verdict or "ended", 40)
        head = f"{clock} RESOLVED {where} {outcome} after {seconds(event.outage)}"
    return _fit(" ".join([head, *tags]), width)


class PlainView:
    """One plain line per alert/resolution on `out`; notices and errors on `err`.  A console thread
    formats and writes, so a slow or blocked reader of `out` never holds up detection or the sinks:
    the Watcher's side is one deque append."""

    def __init__(self, out: TextIO, err: TextIO, *, max_pending: int = MAX_PENDING_LINES) -> None:
        self.out = out
        self.err = err
        self.max_pending = max_pending
        self._lines: deque[_Line] = deque()     # append/popleft are atomic: no lock on the hot path
        self._wake = threading.Event()
        self._dropped = 0
        self._broken: set[int] = set()          # id() of streams whose reader went away
        self._closed = False
        self._stop = False
        self.quiet = False                      # -q: no info or notice lines (alerts and errors still shown)
        #: episode id -> eviction result ("evicted", "already_gone", "failed"...), for the panel and summary
        self.evictions: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="lkwedge-console", daemon=True)
        self._thread.start()

    # -- called by the Watcher, sinks and the evictor (any thread): never block ----------------------
    def _put(self, line: _Line) -> None:
        if len(self._lines) >= self.max_pending:
            self._dropped += 1          # approximate under races; only reported as a count
            return
        self._lines.append(line)
        self._wake.set()

    def event(self, event: LiveEvent) -> None:
        self._put(_Line(event.kind, event=event))

    def notice(self, notice: Notice) -> None:
        if notice.kind == "error":
            self._put(_Line("error", f"lkwedge: error: {notice_text(notice)}"))
        elif _notice_shown(notice) and not self.quiet:
            self._put(_Line("notice", f"lkwedge: {notice_text(notice)}"))

    def error(self, msg: str) -> None:
        self._put(_Line("error", f"lkwedge: error: {printable(msg, 500)}"))

    def info(self, msg: str) -> None:
        if not self.quiet:
            self._put(_Line("info", f"lkwedge: {printable(msg, 500)}"))

    def eviction(self, episode_id: str | None, result: str, line: str, ok: bool) -> None:
        """An eviction's outcome (any thread): remembered for the panel and the summary, and shown."""
        if episode_id is not None:
            self.evictions[episode_id] = result
        self._put(_Line("evict" if ok else "error", f"lkwedge: {printable(line, 500)}"))

    def refresh(self, watcher: Watcher) -> None:
        pass

    def close(self) -> None:
        """Let the console thread write what is queued (bounded wait), then stop it."""
        if self._closed:
            return
        self._closed = True
        self._stop = True
        self._wake.set()
        self._thread.join(CLOSE_TIMEOUT)
        if self._dropped:
            self._write_now(self.err, [f"lkwedge: the console could not keep up: {self._dropped} line(s) "
                                       "not shown (alert sinks got every event)"])

    # -- the console thread -------------------------------------------------------------------------
    def _take(self, timeout: float | None) -> tuple[list[_Line], bool]:
        """Everything queued (waiting up to `timeout` for something); (lines, stop requested)."""
        if not self._lines and not self._stop:
            self._wake.wait(timeout)
        self._wake.clear()
        stop = self._stop           # read before draining: nothing queued before close() is lost
        lines: list[_Line] = []
        while self._lines:
            lines.append(self._lines.popleft())
        return lines, stop

    def _run(self) -> None:
        while True:
            lines, stop = self._take(None)
            self._show(lines)
            if stop:
                return

    def _show(self, lines: list[_Line]) -> None:
        if self.out is self.err:
            self._write_now(self.out, [ln.render() for ln in lines])
            return
        err = [ln.render() for ln in lines if ln.kind not in ("alert", "resolved")]
        out = [ln.render() for ln in lines if ln.kind in ("alert", "resolved")]
        if err:
            self._write_now(self.err, err)
        if out:
            self._write_now(self.out, out)

    def _write_now(self, stream: TextIO, lines: list[str]) -> None:
        if not lines or id(stream) in self._broken:
            return
        try:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
        except (OSError, ValueError):
            self._broken.add(id(stream))       # reader gone (closed pipe): stop trying, stay quiet


# -- the live panel -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PanelRow:
    where: str
    key: str
    room: str
    silence: float | None       # log seconds without progress so far (None: no timestamps)
    open_s: float               # wall seconds open
    stalled: bool               # alerted, or proved stalled


@dataclass(frozen=True, slots=True)
class PanelSnapshot:
    rows: list[PanelRow]        # the most urgent open episodes, at most one screen of them
    open_count: int
    inputs: int
    window: float


def snapshot(watcher: Watcher, limit: int) -> PanelSnapshot:
    """What the panel shows, copied on the watcher's thread: the `limit` most urgent open episodes
    (stalled first, longest silence first).  The log clock is estimated once per input, not per row."""
    now = time.monotonic()
    clocks: dict[str, Any] = {}
    window = watcher.options.scan.window
    scored: list[tuple[float, int, PanelRow]] = []
    for ep in watcher.open_episodes():
        if ep.file not in clocks:
            clocks[ep.file] = watcher.estimated_log_now(ep.file, now)
        state = watcher.states.get(id(ep))
        silence = ep.current_silence(clocks[ep.file])
        stalled = bool(ep.stalled or (state is not None and state.alerted))
        row = PanelRow(f"{ep.file}:{ep.line}", ep.key, ep.room or "-", silence,
                       now - state.opened_mono if state else 0.0, stalled)
        urgency = (silence or 0.0) + (window * 1e6 if stalled else 0.0)
        scored.append((-urgency, len(scored), row))
    best = heapq.nsmallest(limit, scored)
    return PanelSnapshot([r for _, _, r in best], len(scored), len(watcher.sources), window)


def panel(snap: PanelSnapshot, evictions: dict[str, str] | None = None) -> Any:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table(expand=False, box=None, pad_edge=False)
    for col in ("where", "key", "room", "state", "open"):
        table.add_column(col, overflow="fold")
    for row in snap.rows:
        evicted = (evictions or {}).get(row.where)
        if evicted is not None:
            state = Text("EVICTED" if evicted in ("evicted", "already_gone") else f"evict {evicted}",
                         style="bold green" if evicted in ("evicted", "already_gone") else "bold yellow")
        elif row.silence is None:
            state = Text("no timestamps", style="yellow")
        elif row.stalled:
            state = Text(f"STALLED {row.silence:.0f}s", style="bold red")
        else:
            state = Text(f"alert in {max(0.0, snap.window - row.silence):.1f}s", style="yellow")
        table.add_row(Text(printable(row.where, 80)), Text(printable(row.key, 40)),
                      Text(printable(row.room, 40)), state, Text(f"{row.open_s:.0f}s"))
    shown = "" if len(snap.rows) == snap.open_count else f" ({len(snap.rows)} shown)"
    title = (f"lkwedge watch: {plural(snap.open_count, 'open episode')}{shown}, window {snap.window:g}s, "
             f"{plural(snap.inputs, 'input')}")
    body: Any = table if snap.rows else Text("no reconnect in progress", style="dim")
    return _ShortOfTheEdge(Panel(body, title=Text(title), title_align="left"))


class _ShortOfTheEdge:
    """Render one column short of the terminal's width, so the cursor never sits in the last column
    (where a terminal's deferred wrap makes any later character start a new row)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from console.render(self.inner, options.update_width(max(20, options.max_width - 1)))


class _Lines:
    """Already escaped lines (safe.printable: no control characters) as Rich segments, one per line."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        for text, style in self.items:
            yield Segment(text, style)
            yield Segment.line()


_STYLE = {"alert": "bold red", "resolved": "green", "notice": "dim", "error": "yellow", "info": "dim",
          "evict": "bold green"}


class _NoEcho:
    """While the panel is up the terminal does not echo what is typed. Rich redraws the panel by moving
    the cursor up over its own rows; a typed Enter, or the "^C" the terminal echoes for Ctrl-C, shifts
    the rows under it and the clean-up at exit would leave the panel's top border on screen. Ctrl-C
    still interrupts (ISIG is untouched); the settings are restored when the panel closes."""

    def __init__(self, stream: Any) -> None:
        self.fd: int | None = None
        self.saved: Any = None
        try:
            import termios

            fd = stream.fileno()
            if not os.isatty(fd):
                return
            self.saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | getattr(termios, "ECHOCTL", 0))
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self.fd = fd
        except Exception:           # not a terminal we can configure (Windows, a closed fd): no change
            self.fd = None

    def restore(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(Exception):
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        self.fd = None


class LiveView(PlainView):
    """On a terminal: a Rich Live panel of open episodes with countdowns; events print above it.
    Only the console thread touches the Rich console."""

    def __init__(self, console: Any, err: TextIO, *, hz: float = PANEL_HZ,
                 snapshotter: Callable[[Watcher, int], PanelSnapshot] = snapshot) -> None:
        from rich.live import Live

        self.console = console
        self.live = Live(console=console, transient=True, auto_refresh=False)
        self._period = 1.0 / hz
        self._snapshotter = snapshotter
        self._snap: PanelSnapshot | None = None     # newest snapshot not drawn yet
        self._next_snap = 0.0
        self._snap_failed = False
        super().__init__(console.file, err)

    def refresh(self, watcher: Watcher) -> None:
        """Called on every watcher tick: copy a snapshot at most `hz` times a second, and only once
        the console thread has drawn the previous one (a slow terminal gets fewer, never a backlog)."""
        now = time.monotonic()
        if now < self._next_snap or self._snap is not None or self._closed:
            return
        self._next_snap = now + self._period
        try:
            height = self.console.size.height
        except Exception:
            height = 24
        try:
            self._snap = self._snapshotter(watcher, max(3, height - 8))
        except Exception as e:      # a panel problem must never stop detection: skip this frame
            if not self._snap_failed:
                self._snap_failed = True
                self.error(f"the panel could not be drawn: {type(e).__name__}: {e}")

    def _style(self, kind: str) -> Any:
        return self.console.get_style(_STYLE.get(kind, "none"))

    def _run(self) -> None:
        quiet_tty = _NoEcho(self.console.file)
        with contextlib.suppress(Exception):
            self.live.start()
        try:
            while True:
                lines, stop = self._take(self._period)
                if lines:
                    # One print for the whole batch (Rich redraws the panel once per print), as ready-made
                    # segments: laying out thousands of Text objects would take a second (issue 9).
                    width = self.live.console.width
                    self.live.console.print(_Lines([(ln.render(width), self._style(ln.kind))
                                                    for ln in lines]), soft_wrap=True)
                snap, self._snap = self._snap, None
                if snap is not None and not stop:
                    try:
                        frame = panel(snap, self.evictions)
                    except Exception:       # skip a frame we cannot lay out; lines still print
                        frame = None
                    if frame is not None:
                        self.live.update(frame, refresh=True)
                if stop:
                    return
        except Exception:
            # A terminal that went away must not take the watcher with it: fall back to plain lines.
            self._broken.add(id(self.out))
            super()._run()
        finally:
            with contextlib.suppress(Exception):
                self.live.stop()
            quiet_tty.restore()


# -- summary ----------------------------------------------------------------------------------------

def summary_lines(watcher: Watcher, evictions: dict[str, str] | None = None) -> list[str]:
    """Every episode (closed and still open) as plain, escaped lines, then scan's summary sentence
    (still-open episodes counted apart) and the evictions made."""
    evictions = evictions or {}
    kept = watcher.episodes()
    out = [episode_line(ep, 400) + _evicted(evictions, ep.id) for ep in kept]
    open_rows = watcher.open_rows()
    for ep, silence, open_s, alerted in open_rows:
        state = "stalled (alerted)" if alerted or ep.stalled else "within the window"
        out.append(printable(f"{'open':<12} {shown_path(ep.file)}:{ep.line}  key={ep.key}  open for "
                             f"{open_s:.1f}s, silent {seconds(silence)} of log time, {state}", 400)
                   + _evicted(evictions, ep.id))
    summ = watcher.summary()
    out.append(summary_sentence(summ, open_count=len(open_rows)).plain)
    if evictions:
        counts = Counter(evictions.values())
        out.append("evictions: " + ", ".join(f"{n} {result.replace('_', ' ')}"
                                             for result, n in sorted(counts.items())))
    retired = summ.episodes - len(kept)
    if retired > 0:
        out.append(f"note: {plural(retired, 'older closed episode')} not listed (only the newest "
                   f"{watcher.options.keep_closed} per input are kept); the counts include them")
    out.extend(printable(note, 400) for note in summary_notes(summ))
    return out


def _evicted(evictions: dict[str, str], episode_id: str) -> str:
    result = evictions.get(episode_id)
    return "" if result is None else f"  eviction={result}"
