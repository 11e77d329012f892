"""Reconnect episodes: the per-key state machine and its verdicts, all on log time.

One `EpisodeBook` per input stream keeps at most one open episode per key (job, pid, service or the
file itself). Pattern matches move an episode along; the stream's clock (the newest log time seen on
it, from any line, or an estimate from the wall clock in `watch`) proves silence. An episode is
``stalled`` as soon as more than ``window`` seconds of log time pass without progress of its own,
whatever happens afterwards; the eventual outcome is still recorded.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec

from lkwedge.detect import ghost
from lkwedge.detect.patterns import Match
from lkwedge.verdicts import Verdict

if TYPE_CHECKING:
    from lkwedge.detect.spool import EpisodeSpool, Spilled

VERDICTS = ("recovered", "disconnected", "stalled", "unresolved", "ghost")
MAX_EVIDENCE_TEXT = 600


class Evidence(msgspec.Struct):
    line: int
    time: datetime | None
    role: str
    text: str
    pattern: str | None = None
    fields: dict[str, object] | None = None  # structured facts of the line (lkwedge.detect.debug_values)

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"line": self.line, "time": _iso(self.time), "role": self.role,
                                    "text": self.text, "pattern": self.pattern}
        if self.fields:
            found["fields"] = self.fields
        return found


class Episode(msgspec.Struct):
    id: str
    file: str
    line: int
    key: str
    job: str | None = None
    pid: int | None = None
    room: str | None = None
    room_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    silence_s: float | None = None
    attempts: int = 0
    outcome: str | None = None
    verdict: Verdict | Literal["open"] = "open"  # "open" until the episode ends
    evidence: list[Evidence] = []
    log_left_s: float | None = None
    note: str = ""
    # state while open
    last_progress: datetime | None = None
    stalled: bool = False
    first_resume_attempt: int | None = None
    closed_by: str | None = None
    remarks: list[str] = []  # facts for the note (ambiguous key, clock jump...)
    proved_silence_s: float | None = None  # silence proved live (wall clock), kept whatever comes later
    proof: str | None = None  # how a live stall was proved
    # ghost rooms, SDK fingerprint and advice (lkwedge.detect.ghost, fingerprint, advice)
    ghost: bool = False
    confidence: str | None = None  # "high" | "medium" for a ghost
    ghost_lines: tuple[int, ...] = ()  # the evidence lines that make it a ghost
    sdk: dict[str, object] | None = None
    advice: str = ""
    restarted: bool = False
    gave_up: bool = False  # logged "failed to reconnect to the livekit room"
    ghost_claim: str = ""  # what claimed success before the silence that made it a ghost
    ghost_claim_line: int | None = None

    def current_silence(self, now: datetime | None) -> float | None:
        """Longest silence so far, counting the gap still running at ``now``."""
        running = _gap(self.last_progress, now)
        if running is None:
            return self.silence_s
        return max(self.silence_s or 0.0, running)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "verdict": self.verdict, "file": self.file, "line": self.line, "key": self.key,
            "job": self.job, "pid": self.pid, "room": self.room, "room_id": self.room_id,
            "start": _iso(self.start), "end": _iso(self.end),
            "silence_s": None if self.silence_s is None else round(self.silence_s, 3),
            "attempts": self.attempts, "outcome": self.outcome,
            "log_left_s": None if self.log_left_s is None else round(self.log_left_s, 3),
            "note": self.note, "evidence": [e.to_dict() for e in self.evidence],
            "confidence": self.confidence, "ghost_evidence": list(self.ghost_lines), "sdk": self.sdk,
            "advice": self.advice,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _gap(earlier: datetime | None, later: datetime | None) -> float | None:
    if earlier is None or later is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


class Hit(msgspec.Struct):
    """A pattern match on one record, with where it came from."""

    match: Match
    key: str
    line: int
    time: datetime | None
    text: str
    job: str | None = None
    pid: int | None = None
    room: str | None = None
    room_id: str | None = None
    message: str = ""  # the parsed message (text is the raw line)


Listener = Callable[[str, Episode], None]


class EpisodeBook:
    """keep_closed: None keeps every closed episode (scan, watch --once); N keeps only the newest N so a
    watcher running for days holds counts, not objects (`verdicts` counts every closed episode)."""

    def __init__(self, file: str, window: float, listener: Listener | None = None,
                 keep_closed: int | None = None, spool: EpisodeSpool | None = None) -> None:
        self.file = file
        self.window = window
        self._window_seconds, self._window_delta = window, timedelta(seconds=window)
        self.listener = listener
        self.open: dict[str, Episode] = {}
        self.closed: list[Episode | Spilled] | deque[Episode] = (
            [] if keep_closed is None else deque(maxlen=keep_closed))
        self.spool = spool if keep_closed is None else None  # a scan's closed episodes in bounded memory
        self.verdicts: Counter[str] = Counter()
        # (deadline, sequence, key) for open episodes not stalled yet, so a clock advance costs
        # O(log n) for the episodes that cross their deadline, not O(open episodes). Entries go stale
        # when an episode progresses or closes; they are checked when they come up. They hold the key,
        # not the episode, so a closed episode is freed at once (a watcher runs for days).
        self._deadlines: list[tuple[datetime, int, str]] = []
        self._sequence = itertools.count()
        self._stalled_open: dict[int, Episode] = {}  # open and stalled: live proofs extend their silence
        self.ghosts = ghost.GhostTracker(self)

    # -- events ----------------------------------------------------------------------------------

    def on_hit(self, hit: Hit) -> None:
        self.ghosts.observe(hit)
        if self.ghosts.on_hit(hit):
            return
        role = hit.match.pattern.role
        episode = self.open.get(hit.key)
        if role == "trigger" and episode is not None and episode.attempts == 0 and episode.outcome is None:
            # A close before any attempt or outcome joins the episode: a server migration logs two
            # closes ("server request to leave" Migration, then "stream closed") before one attempt.
            self._progress(episode, hit)
            return
        if role == "trigger" or (role == "attempt" and (episode is None or _starts_new(episode, hit))):
            if episode is not None:
                self._close(episode, hit, superseded=True)
            self._open(hit)
            return
        if episode is None or role == "meta":
            return
        if role == "activity" and _before(hit, episode):
            # media activity stamped before the reconnect's last step says nothing about after it
            episode.remarks.append(f"job activity at line {hit.line} is stamped before the episode's last "
                                   "progress (out of order): not taken as recovery")
            return
        self._progress(episode, hit)
        if role in ("success", "activity", "teardown"):
            self._close(episode, hit)

    def on_clock(self, now: datetime, line: int | None = None, text: str | None = None,
                 proof: str | None = None) -> None:
        """Log time has reached ``now`` on this stream: open episodes silent too long are stalled.
        ``line``/``text``: the examined line that says so. ``proof``: a live reader's estimate (no line);
        the silence it proves is kept on the episode."""
        self.ghosts.on_clock(now, line, text)
        heap = self._deadlines
        while heap and heap[0][0] < now:
            deadline, _, key = heapq.heappop(heap)
            episode = self.open.get(key)
            if episode is None or episode.stalled or episode.last_progress is None \
                    or deadline != episode.last_progress + self._window:
                continue  # stale: the episode progressed, closed or stalled since
            if line is not None and text is not None:
                episode.evidence.append(Evidence(line, now, "clock", text[:MAX_EVIDENCE_TEXT]))
            self._mark_stalled(episode)
        if proof is not None:
            for episode in self._stalled_open.values():
                gap = _gap(episode.last_progress, now)
                if gap is not None and gap > self.window and (episode.proved_silence_s is None
                                                              or gap > episode.proved_silence_s):
                    episode.proved_silence_s = gap
                    episode.proof = episode.proof or proof

    @property
    def _window(self) -> timedelta:
        if self._window_seconds != self.window:  # a timedelta per call cost 2 us on every hit
            self._window_delta, self._window_seconds = timedelta(seconds=self.window), self.window
        return self._window_delta

    def _watch_deadline(self, episode: Episode) -> None:
        if episode.last_progress is not None and not episode.stalled:
            entry = (episode.last_progress + self._window, next(self._sequence), episode.key)
            heapq.heappush(self._deadlines, entry)

    def note_open(self, remark: str) -> None:
        """Attach a fact to every open episode (e.g. a clock jump that was ignored while it was open)."""
        for episode in self.open.values():
            if remark not in episode.remarks:
                episode.remarks.append(remark)

    def finish(self, now: datetime | None) -> None:
        """End of input: judge what is still open on log time."""
        self.ghosts.finish(now)
        for episode in list(self.open.values()):
            gap = _gap(episode.last_progress, now)
            if gap is not None:
                episode.silence_s = max(episode.silence_s or 0.0, gap)
                if gap > self.window:
                    self._mark_stalled(episode)
                else:
                    episode.log_left_s = gap
            episode.end = episode.end or episode.last_progress
            self._finalize(episode, Verdict.STALLED if episode.stalled else Verdict.UNRESOLVED)

    # -- transitions -----------------------------------------------------------------------------

    def _open(self, hit: Hit) -> None:
        episode = Episode(id=f"{self.file}:{hit.line}", file=self.file, line=hit.line, key=hit.key,
                          job=hit.job, pid=hit.pid, room=hit.room, room_id=hit.room_id,
                          start=hit.time, last_progress=hit.time)
        self.open[hit.key] = episode
        self._watch_deadline(episode)
        self._record(episode, hit)
        self._emit("opened", episode)

    def _progress(self, episode: Episode, hit: Hit) -> None:
        if hit.time is not None:
            if episode.last_progress is not None and hit.time < episode.last_progress:
                # out of order: it cannot move the episode's progress back, nor shorten its silence
                ahead = (episode.last_progress - hit.time).total_seconds()
                episode.remarks.append(f"line {hit.line} is stamped {ahead:.3f} s before the episode's "
                                       "last progress (out of order)")
            else:
                gap = _gap(episode.last_progress, hit.time)
                if gap is not None:
                    episode.silence_s = max(episode.silence_s or 0.0, gap)
                    if gap > self.window:
                        self._mark_stalled(episode)
                episode.last_progress = hit.time
                self._watch_deadline(episode)
            if episode.start is None:
                episode.start = hit.time
        episode.room = episode.room or hit.room
        episode.room_id = episode.room_id or hit.room_id
        self._record(episode, hit)

    def _record(self, episode: Episode, hit: Hit) -> None:
        pattern = hit.match.pattern
        if pattern.role == "attempt":
            episode.restarted = episode.restarted or pattern.attempt_kind == "restart"
            episode.attempts += 1
            if pattern.attempt_kind == "resume" and episode.first_resume_attempt is None:
                episode.first_resume_attempt = int(hit.match.groups["n"])
        if pattern.outcome:
            episode.outcome = pattern.outcome
        elif pattern.role == "activity":
            episode.outcome = "activity"
        episode.evidence.append(Evidence(hit.line, hit.time, pattern.role, hit.text[:MAX_EVIDENCE_TEXT],
                                         pattern.id, ghost.facts(hit)))

    def _mark_stalled(self, episode: Episode) -> None:
        if not episode.stalled:
            episode.stalled = True
            if self.open.get(episode.key) is episode:
                self._stalled_open[id(episode)] = episode
            self._emit("stalled", episode)

    def _close(self, episode: Episode, hit: Hit, superseded: bool = False) -> None:
        if superseded:
            # A new session close means the engine was connected again at some point: the old
            # episode ended without a line saying when, so its silence runs up to the new trigger.
            gap = _gap(episode.last_progress, hit.time)
            if gap is not None:
                episode.silence_s = max(episode.silence_s or 0.0, gap)
                if gap > self.window:
                    self._mark_stalled(episode)
            episode.end = hit.time or episode.last_progress
            episode.outcome = episode.outcome or "superseded"
            episode.evidence.append(Evidence(hit.line, hit.time, "superseded", hit.text[:MAX_EVIDENCE_TEXT],
                                             hit.match.pattern.id))
            episode.closed_by = "superseded"
            verdict = Verdict.STALLED if episode.stalled else Verdict.RECOVERED
        else:
            episode.end = hit.time or episode.last_progress
            episode.closed_by = hit.match.pattern.role
            if episode.stalled:
                verdict = Verdict.STALLED
            elif hit.match.pattern.role == "teardown":
                verdict = Verdict.DISCONNECTED
            else:
                verdict = Verdict.RECOVERED
        self._finalize(episode, verdict)

    def _finalize(self, episode: Episode, verdict: Verdict) -> None:
        if episode.proved_silence_s is not None:
            episode.silence_s = max(episode.silence_s or 0.0, episode.proved_silence_s)
        episode.verdict = Verdict.GHOST if episode.ghost else verdict
        episode.note = explain(episode, self.window)
        self.ghosts.annotate(episode)
        self.open.pop(episode.key, None)
        self._stalled_open.pop(id(episode), None)
        if self.spool is not None:
            self.spool.append(self.closed, episode, self._settled)  # type: ignore[arg-type]
        else:
            self.closed.append(episode)
        self.verdicts[episode.verdict] += 1
        self._emit("closed", episode)

    def _settled(self, episode: Episode) -> bool:
        """Nothing can change this closed episode any more (no ghost watch holds it)."""
        return all(watch.episode is not episode for watch in self.ghosts.watches.values())

    def _emit(self, event: str, episode: Episode) -> None:
        if self.listener is not None:
            self.listener(event, episode)


def _before(hit: Hit, episode: Episode) -> bool:
    return hit.time is not None and episode.last_progress is not None and hit.time < episode.last_progress


def _starts_new(episode: Episode, hit: Hit) -> bool:
    """A first-numbered resume attempt while one is open begins a new episode (hidden close line)."""
    if hit.match.pattern.attempt_kind != "resume" or episode.first_resume_attempt is None:
        return False
    return int(hit.match.groups["n"]) <= episode.first_resume_attempt


def explain(episode: Episode, window: float) -> str:
    """One sentence a person can act on, then the remarks."""
    text = _explain(episode, window)
    if episode.proof and episode.proof != "log time":
        text += f"; the stall was proved live on the {episode.proof}"
    for remark in episode.remarks:
        text += f"; {remark}"
    return text


def _explain(episode: Episode, window: float) -> str:
    silence = "unknown (no timestamps)" if episode.silence_s is None else f"{episode.silence_s:.1f} s"
    last = episode.evidence[-1] if episode.evidence else None
    if episode.verdict == "stalled":
        after = f"; then {episode.outcome} at line {last.line}" if last and episode.closed_by else ""
        if not episode.closed_by:
            after = f"; still open at end of input (last state: {episode.outcome or 'none'})"
        return f"no progress for {silence} (window {window:g} s){after}"
    if episode.verdict == "unresolved":
        if episode.log_left_s is None:
            return "the log ends before any outcome; durations unknown (no timestamps)"
        return (f"the log ends {episode.log_left_s:.1f} s after the last progress, less than the "
                f"{window:g} s window: no verdict possible")
    where = f" at line {last.line}" if last else ""
    if episode.closed_by == "superseded":
        return f"a new reconnect began{where}; longest silence {silence}"
    if episode.closed_by == "activity":
        return (f"job activity{where} after the resume (the SDK's INFO success line is hidden at "
                f"livekit-agents' default level); longest silence {silence}")
    return f"{episode.outcome or episode.verdict}{where}; longest silence {silence}"
