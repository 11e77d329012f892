"""Ghost rooms: the SDK says it is connected (or never speaks again) but the room is dead.

Two signals (livekit-logs.md §2.2(d), §5):

* **give-up ghost**: ``failed to reconnect to the livekit room`` and then no teardown within the window,
  on an SDK that never emits Disconnected after giving up (livekit-ffi < 0.12.59): the room stays
  Reconnecting forever. On ffi >= 0.12.59 the SDK closes the room right after that line, so the
  episode ends there as ``disconnected``. With the version unknown the verdict stays what it was and
  the note says why.
* **silent-after-success ghost**: a reconnect that claims success (``RtcEngine successfully recovered``,
  or a restart's ``received JoinResponse``), after which the job shows no media activity for
  ``ghost_window`` seconds of log time while the log goes on. Only in inputs that log media activity
  at all (agents logs): a bare Rust app never does, so its silence after a success proves nothing.

Supporting lines (``received track from an unknown participant``, ``failed to republish track …``; role
``evidence``) are attached to the key's episode and raise the confidence. A ghost is ``high`` confidence
when the version proves the give-up bug, or when a full restart or a supporting line backs it; else
``medium``. This module only sees pattern hits and the clock, never plain lines.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from lkwedge.detect import advice
from lkwedge.detect import episodes as _episodes  # a cycle: its names are looked up when called
from lkwedge.detect.debug_values import ends_connection, facts_for
from lkwedge.detect.fingerprint import Fingerprinter
from lkwedge.verdicts import Verdict

if TYPE_CHECKING:
    from lkwedge.detect.episodes import Episode, EpisodeBook, Hit

DEFAULT_GHOST_WINDOW = 10.0
#: progress lines whose parsed payload can prove the session is over (lkwedge.detect.debug_values)
_ENDING_PAYLOADS = frozenset({"leave-request", "resume-failed", "restart-failed"})
_FACT_PATTERNS = frozenset({"session-close", "leave-disconnect", "leave-request", "ws-unhandled",
                            "resume-failed", "restart-failed", "room-disconnected", "server-disconnect"})


def facts(hit: Hit) -> dict[str, object] | None:
    """Structured facts of a matched line, for the few patterns whose payload is worth parsing."""
    if hit.match.pattern.id not in _FACT_PATTERNS or not hit.message:
        return None
    return facts_for(hit.match.pattern.id, hit.message) or None


class Watch(msgspec.Struct):
    episode: Episode
    since: datetime
    claim: str  # what claimed success: "recovered" | "JoinResponse after a restart"
    line: int
    support: list[int] = []


class GhostTracker:
    """The ghost rules of one `EpisodeBook` (one input stream)."""

    def __init__(self, book: EpisodeBook) -> None:
        self.book = book
        self.sdk = Fingerprinter()
        self.ghost_window = DEFAULT_GHOST_WINDOW
        self.media_seen = False  # this input has logged media activity (an agents log, not a bare Rust app)
        self.watches: dict[str, Watch] = {}
        self.given_up: dict[str, Episode] = {}  # open episodes that logged the give-up (old or unknown SDK)

    # -- input -----------------------------------------------------------------------------------

    def observe(self, hit: Hit) -> None:
        """Version evidence from a matched line (called for every hit, before `on_hit`)."""
        episode = self.book.open.get(hit.key)
        first = episode is None or episode.attempts == 0
        self.sdk.observe(hit.match.pattern.id, hit.message, hit.text, hit.match.groups, first_attempt=first)

    def on_hit(self, hit: Hit) -> bool:
        """Ghost bookkeeping for one hit; True when the hit is fully handled here."""
        pattern = hit.match.pattern
        role, key = pattern.role, hit.key
        episode = self.book.open.get(key)
        if role == "evidence":
            watch = self.watches.get(key)
            target = watch.episode if watch is not None else episode
            if pattern.evidence == "ghost" and target is not None:
                evidence = _episodes.Evidence(hit.line, hit.time, "evidence", hit.text[:600], pattern.id)
                target.evidence.append(evidence)
                if watch is not None:
                    watch.support.append(hit.line)
                else:
                    target.ghost_lines = (*target.ghost_lines, hit.line)
            return True
        if role == "activity":
            self.media_seen = True
        if role in ("activity", "teardown", "trigger"):
            self.watches.pop(key, None)
        if episode is not None and role == "progress" and pattern.id in _ENDING_PAYLOADS:
            found = facts(hit) or {}
            if ends_connection(found):  # e.g. a leave the regex let through, or a leave during a reconnect
                self.book._progress(episode, hit)
                episode.outcome = "disconnected"
                episode.end = hit.time or episode.last_progress
                episode.closed_by = "teardown"
                self.book._finalize(episode, "stalled" if episode.stalled else "disconnected")
                return True
        if pattern.outcome == "gave_up" and episode is not None:
            episode.gave_up = True
            self.given_up[key] = episode
            if self.sdk.guess().disconnects_after_give_up():
                self.book._progress(episode, hit)
                episode.end = hit.time or episode.last_progress
                episode.closed_by = "give_up"  # _progress has judged the silence up to this line
                self.book._finalize(episode, "stalled" if episode.stalled else "disconnected")
                return True
            return False
        if episode is not None and self.media_seen and hit.time is not None:
            if role == "success":
                self.watches[key] = Watch(episode, hit.time, "RtcEngine successfully recovered", hit.line,
                                          list(episode.ghost_lines))
            elif pattern.id == "join-response" and episode.restarted:
                claim = "received JoinResponse after a restart"
                self.watches[key] = Watch(episode, hit.time, claim, hit.line, list(episode.ghost_lines))
        return False

    def on_clock(self, now: datetime, line: int | None, text: str | None) -> None:
        for key, watch in list(self.watches.items()):
            gap = _episodes._gap(watch.since, now)
            if gap is not None and gap > self.ghost_window:
                del self.watches[key]
                self._mark(watch.episode, now, line, text, watch)
        for key, episode in list(self.given_up.items()):  # usually empty: O(1) per clock advance
            if episode.ghost or self.book.open.get(key) is not episode:
                del self.given_up[key]
                continue
            gap = _episodes._gap(episode.last_progress, now)
            too_long = gap is not None and gap > self.book.window
            if too_long and self.sdk.guess().disconnects_after_give_up() is False:
                self._mark(episode, now, line, text, None)

    def finish(self, now: datetime | None) -> None:
        if now is not None:
            self.on_clock(now, None, None)
        self.watches.clear()

    # -- verdicts --------------------------------------------------------------------------------

    def _mark(self, episode: Episode, now: datetime, line: int | None, text: str | None,
              watch: Watch | None) -> None:
        episode.ghost = True
        if watch is not None:
            episode.ghost_claim, episode.ghost_claim_line = watch.claim, watch.line
        if watch is None:
            episode.confidence = "high"  # the version proves the SDK never reports the give-up
            give_up = [e.line for e in episode.evidence if e.pattern == "give-up"]
            episode.ghost_lines = (*give_up, *episode.ghost_lines)
        else:
            support = watch.support + [n for n in episode.ghost_lines if n not in watch.support]
            episode.confidence = "high" if support or episode.restarted else "medium"
            episode.ghost_lines = (watch.line, *support)
        if line is not None and text is not None:
            episode.evidence.append(_episodes.Evidence(line, now, "clock", text[:600]))
        if self.book.open.get(episode.key) is episode:
            episode.stalled = True  # one alert: the stall rule must not fire again for this episode
            self.book._stalled_open[id(episode)] = episode  # live proofs still extend its silence
        else:  # closed already (as recovered): its count moves to ghost
            self.book.verdicts[episode.verdict] -= 1
            self.book.verdicts[Verdict.GHOST] += 1
            episode.verdict = Verdict.GHOST
        self.annotate(episode)  # the alert carries the ghost note and advice (redone when it closes)
        self.book._emit("ghost", episode)

    def annotate(self, episode: Episode) -> None:
        """Set the sdk, the ghost note and the advice of a finished episode."""
        guess = self.sdk.guess()
        episode.sdk = self.sdk.guess_dict()
        gave_up = episode.gave_up
        if episode.ghost:
            episode.note = self._ghost_note(episode, guess.label())
        elif gave_up and episode.closed_by == "give_up":
            episode.note += (f"; {guess.label()} closes the room itself after giving up, so what follows is "
                             f"app shutdown, not reconnect silence")
        elif gave_up and guess.disconnects_after_give_up() is None:
            episode.note += ("; SDK version unknown, so a ghost room (livekit-ffi < 0.12.59 never reports "
                             "Disconnected after giving up) cannot be told from a slow shutdown")
        episode.advice = advice.advice_for(episode, guess)

    def _ghost_note(self, episode: Episode, label: str) -> str:
        silence = "unknown" if episode.silence_s is None else f"{episode.silence_s:.1f} s"
        if episode.ghost_claim_line is None:
            give_up = next((e.line for e in episode.evidence if e.pattern == "give-up"), episode.line)
            last = episode.evidence[-1].line
            after = f"; then {episode.outcome} at line {last}" if episode.closed_by else ""
            return (f"ghost room ({episode.confidence}): gave up at line {give_up} and no teardown followed "
                    f"within {self.book.window:g} s; {label} never reports Disconnected after giving up, so "
                    f"the room stays Reconnecting (longest silence {silence}){after}")
        support = [n for n in episode.ghost_lines if n != episode.ghost_claim_line]
        backing = f"; supporting lines {', '.join(map(str, support))}" if support else ""
        restart = "; after a full restart" if episode.restarted else ""
        claim = f"{episode.ghost_claim} at line {episode.ghost_claim_line}"
        return (f"ghost room ({episode.confidence}): {claim}, then no media "
                f"activity for more than {self.ghost_window:g} s while the log went on{restart}{backing}")
