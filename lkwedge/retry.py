"""The one delivery/retry policy for everything lkwedge sends out: webhooks, evictions, later sinks.

A `RetryPolicy` says how long to wait between tries (exponential back-off with jitter), which
failures are worth another try (`retryable_status`, and a `Failure(retry=...)` raised by the sender)
and when to give up (a deadline counted from the first try, and optionally a number of tries).
Time comes from a `Clock`, so tests run the whole schedule on virtual time (`VirtualClock`).

    policy = RetryPolicy(first_delay=0.5, max_delay=8, deadline=30)
    result = deliver(send_once, policy, stop_event)     # threads
    result = await adeliver(send_once_async, policy)    # asyncio (the evictor)

`send_once(attempts)` returns a value on success and raises `Failure(message, retry=bool)` otherwise; any
other exception is a bug in the sender and propagates.  When the policy gives up, `GaveUp` is raised
carrying the last failure's message, the number of tries and the time spent.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")

#: HTTP statuses worth another try: the server is overloaded, restarting or timed out.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def retryable_status(status: int) -> bool:
    """5xx, 429 (rate limited) and 408/425 are retried; any other 4xx is final (fix the request)."""
    return status in RETRY_STATUSES or status >= 500


class Failure(Exception):
    """One failed try.  `retry`: whether trying again could help (a refused connection, a 503)."""

    def __init__(self, message: str, *, retry: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.status = status


class GaveUp(Exception):
    """No more tries: the last failure was final, or the deadline/try budget ran out, or we stopped."""

    def __init__(self, last: Failure, tries: int, elapsed: float, why: str) -> None:
        super().__init__(f"{last.message} ({why})")
        self.last = last
        self.tries = tries
        self.elapsed = elapsed
        self.why = why            # "not retried" | "deadline" | "tries" | "stopped"


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait; True if `stop` was set (the wait was cut short)."""
        ...
    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None:
            return stop.wait(seconds)
        time.sleep(seconds)
        return False

    async def asleep(self, seconds: float) -> None:
        import asyncio  # only the evictor is asynchronous: watch and scan do not pay for asyncio

        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock that only moves when something sleeps on it (or `advance` is called): for tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        self.advance(seconds)
        return stop is not None and stop.is_set()

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        import asyncio  # see SystemClock.asleep

        await asyncio.sleep(0)


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off `first_delay`, x`multiplier` per try, capped at `max_delay`; each wait is drawn
    uniformly from [(1 - jitter) * d, d] so many senders retrying at once spread out.  No try starts
    after `deadline` s from the first one (a try in flight is bounded by its own timeout), and at
    most `max_tries` tries are made (None: only the deadline counts)."""

    first_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.5
    deadline: float = 30.0
    max_tries: int | None = None
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.first_delay < 0 or self.max_delay < 0 or self.deadline < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("retry delays and deadline must be >= 0 and jitter within [0, 1]")

    def start(self) -> Attempts:
        return Attempts(self)


class Attempts:
    """The state of one delivery under a policy: call `failed(f)` after each failed try; it returns
    how long to wait before the next one, or raises GaveUp."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = policy.clock.monotonic()
        self.tries = 0
        self._base = policy.first_delay

    def remaining(self) -> float:
        """Seconds left before the deadline (a try's timeout can be capped at this)."""
        return self.started + self.policy.deadline - self.policy.clock.monotonic()

    def tried(self) -> None:
        self.tries += 1

    def failed(self, failure: Failure) -> float:
        p = self.policy
        elapsed = p.clock.monotonic() - self.started
        if not failure.retry:
            raise GaveUp(failure, self.tries, elapsed, "not retried")
        if p.max_tries is not None and self.tries >= p.max_tries:
            raise GaveUp(failure, self.tries, elapsed, "tries")
        base = self._base
        self._base = min(base * p.multiplier, p.max_delay)
        wait = base * (1.0 - p.jitter * p.rng.random())
        if elapsed + wait >= p.deadline:
            raise GaveUp(failure, self.tries, elapsed, "deadline")
        return wait


def deliver(send: Callable[[Attempts], T], policy: RetryPolicy, stop: threading.Event | None = None) -> T:
    """Call `send` until it succeeds or the policy gives up (GaveUp).  `send` gets the Attempts (for
    `remaining()`).  Setting `stop` cuts a back-off wait short and gives up with why="stopped"."""
    att = policy.start()
    while True:
        att.tried()
        try:
            return send(att)
        except Failure as f:
            wait = att.failed(f)
            if policy.clock.sleep(wait, stop):
                raise GaveUp(f, att.tries, policy.clock.monotonic() - att.started, "stopped") from None


async def adeliver(send: Callable[[Attempts], Awaitable[T]], policy: RetryPolicy) -> T:
    """`deliver` for asyncio; `send` gets the Attempts (for `remaining()`).  Cancellation stops it."""
    att = policy.start()
    while True:
        att.tried()
        try:
            return await send(att)
        except Failure as f:
            wait = att.failed(f)
            await policy.clock.asleep(wait)
