"""Eviction: remove a wedged participant through ``RoomService.RemoveParticipant``, with guard rails.

When a resume wedges, the SDK cannot be trusted to leave the room; removing the participant from outside
(the fix users apply by hand) makes LiveKit drop the ghost so the job can be dispatched fresh.

Using it (this is what ``lkwedge watch --evict`` does)::

    from lkwedge.act.evict import Evictor
    from lkwedge.act.targets import TargetOptions, derive_target

    opts = TargetOptions(room=None, identity=None, identity_template="agent-{job_id}")   # CLI overrides
    evictor = Evictor(dry_run=False, revoke_token=False, max_per_minute=5, audit="evict.jsonl",
                      on_result=alert)          # url/api_key/api_secret default to LIVEKIT_* env vars;
                                                # raises lkwedge.errors.InputError if they are missing
    def listener(event, episode):
        if event in ("stalled", "ghost"):
            evictor.submit(episode, derive_target(episode, opts))     # returns at once, never blocks
        elif event == "closed":
            evictor.release_target(derive_target(episode, opts))     # allow a later episode to evict again
    ...
    evictor.close()          # at exit: waits for in-flight evictions, at most retry_for + request_timeout
                             # (pass close(timeout=2) on Ctrl-C); leftovers are cancelled and audited

``alert(result: EvictionResult)`` is called **from the evictor's own thread**, once per submit (also for
"duplicate", "rate_limited" and "no_target"); keep it short and thread-safe (e.g. put the result on a
queue, or print one line). ``result.summary()`` is a one-line, terminal-safe description and
``result.ok`` says whether the participant is gone (or would be, in a dry run).

Results (``EvictionResult.result``):
  evicted       RemoveParticipant returned 200
  already_gone  404 not_found "participant not found" (or, with missing_ok, "room not found" / an inactive
                room_id): nothing to do; the server's words are kept in `reason`
  dry_run       the exact call that would be made; no request was sent
  rate_limited  more than ``max_per_minute`` evictions (dry runs included) in the last 60 s: alert instead
  duplicate     (room, identity) already submitted and not yet released: one eviction per episode
  no_target     the episode has no identity or room (``target.reason_missing``); we never guess
  failed        401/403 (not retried), another 4xx, or 5xx/timeout/refused connection still failing after
                ``retry_for`` seconds of jittered exponential backoff (the shared policy,
                ``lkwedge.retry``; pass ``clock=`` to run it on virtual time); ``error`` says which

Threading: the livekit-api client is async-only and must be created inside a running loop, so the
Evictor owns an asyncio loop in a daemon thread; evictions run there concurrently, and detection never
waits on the network. ``evict_now(target)`` is the synchronous form (used by ``lkwedge evict``).

Secrets: the API secret is only handed to the livekit client. It is never printed, logged, put in an
error message, a result, a repr or an audit record.

Audit (``audit=PATH``): per attempt one JSON line with ``"phase": "pending"`` is appended (flushed and
fsynced) BEFORE the request, and a ``"phase": "done"`` line with the same ``attempt`` id after it, so a
crash mid-call leaves a trace. Decisions that make no request (dry_run, rate_limited, no_target) write a
single "done" line; duplicates write none. If the pending line cannot be written, no request is made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from livekit import api

from lkwedge.act.targets import EpisodeFacts, EvictionTarget
from lkwedge.errors import InputError
from lkwedge.retry import (
    SYSTEM_CLOCK,
    Attempts,
    Clock,
    Failure,
    GaveUp,
    RetryPolicy,
    adeliver,
    retryable_status,
)
from lkwedge.safe import CONTROL, printable

log = logging.getLogger("lkwedge.evict")

# `livekit-server --dev` uses the 6-byte secret "secret"; PyJWT would warn on every signed request.
warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long", module=r"jwt(\..*)?")

# livekit-api 1.2 names it ServerError (TwirpError is an alias); 1.0.x only has TwirpError.
_SERVER_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(api, n) for n in ("ServerError", "TwirpError") if isinstance(getattr(api, n, None), type)}
)

OK_RESULTS = frozenset({"evicted", "already_gone", "dry_run"})
T = TypeVar("T")

def quote(text: str | None) -> str:
    """A double-quoted, escaped rendering of untrusted text (room names and identities come from logs)."""
    if text is None:
        return "None"
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- credentials -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Server URL and API key pair. The secret is excluded from repr and never rendered."""

    url: str | None
    api_key: str | None
    api_secret: str | None = field(default=None, repr=False)
    url_source: str = "--url"   # where the URL came from, for messages: "--url" or "LIVEKIT_URL"

    @classmethod
    def resolve(cls, url: str | None = None, api_key: str | None = None, api_secret: str | None = None,
                env: Mapping[str, str] | None = None) -> Credentials:
        """Explicit values win; otherwise LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET."""
        env = os.environ if env is None else env
        return cls(url or env.get("LIVEKIT_URL") or None,
                   api_key or env.get("LIVEKIT_API_KEY") or None,
                   api_secret or env.get("LIVEKIT_API_SECRET") or None,
                   "--url" if url else "LIVEKIT_URL")

    def check(self, *, need_secret: bool = True) -> None:
        """Raise InputError naming what is missing or malformed (never echoing the secret)."""
        missing = [name for name, value, needed in (
            ("LIVEKIT_URL (or --url)", self.url, True),
            ("LIVEKIT_API_KEY (--api-key)", self.api_key, need_secret),
            ("LIVEKIT_API_SECRET (--api-secret)", self.api_secret, need_secret),
        ) if needed and not value]
        if missing:
            raise InputError(f"LiveKit credentials missing: set {', '.join(missing)}")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
                # show the value as given (minus any password), not a rebuilt one: "127.0.0.1:7880" must
                # not come back as "://127.0.0.1:7880"
                shown = quote(self.url.rsplit("@", 1)[-1] if "://" not in self.url
                              else display_url(self.url))
                example = f"http://{self.url}" if "://" not in self.url else "http://localhost:7880"
                raise InputError(f"{self.url_source} {shown} is not an http(s):// or ws(s):// URL "
                                 f"(e.g. {quote(example)})")

    def endpoint(self, method: str) -> str:
        """The Twirp URL the client POSTs to, as livekit-api builds it (ws→http, path prefix kept)."""
        if not self.url:
            return f"(LIVEKIT_URL not set)/twirp/livekit.RoomService/{method}"
        return f"{display_url(self.url).rstrip('/')}/twirp/livekit.RoomService/{method}"


