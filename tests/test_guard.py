"""The in-process guard (lkwedge.guard) with the real livekit (rtc) wheel.

Reconnect sequences go through the wheel's own forwarder, ``livekit.rtc._ffi_client.ffi_event_callback``,
with a serialized ``FfiEvent{logs: LogBatch}``: the LogRecords are built by the real code (logger
``livekit``, level, ``"%s:%s:%s - %s"`` and its args), exactly as when the Rust SDK logs them, with
the targets and line numbers of the rtc 1.2.1 call sites (patterns/fingerprints/rtc-1.2.toml).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from livekit import api, rtc
from livekit.rtc import _ffi_client
from livekit.rtc._proto import ffi_pb2 as proto_ffi

from lkwedge import guard
from lkwedge.detect.patterns import PatternSet
from lkwedge.errors import InputError
from lkwedge.testing import FakeRoomService

KEY = "devkey"
SECRET = "guard-test-secret-0123456789-abcdefghij"

CLOSE = ("WARN", "livekit::rtc_engine", 643,
         'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume')
RESUME_1 = ("ERROR", "livekit::rtc_engine", 1041, "resuming connection... attempt: 1")
RECOVERED = ("INFO", "livekit::rtc_engine", 938, "RtcEngine successfully recovered")
GAVE_UP = ("ERROR", "livekit::rtc_engine", 922, "failed to reconnect to the livekit room")
OLD_SDK_GIVE_UP = (("WARN", "livekit::rtc_engine", 474, CLOSE[3]),
                   ("ERROR", "livekit::rtc_engine", 773, "resuming connection... attempt: 0"),
                   ("ERROR", "livekit::rtc_engine", 699, "failed to reconnect to the livekit room"))
_LEVELS = {"ERROR": proto_ffi.LOG_ERROR, "WARN": proto_ffi.LOG_WARN, "INFO": proto_ffi.LOG_INFO,
           "DEBUG": proto_ffi.LOG_DEBUG}


def forward(*records: tuple[str, str, int, str]) -> None:
    """Hand a LogBatch to the wheel's FFI callback, as liblivekit_ffi.so does every second."""
    batch = proto_ffi.LogBatch(records=[
        proto_ffi.LogRecord(level=_LEVELS[level], target=target, module_path=target, line=line,
                            file="livekit/src/rtc_engine/mod.rs", message=message)
        for level, target, line, message in records])
    data = proto_ffi.FfiEvent(logs=batch).SerializeToString()
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    _ffi_client.ffi_event_callback(ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8)), len(data))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Calls:
    """Collects callback invocations with the thread they ran on."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any, threading.Thread, float]] = []

    def make(self, name: str) -> Callable[[Any], None]:
        def callback(episode: Any) -> None:
            self.items.append((name, episode, threading.current_thread(), time.monotonic()))
        return callback

    def named(self, name: str) -> list[Any]:
        return [ep for n, ep, _t, _m in self.items if n == name]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_logging():
    """An app configured like livekit-agents: root handler, `livekit` at WARN, `livekit.agents` at INFO."""
    root, lk, agents = logging.getLogger(), logging.getLogger("livekit"), logging.getLogger("livekit.agents")
    saved = (root.level, lk.level, agents.level)
    handler = ListHandler()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lk.setLevel(logging.WARNING)
    agents.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved[0])
    lk.setLevel(saved[1])
    agents.setLevel(saved[2])
    active = guard._active
    if active is not None:
        active.uninstall()


class JobContextStandIn:
    """The parts of livekit-agents' JobContext the guard uses: job.id, job.room.name, token_claims()
    (agents: ``api.TokenVerifier().verify(token, verify_signature=False)``), shutdown(reason) and
    add_shutdown_callback(cb)."""

    def __init__(self, job_id: str, room: str, identity: str) -> None:
        self.job = SimpleNamespace(id=job_id, room=SimpleNamespace(name=room, sid="RM_test"))
        self._token = (api.AccessToken(KEY, SECRET).with_identity(identity)
                       .with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt())
        self.shutdowns: list[tuple[str, threading.Thread]] = []
        self.shutdown_callbacks: list[Callable[[], Any]] = []

    def token_claims(self) -> api.access_token.Claims:
        return api.TokenVerifier().verify(self._token, verify_signature=False)

    def shutdown(self, reason: str = "user requested") -> None:
        self.shutdowns.append((reason, threading.current_thread()))

    def add_shutdown_callback(self, callback: Callable[[], Any]) -> None:
        self.shutdown_callbacks.append(callback)


# ---- the real wheel, for real -----------------------------------------------------------------------


def test_real_wheel_connect_failure_is_an_initial_connect_failure_not_an_episode(app_logging):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # closed once the with-block ends: connection refused

    async def main() -> guard.GuardStatus:
        calls = Calls()
        g = guard.install("2s", on_stall=calls.make("stall"), job_id="AJ_wheel", room="r-wheel")
        try:
            room = rtc.Room()
            with pytest.raises(rtc.ConnectError):
                await room.connect(f"ws://127.0.0.1:{port}", "not-a-token")
            assert await until(lambda: g.status().connect_failures >= 2, timeout=10)
            await asyncio.sleep(0.3)
            assert calls.items == []
            return g.status()
        finally:
            g.uninstall()

    status = asyncio.run(main())
    assert status.episodes == 0 and status.stalls == 0
    assert "Connection refused" in (status.last_connect_error or "")
    # the guard saw the INFO "connecting to" records; the app's handler got no INFO from `livekit`
    assert status.records > status.connect_failures
    from_livekit = [r for r in app_logging.records if r.name == "livekit"]
    assert any("failed to connect: " in r.getMessage() for r in from_livekit)
    assert all(r.levelno >= logging.WARNING for r in from_livekit), [r.getMessage() for r in from_livekit]
    assert logging.getLogger("livekit").level == logging.WARNING


# ---- reconnect sequences through the wheel's forwarder, on a fake clock -------------------------------


def test_stall_fires_after_window_plus_batch_grace_and_recovery_resolves(app_logging):
    clock, calls = FakeClock(), Calls()

    async def main() -> None:
        g = guard.install("2s", on_stall=calls.make("stall"), on_resolved=calls.make("resolved"),
                          job_id="AJ_clock", room="r1", clock=clock)
        loop_thread = threading.current_thread()
        forward(CLOSE, RESUME_1)
        assert await until(lambda: g.status().episodes == 1)
        clock.now += 2.9                   # window 2 s + batch grace 0.95 s not yet over
        g.poke()
        await asyncio.sleep(0.3)
        assert calls.items == []
        clock.now += 0.1                   # window + 1 s of silence: stalled by now
        g.poke()
        assert await until(lambda: len(calls.named("stall")) == 1, timeout=2)
        (episode,) = calls.named("stall")
        assert (episode.job, episode.room, episode.attempts, episode.stalled) == ("AJ_clock", "r1", 1, True)
        assert calls.items[0][2] is loop_thread          # run on the app's event loop
        clock.now += 5
        forward(RECOVERED)
        assert await until(lambda: len(calls.named("resolved")) == 1, timeout=2)
        (resolved,) = calls.named("resolved")
        assert resolved.outcome == "recovered" and resolved.verdict == "stalled"
        status = g.status()
        assert (status.stalls, status.resolved, status.open) == (1, 1, 0)
        g.uninstall()

    asyncio.run(main())
    errors = [r for r in app_logging.records if r.name == "lkwedge.guard" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "stalled" in errors[0].getMessage()
    assert errors[0].episode["job"] == "AJ_clock"          # the episode rides along as `extra`
    # the INFO success line reached the guard but not the app's console
    assert not any("successfully recovered" in r.getMessage() for r in app_logging.records)


def test_healthy_resume_inside_the_window_never_fires(app_logging):
    clock, calls = FakeClock(), Calls()

    async def main() -> None:
        g = guard.install("2s", on_stall=calls.make("stall"), on_resolved=calls.make("resolved"),
                          job_id="AJ_ok", clock=clock)
        forward(CLOSE, RESUME_1)
        clock.now += 2.5                   # the success line was late (log batching), still credited
        forward(RECOVERED)
        assert await until(lambda: g.status().open == 0 and g.status().records == 3)
        clock.now += 30
        g.poke()
        await asyncio.sleep(0.2)
        g.uninstall()

    asyncio.run(main())
    assert calls.items == []


def lkwedge_bytes() -> int:
    """Memory allocated by lkwedge's own code and still held (not the log records the app's handlers
    and pytest keep)."""
    only = [tracemalloc.Filter(True, "*/lkwedge/*")]
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))


def test_a_guard_running_for_days_does_not_keep_its_closed_episodes(app_logging):
    """An agent reconnects thousands of times over days: the guard counts every episode, but its memory
    does not grow with them (kept as objects, 1 500 episodes would be ~3 MB)."""
    clock = FakeClock()
    episode = [CLOSE, RESUME_1, RECOVERED]

    async def main() -> tuple[Any, int]:
        g = guard.install("2s", job_id="AJ_days", clock=clock)
        try:
            forward(*episode * 100)  # warm up
            assert await until(lambda: g.status().records == 300)
            clock.now += 10
            tracemalloc.start()
            try:
                start = lkwedge_bytes()
                for batch in range(15):
                    clock.now += 10                # each batch ten seconds after the last
                    forward(*episode * 100)
                    assert await until(lambda b=batch: g.status().records == 300 + 300 * (b + 1),
                                       timeout=30)
                grown = lkwedge_bytes() - start
            finally:
                tracemalloc.stop()
            return g.status(), grown
        finally:
            g.uninstall()

    status, grown = asyncio.run(main())
    assert status.episodes == 1600 and status.stalls == 0
    assert grown < 300_000, f"{grown} bytes more after 1 500 episodes"


def test_ghost_room_give_up_without_disconnect_fires_with_its_outcome(app_logging):
    clock, calls = FakeClock(), Calls()

    async def main() -> None:
        g = guard.install(5, on_stall=calls.make("stall"), job_id="AJ_ghost", clock=clock)
        # python livekit <= 1.1.8 (here 1.0.25's lines): the SDK never reports Disconnected after giving up.
        # From 1.1.9 (so 1.2.1's GAVE_UP) the SDK closes the room at that line: no ghost (issue 11).
        forward(*OLD_SDK_GIVE_UP)
        assert await until(lambda: g.status().records == 3)
        clock.now += 6.1
        g.poke()
        assert await until(lambda: len(calls.named("stall")) == 1, timeout=2)
        g.uninstall()

    asyncio.run(main())
    assert calls.named("stall")[0].outcome == "gave_up"
    errors = [r.getMessage() for r in app_logging.records if r.name == "lkwedge.guard"]
    assert any("ghost room" in m for m in errors)


def test_live_timing_stall_fires_within_window_plus_one_second(app_logging):
    """Real clock: window 1 s, default batch grace 0.95 s (scheduling slack on a loaded CI box: 0.3 s)."""
    fired: list[float] = []

    async def on_stall(episode: Any) -> None:     # a coroutine callback runs as a task on the loop
        await asyncio.sleep(0)
        fired.append(time.monotonic())

    async def main() -> float:
        g = guard.install("1s", on_stall=on_stall, job_id="AJ_live")
        start = time.monotonic()
        forward(CLOSE, RESUME_1)
        assert await until(lambda: bool(fired), timeout=5)
        g.uninstall()
        return fired[0] - start

    elapsed = asyncio.run(main())
    assert 1.95 <= elapsed <= 2.0 + 0.3, elapsed


# ---- actions -----------------------------------------------------------------------------------------


def test_self_eviction_reaches_roomservice_with_the_agents_exact_identity(app_logging, tmp_path):
    clock, calls = FakeClock(), Calls()
    ctx = JobContextStandIn("AJ_evict", "support-7", identity="voice-bot-7")   # not agent-<job id>
    with FakeRoomService(KEY, SECRET) as fake:
        fake.add_room("support-7", sid="RM_s7", participants=["voice-bot-7", "caller-1"])

        async def main() -> None:
            g = guard.install("2s", job_ctx=ctx, evict=True, shutdown=True, on_stall=calls.make("stall"),
                              url=fake.url, api_key=KEY, api_secret=SECRET, clock=clock,
                              audit=tmp_path / "audit.jsonl")
            assert (g.room_name, g.identity) == ("support-7", "voice-bot-7")
            forward(CLOSE, RESUME_1)
            assert await until(lambda: g.status().episodes == 1)
            clock.now += 3.2
            g.poke()
            assert await until(lambda: fake.removals() == [("support-7", "voice-bot-7")], timeout=10)
            assert await until(lambda: len(ctx.shutdowns) == 1)
            clock.now += 10                 # still stalled: no second eviction for the same episode
            g.poke()
            await asyncio.sleep(0.3)
            assert fake.removals() == [("support-7", "voice-bot-7")]
            # the job's shutdown uninstalls the guard
            (callback,) = ctx.shutdown_callbacks
            await callback()
            assert not g.installed

        asyncio.run(main())
    reason, thread = ctx.shutdowns[0]
    assert "lkwedge" in reason and thread is threading.main_thread()
    assert SECRET not in (tmp_path / "audit.jsonl").read_text()
    evicted = [r.getMessage() for r in app_logging.records if "evicted" in r.getMessage()]
    assert evicted and '"voice-bot-7"' in evicted[0]


def test_no_eviction_when_the_late_record_that_proves_the_stall_also_ends_it(app_logging):
    clock, calls = FakeClock(), Calls()
    ctx = JobContextStandIn("AJ_late", "r-late", identity="agent-AJ_late")
    with FakeRoomService(KEY, SECRET) as fake:
        fake.add_room("r-late", participants=["agent-AJ_late"])

        async def main() -> None:
            g = guard.install("2s", job_ctx=ctx, evict=True, shutdown=True, on_stall=calls.make("stall"),
                              on_resolved=calls.make("resolved"), url=fake.url, api_key=KEY,
                              api_secret=SECRET, clock=clock)
            forward(CLOSE, RESUME_1)
            assert await until(lambda: g.status().episodes == 1)
            clock.now += 4                  # no poke: the recovery line arrives before the timer looks
            forward(RECOVERED)
            assert await until(lambda: len(calls.named("resolved")) == 1)
            await asyncio.sleep(0.3)
            g.uninstall()

        asyncio.run(main())
        assert fake.removals() == [] and ctx.shutdowns == []
    assert len(calls.named("stall")) == 1


# ---- logging hygiene and API errors ------------------------------------------------------------------


def test_app_console_keeps_its_levels_and_uninstall_restores_everything(app_logging):
    lk, agents = logging.getLogger("livekit"), logging.getLogger("livekit.agents")

    async def main() -> None:
        g = guard.install("20s", job_id="AJ_console")
        assert lk.level == logging.INFO
        forward(RECOVERED, ("INFO", "livekit_signaling::signal_stream", 63, "connecting to ws://x/rtc/v1"))
        lk.warning("a warning from livekit")
        agents.info("process exiting")                     # agents' own INFO: its level is its own
        logging.getLogger("myapp").info("app info")
        logging.getLogger("livekit.plugins.silero").info("plugin info below livekit's old WARN")
        assert await until(lambda: g.status().records == 3)  # recovered, connecting to, process exiting
        g.uninstall()

    asyncio.run(main())
    shown = [r.getMessage() for r in app_logging.records]
    assert "a warning from livekit" in shown and "process exiting" in shown and "app info" in shown
    assert not any("RtcEngine" in m or "connecting to" in m or "plugin info" in m for m in shown)
    assert lk.level == logging.WARNING
    assert not any(isinstance(f, guard._KeepAppLevel) for f in app_logging.filters)
    assert not any(isinstance(h, guard._GuardHandler) for h in lk.handlers)


def test_install_errors_are_clear():
    with pytest.raises(RuntimeError, match="event loop"):
        guard.install("20s")

    async def main() -> None:
        with pytest.raises(InputError, match="not a duration"):
            guard.install("twenty")
        with pytest.raises(InputError, match="more than 0"):
            guard.install(0)
        with pytest.raises(InputError, match="shutdown=True needs"):
            guard.install("20s", shutdown=True)
        with pytest.raises(InputError, match="LIVEKIT_URL"):
            guard.install("20s", evict=True, url="", api_key="", api_secret="")
        g = guard.install("20s")
        try:
            with pytest.raises(RuntimeError, match="already installed"):
                guard.install("20s")
        finally:
            g.uninstall()
        guard.install("20s").uninstall()          # a fresh install works after uninstall

    asyncio.run(main())


# ---- the prefilter -------------------------------------------------------------------------------------


def test_cover_keys_cover_every_literal():
    literals = PatternSet.load().literals
    keys = guard.cover_keys(literals)
    assert len(keys) < len(literals) / 2
    assert all(any(key in literal for key in keys) for literal in literals)


def _peak_bytes(fn: Callable[[logging.LogRecord], Any], records: list[logging.LogRecord]) -> int:
    """Peak traced memory above the start while fn runs over records: transient allocations count."""
    for record in records:
        fn(record)                          # warm up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        for record in records:
            fn(record)
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_records_that_match_no_pattern_allocate_nothing_and_are_not_queued():
    queued: list[Any] = []
    handler = guard._GuardHandler(PatternSet.load().literals, queued.append)
    sync_state = ("livekit::room", 1502, "livekit::room", "skipping sendSyncState, no subscriber answer")
    misses = [
        logging.LogRecord("livekit", logging.WARNING, __file__, 1, "%s:%s:%s - %s", sync_state, None),
        logging.LogRecord("livekit.agents", logging.INFO, __file__, 1, "llm turn took %d ms", (412,), None),
        logging.LogRecord("livekit.agents", logging.DEBUG, __file__, 1, "vad speech 0.93", None, None),
        logging.LogRecord("livekit.agents", logging.INFO, __file__, 1, "%s", ("user said hello",), None),
    ]
    handle = handler.handle

    def noop(record: logging.LogRecord) -> None:
        return None

    def allocating(record: logging.LogRecord) -> None:   # proves the measurement sees a tiny allocation
        handle(record)
        str(record.levelno)

    assert _peak_bytes(handle, misses) <= _peak_bytes(noop, misses)
    assert _peak_bytes(allocating, misses) > _peak_bytes(noop, misses)
    assert queued == []
    resume = ("livekit::rtc_engine", 988, "livekit::rtc_engine", "resuming connection... attempt: 1")
    hits = [
        logging.LogRecord("livekit", logging.ERROR, __file__, 1, "%s:%s:%s - %s", resume, None),
        logging.LogRecord("livekit.agents", logging.INFO, __file__, 1, "process exiting", None, None),
        logging.LogRecord("livekit.agents", logging.INFO, __file__, 1, "%s", ("process exiting",), None),
    ]
    for record in hits:
        handle(record)
    assert [entry[0] for entry in queued] == hits


def test_plain_rtc_app_room_object_shutdown_disconnects_it(app_logging):
    clock, calls = FakeClock(), Calls()
    disconnects: list[threading.Thread] = []

    async def disconnect() -> None:
        disconnects.append(threading.current_thread())

    async def main() -> None:
        room = rtc.Room()                   # never connected: no name, no local participant yet
        room.disconnect = disconnect        # type: ignore[method-assign]
        g = guard.install("2s", room=room, shutdown=True, on_stall=calls.make("stall"), clock=clock)
        assert (g.room_name, g.identity) == (None, None)
        forward(CLOSE, RESUME_1)
        assert await until(lambda: g.status().episodes == 1)
        clock.now += 3.1
        g.poke()
        assert await until(lambda: bool(disconnects) and bool(calls.items), timeout=3)
        g.uninstall()

    asyncio.run(main())
    assert disconnects == [threading.main_thread()]
    assert calls.named("stall")[0].key.startswith("pid:")     # no job: keyed by the process


def test_failing_callbacks_and_odd_records_do_not_stop_the_guard(app_logging):
    clock, calls = FakeClock(), Calls()

    def broken(episode: Any) -> None:
        raise ValueError("user bug")

    async def main() -> None:
        g = guard.install("2s", on_stall=broken, on_resolved=calls.make("resolved"), job_id="AJ_odd",
                          clock=clock)
        agents = logging.getLogger("livekit.agents")
        bad = logging.LogRecord("livekit.agents", logging.INFO, __file__, 1, "process exiting %d",
                                ("not a number",), None)      # args that do not fit the format
        g._handler.handle(bad)            # straight to the guard: pytest's own handler raises on it
        agents.info({"process exiting": 1})                      # not a string at all
        agents.info("%s", "\x1b[31mprocess exiting\x1b[0m")      # terminal escapes in log text
        forward(CLOSE, RESUME_1)
        assert await until(lambda: g.status().episodes == 1)
        assert g.status().records == 4   # the dict message is not text: never a candidate
        clock.now += 3.1
        g.poke()
        assert await until(lambda: g.status().stalls == 1)
        forward(RECOVERED)
        assert await until(lambda: len(calls.named("resolved")) == 1)
        g.uninstall()

    asyncio.run(main())
    ours = [r for r in app_logging.records if r.name == "lkwedge.guard"]
    raised = [r for r in ours if "on_stall raised" in r.getMessage()]
    assert len(raised) == 1 and raised[0].exc_info is not None
    assert not any("\x1b" in r.getMessage() for r in ours)


def test_eviction_without_a_known_room_says_what_install_needs(app_logging):
    clock = FakeClock()
    with FakeRoomService(KEY, SECRET) as fake:
        fake.add_room("r1", participants=["agent-AJ_noroom"])

        async def main() -> None:
            g = guard.install("2s", job_id="AJ_noroom", evict=True, url=fake.url, api_key=KEY,
                              api_secret=SECRET, clock=clock)
            forward(CLOSE, RESUME_1)
            assert await until(lambda: g.status().episodes == 1)
            clock.now += 3.1
            g.poke()
            assert await until(lambda: g.status().stalls == 1)
            await asyncio.sleep(0.2)
            g.uninstall()

        asyncio.run(main())
        assert fake.calls == []
    said = [r.getMessage() for r in app_logging.records if r.name == "lkwedge.guard"]
    assert any("room name of the agent is unknown" in m and "room=" in m for m in said), said
