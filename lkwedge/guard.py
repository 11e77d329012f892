"""The in-process guard: the `watch` detector inside the agent, fed by Python logging.

    from lkwedge import guard
    g = guard.install(window="20s", job_ctx=ctx, evict=True)     # livekit-agents entrypoint
    ...
    g.uninstall()                                                # or let the job's shutdown do it

A `logging.Handler` on the ``livekit`` logger (livekit-agents' ``livekit.agents``/``livekit.plugins.*``
propagate to it) sees every Rust record the rtc wheel forwards (``_ffi_client.py`` logs them as
``"%s:%s:%s - %s" % (target, line, module_path, message)``) and the agents' own records. A record whose
text holds no pattern literal costs a handful of substring tests and allocates nothing (see `_Keys`); the
rare candidate goes, stamped with a monotonic arrival time, to the guard's thread, which formats it as one
livekit-agents JSON line (``message``, ``level``, ``name``, ``pid``, ``job_id``, ``room``, ``timestamp``)
and feeds the same `Detector` the CLI uses. So the episodes, verdicts and notes are those of ``lkwedge
watch`` on the agent's JSON log.

Timing. The wheel forwards Rust records in batches (every 1 s or 32 records), so a record can reach
Python up to ~1 s after the event. Silence is measured between arrival times, and the guard's detector
window is ``window + batch_grace`` (0.95 s by default): a success line that happened inside the window
but sat in a batch is still credited, and a stall fires within ``window`` + 1 s of the last progress
(a deadline timer on the monotonic clock, not a poll). Wall-clock steps change nothing.

The success line ``RtcEngine successfully recovered`` is INFO, and livekit-agents sets the ``livekit``
logger to WARN. The guard lowers that logger to INFO for its own handler and puts a filter on the app's
existing handlers (root, ``livekit`` and ``livekit.*``) that drops exactly the records the old level would
not have created, so the console is unchanged. ``uninstall()`` restores the level and removes the filters.

On a stall (or a ghost room: the give-up line with no disconnect after it) the guard, in order: logs one
ERROR on ``lkwedge.guard`` with the episode (``extra={"episode": {...}}``), calls ``on_stall(episode)``
on the app's event loop (``call_soon_threadsafe``; a coroutine function is run as a task), evicts the
agent's own participant through RoomService (`lkwedge.act.evict.Evictor`: dedupe, rate limit, retries,
audit) and shuts the job down, each when asked. Eviction and shutdown are skipped when the episode has
already ended by the time the stall is known. ``on_resolved(episode)`` follows when a stalled episode ends.

One guard per process: Rust records name no room or job, so two jobs sharing a process (agents' thread
executor) cannot be told apart; a second `install` raises until the first is uninstalled.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lkwedge.act.evict import EvictionResult, Evictor
from lkwedge.act.targets import EvictionTarget, TargetOptions, derive_target
from lkwedge.detect.engine import Detector, ScanOptions
from lkwedge.detect.episodes import Episode
from lkwedge.durations import parse_duration
from lkwedge.errors import InputError
from lkwedge.safe import printable

__all__ = ["Guard", "GuardStatus", "install"]

log = logging.getLogger("lkwedge.guard")

#: the format string livekit-rtc's ``_ffi_client.py`` logs every forwarded Rust record with (rtc 0.18 - 1.2.x)
FORWARD_FORMAT = "%s:%s:%s - %s"
#: pattern ids (patterns/livekit-rtc-1.2.toml) of an initial Room.connect() that failed: not a reconnect
CONNECT_FAILURE_PATTERNS = frozenset({"connect-retry", "connect-error", "connect-auth-rejected"})
_LEVEL_NAMES = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}
_STOP = object()
_POKE = object()
_CLOCK_MARGIN = 0.02   # covers a logging thread preempted between stamping a record and queueing it

EpisodeCallback = Callable[[Episode], Any]

_install_lock = threading.Lock()
_active: Guard | None = None


@dataclass(frozen=True)
class GuardStatus:
    """What the guard has seen so far (a snapshot)."""

    installed: bool
    records: int                      # candidate records fed to the detector
    connect_failures: int             # initial Room.connect() failures (retries included): no episode
    last_connect_error: str | None    # the last such message, terminal-safe
    episodes: int                     # reconnect episodes opened
    stalls: int                       # episodes that stalled (on_stall was called)
    resolved: int                     # stalled episodes that ended since (on_resolved was called)
    open: int                         # episodes still open


# ---- the cheap prefilter ------------------------------------------------------------------------------


def cover_keys(literals: Sequence[str], min_len: int = 6, max_len: int = 10) -> tuple[str, ...]:
    """A few substrings such that every literal contains at least one of them (greedy set cover).

    A text holding a literal therefore holds a key, so testing the keys first never loses a match; with
    ~10 keys instead of ~40 literals the test of an irrelevant record is a few C-level substring searches.
    """
    remaining = set(literals)
    keys: list[str] = []
    while remaining:
        best, covered = "", set()
        for literal in remaining:
            size_cap = min(max_len, len(literal))
            for size in range(min(min_len, len(literal)), size_cap + 1):
                for i in range(len(literal) - size + 1):
                    piece = literal[i:i + size]
                    hits = {lit for lit in remaining if piece in lit}
                    if len(hits) > len(covered) or (len(hits) == len(covered) and len(piece) > len(best)):
                        best, covered = piece, hits
        keys.append(best)
        remaining -= covered
    return tuple(keys)


def any_in(needles: Sequence[str]) -> Callable[[str], bool]:
    """``lambda text: n1 in text or n2 in text or ...``, compiled once from the needles' repr().

    An ``or`` chain of ``in`` tests allocates nothing; a loop over the needles would allocate its iterator
    per record. repr() of a str is always a plain string literal, so no pattern text can become code.
    """
    if not needles:
        return lambda text: False
    chain = " or ".join(f"{str(needle)!r} in text" for needle in needles)
    return eval(f"lambda text: {chain}", {"__builtins__": {}})  # string literals only (see above)


class _GuardHandler(logging.Handler):
    """Sees every record of the ``livekit`` logger tree; queues only those holding a pattern literal.

    A forwarded Rust record is tested on its message argument, any other record on its format string
    (and on its single argument when the format is just ``"%s"``): no record is formatted to be tested.
    """

    def __init__(self, literals: Sequence[str], sink: Callable[[Any], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(logging.NOTSET)
        self.keys = cover_keys(literals)
        self.literals = tuple(literals)
        self._has_key = any_in(self.keys)
        self._has_literal = any_in(self.literals)
        self.sink = sink
        self.clock = clock

    def handle(self, record: logging.LogRecord) -> bool:  # replaces Handler.handle: no lock, no filters
        msg = record.msg
        args = record.args
        if msg is FORWARD_FORMAT or msg == FORWARD_FORMAT:
            text = args[3] if type(args) is tuple and len(args) == 4 else None
        elif msg == "%s" and type(args) is tuple and len(args) == 1:
            text = args[0]
        else:
            text = msg
        if type(text) is str and self._has_key(text) and self._has_literal(text):
            self.sink((record, self.clock()))
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


# ---- keeping the app's console as it was ------------------------------------------------------------


class _KeepAppLevel(logging.Filter):
    """On the app's handlers: drop the records that exist only because the guard lowered ``lowered``."""

    def __init__(self, lowered: logging.Logger, old_effective: int) -> None:
        super().__init__()
        self.lowered = lowered
        self.old_effective = old_effective

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.old_effective:
            return True
        # Created below the old level: keep it only if its own logger (or an ancestor below `lowered`)
        # sets a level of its own, i.e. the record would have existed without the guard.
        logger = logging.root.manager.loggerDict.get(record.name)
        while isinstance(logger, logging.Logger) and logger is not self.lowered:
            if logger.level:
                return True
            logger = logger.parent
        return logger is not self.lowered