def display_url(url: str) -> str:
    """`url` with ws(s)→http(s) and any user:password@ removed."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{scheme}://{netloc}{parts.path}"


# ---- results ---------------------------------------------------------------------------------------


@dataclass
class EvictionResult:
    """The outcome of one submit / evict_now. Text fields may hold log-derived text: print via summary()."""

    attempt: str                      # attempt id (also in the audit lines)
    result: str                       # see the module docstring
    room: str | None                  # room name (resolved from room_id when needed)
    identity: str | None
    room_id: str | None = None
    episode: str | None = None        # episode id, if submitted with an episode
    error: str | None = None          # why it failed / was skipped; None on success
    reason: str | None = None         # the server's own words when it answered with an error (404 ...)
    http_status: int | None = None    # last HTTP status seen (None: no response, e.g. refused)
    requests: int = 0                 # HTTP requests made (ListRooms + RemoveParticipant, retries included)
    call: str = ""                    # e.g. RoomService.RemoveParticipant(room="r1", identity="agent-AJ_x")
    url: str = ""                     # the endpoint it goes to
    dry_run: bool = False
    revoke_token_ts: int | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the participant is gone (or, in a dry run, would be asked to go)."""
        return self.result in OK_RESULTS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One terminal-safe line."""
        who = f"{quote(self.identity)} from room {quote(self.room or self.room_id)}"
        text = {
            "evicted": f"evicted {who}",
            "already_gone": f"{who}: already gone"
                            + (f" (server: {self.reason})" if self.reason else ""),
            "dry_run": f"dry run: would call {self.call} at {self.url}",
            "rate_limited": f"not evicting {who}: rate limit held",
            "duplicate": f"not evicting {who} again: already submitted for this episode",
            "no_target": "no eviction target",
            "failed": f"eviction of {who} failed",
        }.get(self.result, f"{self.result}: {who}")
        if self.error and self.result not in ("dry_run",):
            text += f": {self.error}"
        return printable(text)


class _Stop(Exception):
    """Ends an attempt with a final result (raised inside the retry loop)."""

    def __init__(self, result: str, error: str | None = None) -> None:
        super().__init__(error or result)
        self.result, self.error = result, error


@dataclass
class _Attempt:
    res: EvictionResult
    target: EvictionTarget
    admitted: bool                    # False: decided without a request (res.result already final)


# ---- the evictor -----------------------------------------------------------------------------------


class Evictor:
    """Removes participants via RoomService from a background asyncio thread. See the module docstring."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        dry_run: bool = False,
        revoke_token: bool = False,
        max_per_minute: int = 5,
        retry_for: float = 30.0,
        request_timeout: float = 10.0,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        audit: str | Path | None = None,
        on_result: Callable[[EvictionResult], None] | None = None,
        missing_ok: bool = False,
        env: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Credentials default to LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET (`env` overrides
        os.environ). A dry run needs none of them. Raises InputError for missing credentials, a bad
        URL, bad limits or an audit path that cannot be appended to."""
        self._creds = Credentials.resolve(url, api_key, api_secret, env)
        if not dry_run:
            self._creds.check()
        elif self._creds.url:
            self._creds.check(need_secret=False)
        if max_per_minute < 0:
            raise InputError("max evictions per minute must be >= 0")
        if retry_for < 0 or request_timeout <= 0:
            raise InputError("retry time must be >= 0 and request timeout > 0")
        self.dry_run = dry_run
        self.revoke_token = revoke_token
        self.max_per_minute = max_per_minute
        self.retry_for = retry_for
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.on_result = on_result
        self.missing_ok = missing_ok        # "room not found" counts as already gone (else: a failure)
        self.clock = clock                  # back-off waits and the retry deadline (virtual in tests)
        self._audit_path = Path(audit) if audit is not None else None
        if self._audit_path is not None:
            try:
                with self._audit_path.open("a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise InputError(f"cannot append to audit file {self._audit_path}: {exc.strerror}") from None

        self._lock = threading.Lock()
        self._audit_lock = threading.Lock()
        self._active: set[tuple[str, str]] = set()     # dedupe keys of open episodes
        self._window: deque[float] = deque()            # monotonic times of admitted evictions
        self._pending: set[concurrent.futures.Future[EvictionResult]] = set()
        self._closed = False
        self._client: Any = None                        # livekit.api.LiveKitAPI, created in the loop
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lkwedge-evictor", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (f"Evictor(url={self._creds.url!r}, api_key={self._creds.api_key!r}, "
                f"dry_run={self.dry_run}, max_per_minute={self.max_per_minute})")

    # ---- public API ------------------------------------------------------------------------------------
    def submit(self, episode: EpisodeFacts | None, target: EvictionTarget) -> None:
        """Queue an eviction for `episode` (an Episode, `Facts`, or None) and return immediately.
        The result goes to `on_result`, called from the evictor thread."""
        self._start(episode, target)

    def evict_now(self, target: EvictionTarget, episode: EpisodeFacts | None = None,
                  timeout: float | None = None) -> EvictionResult:
        """Evict synchronously and return the result (on_result is called too). `timeout` defaults to
        the retry budget plus one request timeout and a margin. Not callable from on_result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("evict_now() cannot be called from the evictor thread (e.g. in on_result)")
        fut = self._start(episode, target)
        return fut.result(timeout if timeout is not None else self.retry_for + self.request_timeout + 5)

    def release(self, room: str | None, identity: str | None) -> None:
        """Forget the dedupe entry for (room, identity); `room` is the target's room or, when it had
        none, its room_id — i.e. what `EvictionTarget.key` holds. Call when the episode closes."""
        with self._lock:
            self._active.discard((room or "", identity or ""))

    def release_target(self, target: EvictionTarget) -> None:
        """release() for the target that was submitted."""
        with self._lock:
            self._active.discard(target.key)

    def close(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` s (default: the retry budget + one request timeout) for in-flight
        evictions, cancel what is left (audited as failed), then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending)
        wait = self.retry_for + self.request_timeout if timeout is None else timeout
        _done, not_done = concurrent.futures.wait(pending, timeout=wait)
        for fut in not_done:
            fut.cancel()
        concurrent.futures.wait(not_done, timeout=5)
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(10)
        except Exception as exc:  # a failing close must not mask the caller's exit path
            log.debug("closing the LiveKit client failed: %s", type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Evictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- admission (caller's thread; cheap and non-blocking) ------------------------------------------
    def _start(self, episode: EpisodeFacts | None,
               target: EvictionTarget) -> concurrent.futures.Future[EvictionResult]:
        episode_id = None if episode is None else episode.id
        room_for_call = target.room if target.room else None
        res = EvictionResult(
            attempt=uuid.uuid4().hex[:16], result="pending", room=room_for_call, identity=target.identity,
            room_id=target.room_id, episode=episode_id, dry_run=self.dry_run,
            call=describe_call(target, None), url=self._creds.endpoint("RemoveParticipant"),
        )
        admitted = False
        with self._lock:
            if self._closed:
                raise RuntimeError("Evictor is closed")
            if not target.ok:
                res.result = "no_target"
                res.error = target.reason_missing or "no participant identity or room for this episode"
            elif target.key in self._active:
                res.result = "duplicate"
            else:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 60.0:
                    self._window.popleft()
                if len(self._window) >= self.max_per_minute:
                    res.result = "rate_limited"
                    res.error = (f"{self.max_per_minute} evictions in the last minute already "
                                 "(--max-evictions); alerting instead")
                else:
                    self._window.append(now)
                    self._active.add(target.key)
                    admitted = True
            fut = asyncio.run_coroutine_threadsafe(self._process(_Attempt(res, target, admitted)), self._loop)
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: concurrent.futures.Future[EvictionResult]) -> None:
        with self._lock:
            self._pending.discard(fut)

    # ---- the attempt (evictor thread) ------------------------------------------------------------------
    async def _process(self, att: _Attempt) -> EvictionResult:
        res, started = att.res, time.monotonic()
        try:
            if not att.admitted:
                if res.result != "duplicate":
                    self._audit_safe(res, "done")
            elif self.dry_run:
                if self.revoke_token:
                    res.revoke_token_ts = int(time.time())
                res.call = describe_call(att.target, res.revoke_token_ts)
                res.result = "dry_run"
                self._audit_safe(res, "done")
            else:
                await self._evict(att, started)
        except asyncio.CancelledError:
            res.result, res.error = "failed", "cancelled at shutdown"
            res.elapsed_s = round(time.monotonic() - started, 3)
            self._audit_safe(res, "done")
            self._deliver(res)
            raise
        res.elapsed_s = round(time.monotonic() - started, 3)
        self._deliver(res)
        return res

    async def _evict(self, att: _Attempt, started: float) -> None:
        res, target = att.res, att.target
        if self.revoke_token:
            res.revoke_token_ts = int(time.time())
        res.call = describe_call(target, res.revoke_token_ts)
        try:
            self._audit(res, "pending")
        except OSError as exc:
            res.result, res.error = "failed", f"audit file not writable, no request made: {exc.strerror}"
            return
        deadline = self.clock.monotonic() + self.retry_for
        try:
            client = await self._get_client()
            room = target.room
            if not room:
                reply = await self._call(res, deadline, "ListRooms",
                                         lambda: client.room.list_rooms(api.ListRoomsRequest()))
                room = next((r.name for r in reply.rooms if r.sid == target.room_id), None)
                if room is None:
                    why = f"room_id {target.room_id} is not an active room"
                    if self.missing_ok:
                        raise _Stop("already_gone", why)
                    raise _Stop("failed", f"{why} (pass --missing-ok to accept a room that is gone)")
                res.room = room
                res.call = describe_call(EvictionTarget(room, target.identity, target.room_id),
                                         res.revoke_token_ts)
            req = api.RoomParticipantIdentity(room=room, identity=target.identity or "")
            if res.revoke_token_ts is not None:
                req.revoke_token_ts = res.revoke_token_ts
            await self._call(res, deadline, "RemoveParticipant", lambda: client.room.remove_participant(req))
            res.result = "evicted"
        except _Stop as stop:
            res.result, res.error = stop.result, stop.error
        except Exception as exc:  # a bug or an unexpected client error must not kill the evictor thread
            res.result, res.error = "failed", self._scrub(f"{type(exc).__name__}: {exc}")
        # (on cancellation we never get here: _process writes the completion line)
        self._audit_safe(res, "done")

    async def _call(self, res: EvictionResult, deadline: float, method: str,
                    make: Callable[[], Awaitable[T]]) -> T:
        """One RoomService call under the shared retry policy (lkwedge.retry); raises _Stop for final
        outcomes.  Which errors are retried: 5xx, 429, timeouts and connection errors; 404 not_found on
        RemoveParticipant means the participant is already gone; any other 4xx is final."""
        policy = self._policy(deadline)

        async def once(att: Attempts) -> T:
            res.requests += 1
            try:
                timeout = max(0.05, min(self.request_timeout, att.remaining()))
                reply = await asyncio.wait_for(make(), timeout=timeout)
                res.http_status = 200
                return reply
            except _SERVER_ERRORS as exc:
                status = int(getattr(exc, "status", 0) or 0)
                code = str(getattr(exc, "code", "") or "unknown")
                msg = self._scrub(str(getattr(exc, "message", "") or ""))
                res.http_status = status or None
                detail = f"HTTP {status} {code}" + (f": {msg}" if msg else "")
                if status == 404 and code == "not_found" and method == "RemoveParticipant":
                    res.reason = msg or None
                    # the server's words decide: a missing participant is gone, a missing room is
                    # most likely a typo (or a room that ended: --missing-ok)
                    if "room" in msg.lower() and not self.missing_ok:
                        raise _Stop("failed", f"{method} rejected, {detail} (check the room name; "
                                    "pass --missing-ok to accept a room that is gone)") from None
                    raise _Stop("already_gone", None) from None
                if status in (401, 403):
                    raise _Stop("failed", f"{method} rejected, {detail} (not retried; check "
                                "LIVEKIT_API_KEY/LIVEKIT_API_SECRET and the key's roomAdmin/roomList grants)"
                                ) from None
                if not retryable_status(status):
                    raise _Stop("failed", f"{method} rejected, {detail} (not retried)") from None
                raise Failure(detail, retry=True, status=status) from None
            except aiohttp.ClientResponseError as exc:  # 1.0.x: error bodies that are not JSON
                res.http_status = exc.status
                if not retryable_status(exc.status):
                    raise _Stop("failed", f"{method} rejected, HTTP {exc.status} (not retried)") from None
                raise Failure(f"HTTP {exc.status}", retry=True, status=exc.status) from None
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = "timed out" if isinstance(exc, TimeoutError) else self._scrub(
                    f"{type(exc).__name__}: {exc}")
                raise Failure(last, retry=True) from None

        try:
            return await adeliver(once, policy)
        except GaveUp as gave_up:
            n = gave_up.tries
            raise _Stop("failed", f"{method} still failing after {n} {'try' if n == 1 else 'tries'} over "
                        f"{gave_up.elapsed:.1f}s, giving up: {gave_up.last.message}") from None

    def _policy(self, deadline: float) -> RetryPolicy:
        """The shared policy, with this attempt's remaining retry budget as its deadline."""
        return RetryPolicy(first_delay=self.backoff, max_delay=self.backoff_max,
                           deadline=max(0.0, deadline - self.clock.monotonic()), clock=self.clock)

    async def _get_client(self) -> Any:
        if self._client is None:
            c = self._creds
            self._client = api.LiveKitAPI(c.url, c.api_key, c.api_secret,
                                          timeout=aiohttp.ClientTimeout(total=self.request_timeout))
        return self._client

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- output ----------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        secret = self._creds.api_secret
        return text.replace(secret, "***") if secret else text

    def _deliver(self, res: EvictionResult) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(res)
        except Exception:
            log.exception("on_result callback raised")

    def _audit(self, res: EvictionResult, phase: str) -> None:
        if self._audit_path is None:
            return
        record = {"time": _now_iso(), "attempt": res.attempt, "phase": phase,
                  "result": "pending" if phase == "pending" else res.result,
                  "episode": res.episode, "room": res.room, "identity": res.identity, "room_id": res.room_id,
                  "error": res.error, "http_status": res.http_status, "requests": res.requests,
                  "url": res.url, "dry_run": res.dry_run, "revoke_token_ts": res.revoke_token_ts}
        line = self._scrub(json.dumps(record)) + "\n"
        with self._audit_lock, self._audit_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _audit_safe(self, res: EvictionResult, phase: str) -> None:
        try:
            self._audit(res, phase)
        except OSError as exc:
            log.error("cannot write audit file %s: %s", self._audit_path, exc.strerror)


def describe_call(target: EvictionTarget, revoke_token_ts: int | None) -> str:
    """The RoomService call for `target`: RoomService.RemoveParticipant(room="r1", identity="agent-AJ_x")."""
    extra = f", revoke_token_ts={revoke_token_ts}" if revoke_token_ts is not None else ""
    if target.room:
        return (f"RoomService.RemoveParticipant(room={quote(target.room)}, "
                f"identity={quote(target.identity)}{extra})")
    if target.room_id:
        return (f"RoomService.ListRooms() to resolve room_id={quote(target.room_id)}, then "
                f"RoomService.RemoveParticipant(room=<its name>, identity={quote(target.identity)}{extra})")
    return "(no target)"

