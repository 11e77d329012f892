"""A bounded queue with its own worker threads, one per alert sink (issue 9, "alert path first").

`put()` never blocks: a full queue drops the event and says which one.  Events with the same key (the
episode id) are handled one at a time and in order (an episode's "resolved" never overtakes its
"alert"); events for different keys run concurrently on up to `workers` threads, so one slow delivery
never holds up another episode's.  `close(timeout)` lets the workers finish what is queued until the
deadline, then sets `stopping` (handlers cut their back-off short) and reports every event that was
never delivered, by name.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from lkwedge.live.events import LiveEvent
from lkwedge.safe import printable


@dataclass(frozen=True, slots=True)
class Job:
    event: LiveEvent
    lane: str | None = None     # jobs of one lane run in order; default: one lane per episode

    def __post_init__(self) -> None:
        # fail in the caller (watch), not later on a worker thread where only a log line would say so
        if not isinstance(self.event, LiveEvent):
            raise TypeError(f"a sink takes a LiveEvent, not {type(self.event).__name__}")

    @property
    def key(self) -> str:
        return self.lane if self.lane is not None else self.event.id

    def describe(self) -> str:
        """e.g. `the alert for agent.log:12`: escaped, for error messages."""
        return f"the {self.event.kind} for {printable(self.event.id or '?', 200)}"


class WorkQueue:
    """`handle(job)` runs on a worker thread; it reports its own failures.  An exception escaping it is
    reported through `on_error` and does not kill the worker."""

    def __init__(self, name: str, handle: Callable[[Job], None], on_error: Callable[[str], None], *,
                 workers: int = 1, max_queue: int = 1024) -> None:
        self.name = name
        self.handle = handle
        self.on_error = on_error
        self.max_queue = max_queue
        self.stopping = threading.Event()       # close() gave up waiting: handlers should wrap up
        self._cond = threading.Condition()
        self._pending: dict[str, deque[Job]] = {}
        self._ready: deque[str] = deque()       # keys with a job waiting and none in flight
        self._busy: dict[str, Job] = {}         # key -> the job in flight
        self._count = 0                         # queued + in flight
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"lkwedge-{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def put(self, job: Job) -> bool:
        with self._cond:
            if self._closed:
                return False
            if self._count >= self.max_queue:
                full = True
            else:
                full = False
                key = job.key
                q = self._pending.setdefault(key, deque())
                q.append(job)
                if key not in self._busy and len(q) == 1:
                    self._ready.append(key)
                self._count += 1
                self._cond.notify()
        if full:
            self.on_error(f"{self.name}: {self.max_queue} events queued already; dropped {job.describe()}")
        return not full

    def _get(self) -> Job | None:
        with self._cond:
            while not self._ready:
                if (self._closed and self._count == 0) or self.stopping.is_set():
                    return None
                self._cond.wait()
            key = self._ready.popleft()
            q = self._pending[key]
            job = q.popleft()
            if not q:
                del self._pending[key]
            self._busy[key] = job
            return job

    def _done(self, job: Job) -> None:
        with self._cond:
            key = job.key
            del self._busy[key]
            self._count -= 1
            if key in self._pending:
                self._ready.append(key)
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            job = self._get()
            if job is None:
                return
            try:
                self.handle(job)
            except Exception as e:          # a handler bug must not kill the worker
                self.on_error(f"{self.name}: {job.describe()} failed: {printable(e, 300)}")
            finally:
                self._done(job)

    def idle(self) -> bool:
        with self._cond:
            return self._count == 0

    def close(self, timeout: float) -> None:
        """Deliver what is queued for at most `timeout` s; then stop and name what was not delivered."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._count and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            if not self._count:
                return
            self.stopping.set()
            left = [job for q in self._pending.values() for job in q]
            self._pending.clear()
            self._ready.clear()
            self._count -= len(left)
            in_flight = list(self._busy.values())
            self._cond.notify_all()
        for job in left:
            self.on_error(f"{self.name}: shutting down; {job.describe()} was not delivered")
        # In-flight handlers see `stopping` and report their own outcome; give them a moment.
        end = time.monotonic() + 2.0
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        with self._cond:
            stuck = list(self._busy.values())
        for job in stuck:
            if job in in_flight:
                self.on_error(f"{self.name}: shutting down; {job.describe()} was still being "
                              "delivered (not confirmed)")