# ---- the guard ----------------------------------------------------------------------------------------


class Guard:
    """An installed guard. Create it with `install`; see the module docstring."""

    def __init__(
        self,
        *,
        window: float,
        batch_grace: float,
        on_stall: EpisodeCallback | None,
        on_resolved: EpisodeCallback | None,
        loop: asyncio.AbstractEventLoop,
        job_ctx: Any,
        room: Any,
        identity: str | None,
        job_id: str | None,
        log_stall: bool,
        evictor: Evictor | None,
        own_evictor: bool,
        shutdown: bool,
        logger_names: Sequence[str],
        extra_patterns: Sequence[Path],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.batch_grace = batch_grace
        self.on_stall = on_stall
        self.on_resolved = on_resolved
        self.loop = loop
        self.job_ctx = job_ctx
        self._room = room
        self._identity = identity
        self.job_id = job_id
        self.log_stall = log_stall
        self.evictor = evictor
        self._own_evictor = own_evictor
        self.shutdown = shutdown
        self.pid = os.getpid()
        self.clock = clock

        # keep_closed=0: the guard acts on events and counts; it never lists closed episodes, and an
        # agent runs for days
        self._detector = Detector(ScanOptions(window=window + batch_grace,
                                              extra_patterns=list(extra_patterns)), self._on_event,
                                  keep_closed=0)
        self._stream = self._detector.stream(f"guard:{job_id or self.pid}")
        self._detector.decide(self._stream)  # one record per line, from the first: nothing to sniff
        self._wall0, self._mono0 = time.time(), clock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lineno = 0
        self._open: dict[str, Episode] = {}
        self._fired: dict[str, EvictionTarget | None] = {}     # stalled episode id -> eviction target
        self._stalled_now: list[Episode] = []
        self._closed_now: list[Episode] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._status_lock = threading.Lock()
        self._counts = {"records": 0, "connect_failures": 0, "episodes": 0, "stalls": 0, "resolved": 0}
        self._last_connect_error: str | None = None
        self._installed = False

        self._handler = _GuardHandler(self._detector.patterns.literals, self._queue.put, clock)
        self._loggers = [logging.getLogger(name) for name in logger_names]
        self._lowered: list[tuple[logging.Logger, int]] = []          # (logger, its old .level)
        self._filtered: list[tuple[logging.Handler, logging.Filter]] = []
        self._thread = threading.Thread(target=self._run, name="lkwedge-guard", daemon=True)

    # ---- public ---------------------------------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return self._installed

    @property
    def room_name(self) -> str | None:
        """The room of the guarded job (read from the JobContext / rtc.Room when one was given)."""
        room = self._room
        if room is not None and not isinstance(room, str):
            name = getattr(room, "name", None)
            return name or None
        if room is None and self.job_ctx is not None:
            return _job_room(self.job_ctx)
        return room

    @property
    def identity(self) -> str | None:
        """The participant identity the guard would evict."""
        if self._identity:
            return self._identity
        if self.job_ctx is not None:
            return _job_identity(self.job_ctx)
        room = self._room
        if room is not None and not isinstance(room, str):
            try:  # rtc.Room raises before it is connected
                identity = room.local_participant.identity
            except Exception:
                identity = None
            if identity:
                return str(identity)
        return f"agent-{self.job_id}" if self.job_id else None   # livekit-agents' default identity

    def poke(self) -> None:
        """Make the timer look at the clock now (for a test clock that jumps; real time needs no poke)."""
        self._queue.put(_POKE)

    def status(self) -> GuardStatus:
        with self._status_lock:
            c = dict(self._counts)
            last, open_now = self._last_connect_error, len(self._open)
        return GuardStatus(self._installed, c["records"], c["connect_failures"], last, c["episodes"],
                           c["stalls"], c["resolved"], open_now)

    def uninstall(self, timeout: float = 5.0) -> None:
        """Remove the handler and the filters, restore logger levels, stop the timer thread and (when
        the guard created it) the evictor, waiting at most `timeout` s for an eviction in flight."""
        global _active
        with _install_lock:
            if not self._installed:
                return
            self._installed = False
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        for handler, flt in self._filtered:
            handler.removeFilter(flt)
        for logger, old_level in self._lowered:
            if logger.level == logging.INFO:  # leave it alone if the app changed it since
                logger.setLevel(old_level)
        self._filtered.clear()
        self._lowered.clear()
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if self.evictor is not None and self._own_evictor:
            self.evictor.close(timeout=timeout)
        with _install_lock:
            if _active is self:
                _active = None

    # ---- installation ---------------------------------------------------------------------------------

    def _install(self) -> None:
        self._lower_levels()
        for logger in self._loggers:
            logger.addHandler(self._handler)
        self._installed = True
        self._thread.start()

    def _lower_levels(self) -> None:
        for logger in self._loggers:
            old_effective = logger.getEffectiveLevel()
            if old_effective <= logging.INFO:
                continue
            keep = _KeepAppLevel(logger, old_effective)
            for handler in _handlers_that_see(logger):
                handler.addFilter(keep)
                self._filtered.append((handler, keep))
            self._lowered.append((logger, logger.level))
            logger.setLevel(logging.INFO)

    # ---- the guard thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._next_timeout())
            except queue.Empty:
                item = None
            now = self.clock()
            batch = [] if item is None or item is _POKE else [item]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            for entry in batch:
                if entry is _STOP:
                    stop = True
                    continue
                if entry is _POKE:
                    continue
                try:
                    self._feed(*entry)
                except Exception:  # one odd record must not end the guard
                    log.exception("lkwedge guard: could not process a log record")
            if stop:
                return
            self._detector.advance_clock(self._stream, self._log_time(now - _CLOCK_MARGIN))
            self._act()

    def _next_timeout(self) -> float | None:
        """Seconds until the earliest open episode can stall (None: nothing to wait for)."""
        deadline = None
        for episode in self._open.values():
            if getattr(episode, "stalled", False):
                continue
            last = getattr(episode, "last_progress", None)
            if last is None:
                return 0.1
            due = self._mono0 + (last.timestamp() - self._wall0) + self.window + self.batch_grace
            deadline = due if deadline is None else min(deadline, due)
        if deadline is None:
            return None
        return max(0.0, deadline + _CLOCK_MARGIN + 0.002 - self.clock())

    def _log_time(self, mono: float) -> datetime:
        return datetime.fromtimestamp(self._wall0 + (mono - self._mono0), UTC)

    def _feed(self, record: logging.LogRecord, mono: float) -> None:
        message, line = self._format(record, mono)
        self._lineno += 1
        with self._status_lock:
            self._counts["records"] += 1
        self._detector.feed(self._stream, self._lineno, line)
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        match = self._detector.patterns.match(message, level)
        if match is not None and match.pattern.id in CONNECT_FAILURE_PATTERNS:
            with self._status_lock:
                self._counts["connect_failures"] += 1
                self._last_connect_error = printable(message, 300)

    def _format(self, record: logging.LogRecord, mono: float) -> tuple[str, str]:
        """(the message the patterns see, the agents JSON line the detector parses)."""
        try:
            full = record.getMessage()
        except Exception:  # a record whose args do not fit its format: keep what it says
            full = str(record.msg)
        args = record.args
        forwarded = record.msg == FORWARD_FORMAT and type(args) is tuple and len(args) == 4
        inner = str(args[3]) if forwarded else full  # type: ignore[index]
        obj: dict[str, Any] = {"message": full, "level": record.levelname, "name": record.name,
                               "pid": self.pid}
        if self.job_id:
            obj["job_id"] = self.job_id
        room = self.room_name
        if room:
            obj["room"] = room
        obj["timestamp"] = self._log_time(mono).isoformat()
        return inner, json.dumps(obj, ensure_ascii=False)

    # ---- episodes -------------------------------------------------------------------------------------

    def _on_event(self, event: str, episode: Episode) -> None:
        """The detector's listener (guard thread, inside feed/advance_clock): record, act afterwards."""
        if event == "opened":
            self._open[episode.key] = episode
            with self._status_lock:
                self._counts["episodes"] += 1
        elif event in ("stalled", "ghost"):  # a ghost room (issue 11) is acted on like a stall
            self._stalled_now.append(episode)
        elif event == "closed":
            if self._open.get(episode.key) is episode:
                del self._open[episode.key]
            self._closed_now.append(episode)

    def _act(self) -> None:
        stalled, self._stalled_now = self._stalled_now, []
        closed, self._closed_now = self._closed_now, []
        for episode in stalled:
            self._on_stall(episode, still_open=self._open.get(episode.key) is episode)
        for episode in closed:
            if episode.id in self._fired:
                self._on_resolved(episode)

    def _on_stall(self, episode: Episode, still_open: bool) -> None:
        with self._status_lock:
            self._counts["stalls"] += 1
        snapshot = copy.deepcopy(episode)
        target = None
        if self.evictor is not None or self.shutdown:
            target = derive_target(snapshot, TargetOptions(room=self.room_name, identity=self.identity))
        self._fired[episode.id] = target
        if self.log_stall:
            what = "ghost room (gave up, no disconnect)" if episode.outcome == "gave_up" else "stalled"
            last = getattr(episode, "last_progress", None) or episode.start
            now = self._log_time(self.clock())
            silence = (now - last).total_seconds() if last is not None else None
            log.error("LiveKit reconnect %s: job %s, room %s, participant %s: no progress for %.1f s "
                      "(window %g s + %g s log batching), %d attempt(s), last state %s", what,
                      printable(episode.job or "-"), printable(self.room_name or episode.room or "-"),
                      printable(self.identity or "-"), silence or 0.0, self.window, self.batch_grace,
                      episode.attempts, printable(episode.outcome or "none"),
                      extra={"episode": snapshot.to_dict()})
        if self.on_stall is not None:
            self._call_soon(self.on_stall, snapshot, name="on_stall")
        if not still_open:
            log.info("lkwedge guard: the episode already ended (%s); no eviction or shutdown",
                     printable(episode.outcome or episode.verdict))
            return
        if self.evictor is not None and target is not None:
            if target.ok:
                self.evictor.submit(snapshot, target)
            else:  # the CLI's wording names its flags; say what the guard needs instead
                log.error("lkwedge guard: not evicting: the %s of the agent is unknown (pass job_ctx=, or "
                          "room= and identity= to install())",
                          "participant identity" if not target.identity else "room name")
        if self.shutdown:
            self._shutdown(snapshot)

    def _on_resolved(self, episode: Episode) -> None:
        with self._status_lock:
            self._counts["resolved"] += 1
        target = self._fired.pop(episode.id, None)
        if self.evictor is not None and target is not None:
            self.evictor.release_target(target)
        snapshot = copy.deepcopy(episode)
        if self.log_stall:
            log.info("LiveKit reconnect episode ended after the stall: %s",
                     printable(episode.outcome or episode.verdict), extra={"episode": snapshot.to_dict()})
        if self.on_resolved is not None:
            self._call_soon(self.on_resolved, snapshot, name="on_resolved")

    def _call_soon(self, fn: Callable[..., Any], *args: Any, name: str = "callback") -> None:
        """Run fn(*args) on the app's loop; a coroutine it returns becomes a task there."""

        def run() -> None:
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                log.exception("lkwedge guard: %s raised", name)

        try:
            self.loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: the app is exiting
            log.warning("lkwedge guard: event loop closed, %s not called", name)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("lkwedge guard: callback task raised", exc_info=task.exception())

    def _shutdown(self, episode: Episode) -> None:
        reason = f"lkwedge: LiveKit reconnect stalled ({episode.outcome or 'no progress'})"
        if self.job_ctx is not None:
            self._call_soon(self.job_ctx.shutdown, reason, name="job shutdown")
        elif self._room is not None and not isinstance(self._room, str):
            self._call_soon(self._room.disconnect, name="room.disconnect")

    def _on_evicted(self, result: EvictionResult) -> None:
        if result.ok:
            log.warning("lkwedge guard: %s", result.summary())
        else:
            log.error("lkwedge guard: %s", result.summary())


# ---- helpers --------------------------------------------------------------------------------------------


def _handlers_that_see(logger: logging.Logger) -> list[logging.Handler]:
    """The app's handlers that records of `logger` and its children reach: its own, its descendants'
    and (through propagation) its ancestors'."""
    found: list[logging.Handler] = []
    prefix = logger.name + "."
    for name, other in list(logging.root.manager.loggerDict.items()):
        if isinstance(other, logging.Logger) and (name == logger.name or name.startswith(prefix)):
            found.extend(other.handlers)
    current: logging.Logger | None = logger
    while current is not None:
        if current is not logger:
            found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    unique: list[logging.Handler] = []
    for handler in found:
        if handler not in unique and not isinstance(handler, _GuardHandler):
            unique.append(handler)
    return unique


def _job_room(job_ctx: Any) -> str | None:
    job = getattr(job_ctx, "job", None)
    room = getattr(job, "room", None)
    name = getattr(room, "name", None)
    if not name:
        name = getattr(getattr(job_ctx, "room", None), "name", None)
    return str(name) if name else None


def _job_identity(job_ctx: Any) -> str | None:
    try:
        identity = job_ctx.token_claims().identity
    except Exception:
        identity = None
    if identity:
        return str(identity)
    job_id = getattr(getattr(job_ctx, "job", None), "id", None)
    return f"agent-{job_id}" if job_id else None   # livekit-agents' default (JobRequest.accept)


def install(
    window: str | float = "20s",
    *,
    on_stall: EpisodeCallback | None = None,
    on_resolved: EpisodeCallback | None = None,
    job_ctx: Any = None,
    room: Any = None,
    identity: str | None = None,
    job_id: str | None = None,
    log_stall: bool = True,
    evict: bool = False,
    shutdown: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
    batch_grace: str | float = 0.95,
    loggers: Sequence[str] = ("livekit",),
    patterns: Sequence[str | Path] = (),
    evictor: Evictor | None = None,
    url: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    revoke_token: bool = False,
    max_evictions_per_minute: int = 5,
    audit: str | Path | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Guard:
    """Install the guard in this process and return it.

    - ``window``: silence that makes a reconnect "stalled" (``"20s"``, ``"1m"``, seconds as a number).
    - ``on_stall(episode)`` / ``on_resolved(episode)``: called on ``loop`` (default: the running loop),
      sync functions or coroutine functions; they get a copy of the `Episode`.
    - ``job_ctx``: a livekit-agents ``JobContext``: gives the job id, the room name, the agent's identity
      (from its token), the shutdown action, and uninstalls the guard when the job shuts down.
    - ``room``: the room name, or a livekit-rtc ``rtc.Room`` (name and identity are read from it when
      needed; ``shutdown=True`` then disconnects it). ``identity`` / ``job_id`` override what is derived.
    - ``log_stall``: log one ERROR (logger ``lkwedge.guard``) per stall. ``evict``: remove the agent's own
      participant through RoomService (credentials from ``url``/``api_key``/``api_secret`` or LIVEKIT_URL,
      LIVEKIT_API_KEY, LIVEKIT_API_SECRET), or pass your own ``evictor``. ``shutdown``: end the job.
    - ``batch_grace``: how late the wheel may deliver a record (it flushes its log batch every second);
      0.95 s by default, so that a stall fires within ``window`` + 1 s.
    - ``clock``: the monotonic clock (tests pass a fake one and call `Guard.poke` after moving it).

    Raises `lkwedge.errors.InputError` for bad values or missing credentials, RuntimeError if a guard is
    already installed or there is no event loop.
    """
    global _active
    window_s = parse_duration(window)
    grace_s = parse_duration(batch_grace)
    if window_s <= 0:
        raise InputError("the guard's window must be more than 0 s")
    if not loggers:
        raise InputError("the guard needs at least one logger name")
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("lkwedge.guard.install() needs an event loop: call it from your async "
                               "entrypoint, or pass loop=") from None
    if shutdown and job_ctx is None and (room is None or isinstance(room, str)):
        raise InputError("shutdown=True needs job_ctx= (livekit-agents) or room=<rtc.Room> (livekit-rtc)")
    if job_ctx is not None and job_id is None:
        job_id = getattr(getattr(job_ctx, "job", None), "id", None) or None
    own_evictor = False
    with _install_lock:
        if _active is not None and _active.installed:
            raise RuntimeError("an lkwedge guard is already installed in this process; uninstall() it first "
                               "(Rust log records name no job, so one process can guard one job)")
        guard_ref: list[Guard] = []
        if evict and evictor is None:
            evictor = Evictor(url, api_key, api_secret, revoke_token=revoke_token,
                              max_per_minute=max_evictions_per_minute, audit=audit,
                              on_result=lambda res: guard_ref[0]._on_evicted(res) if guard_ref else None)
            own_evictor = True
        guard = Guard(window=window_s, batch_grace=grace_s, on_stall=on_stall, on_resolved=on_resolved,
                      loop=loop, job_ctx=job_ctx, room=room, identity=identity, job_id=job_id,
                      log_stall=log_stall, evictor=evictor if (evict or evictor is not None) else None,
                      own_evictor=own_evictor, shutdown=shutdown, logger_names=list(loggers),
                      extra_patterns=[Path(p) for p in patterns], clock=clock)
        guard_ref.append(guard)
        guard._install()
        _active = guard
    if job_ctx is not None and hasattr(job_ctx, "add_shutdown_callback"):
        async def _uninstall_on_shutdown() -> None:
            await asyncio.to_thread(guard.uninstall)

        job_ctx.add_shutdown_callback(_uninstall_on_shutdown)
    return guard
