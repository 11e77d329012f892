"""Per episode: the likely cause and what to do, one line, from livekit-logs.md (§0, §2.2, §2.3, §5).

Rules look at the verdict, the outcome, the structured facts of the evidence (close reason, error
class) and the SDK fingerprint; the first rule that applies wins. No advice for a healthy recovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lkwedge.detect.fingerprint import SdkGuess

if TYPE_CHECKING:
    from lkwedge.detect.episodes import Episode

WATCHDOG = "meanwhile run `lkwedge watch --evict` (or restart the job) when a reconnect is silent for 20 s"
GHOST_FIX = ("upgrade to python livekit >= 1.1.9 (livekit-ffi >= 0.12.59, agents >= 1.6.1), which always "
             "emits Disconnected after giving up")
CONNECT_TIMEOUT_FIX = ("fixed from python livekit 1.1.0 (5 s SIGNAL_CONNECT_TIMEOUT; agents 1.4.2+, but not "
                       "1.5.0, which pins 1.0.25 again)")

_REASONS = {
    "DuplicateIdentity": ("another client joined with the same identity and took the seat: "
                          "use unique identities"),
    "ParticipantRemoved": "the participant was removed through the RoomService API",
    "RoomDeleted": "the room was deleted on the server",
    "ServerShutdown": ("the LiveKit server shut down (deploy or node drain); the client should move "
                       "to another node"),
    "Migration": "the server migrated the participant to another node",
    "StateMismatch": "the server lost this participant's state (e.g. after a node restart) and asked for a "
                     "full reconnect",
    "JoinFailure": "the server could not complete the join",
}

_ERRORS = {
    "no_reconnect_response": "the signal socket opened but no ReconnectResponse came within 5 s: the server "
                             "no longer knew the session",
    "no_join_response": "the signal socket opened but no JoinResponse came within 5 s",
    "pc_connect_timeout": "signalling worked but the PeerConnections did not reconnect within 15 s: check "
                          "UDP/TURN reachability from the agent host",
    "signal_connect_timeout": "the signal server was unreachable (5 s connect timeout on every attempt)",
    "dns_failure": "DNS resolution of the LiveKit host failed",
    "connection_refused": "the LiveKit host refused the connection (server down or wrong port)",
    "unauthorized": "the token was rejected: it may have expired during a long call",
}


def _facts(episode: Episode) -> dict[str, object]:
    merged: dict[str, object] = {}
    for evidence in episode.evidence:  # the latest line wins: it says how the episode ended
        if evidence.fields:
            merged.update(evidence.fields)
    return merged


def advice_for(episode: Episode, guess: SdkGuess | None) -> str:
    facts = _facts(episode)
    sdk = guess or SdkGuess(None, None, [])
    old_connect = sdk.ffi_at_most((0, 12, 47))
    verdict = episode.verdict
    if verdict == "ghost":
        if episode.outcome == "gave_up" or any(e.pattern == "give-up" for e in episode.evidence):
            return (f"{sdk.label()}: before livekit-ffi 0.12.59 the engine never emits Disconnected after "
                    f"'failed to reconnect', so the room stays Reconnecting and the job never exits; "
                    f"{GHOST_FIX}; meanwhile evict the participant (`lkwedge watch --evict`) or end the job "
                    f"on that line")
        return ("the SDK reported a reconnect but no media followed: the participant list or tracks were "
                "not restored (republish or unknown-participant errors are typical); evict the participant "
                "so the agent rejoins (`lkwedge watch --evict`); livekit-ffi >= 0.12.73 (python livekit "
                "1.1.14, agents 1.7) also drops participants the server no longer lists")
    reason = facts.get("close_reason")
    if verdict == "disconnected":
        if episode.outcome == "gave_up":
            return ("the SDK gave up after all attempts and closed the room (ffi >= 0.12.59); the job should "
                    "exit and be re-dispatched: check network reachability of the LiveKit server")
        if isinstance(reason, str) and reason in _REASONS:
            return _REASONS[reason]
        return ""
    if verdict == "unresolved":
        return "the log ends during the reconnect: collect a longer log to get a verdict"
    if verdict == "stalled":
        error = facts.get("error_class")
        silence = episode.silence_s
        resumes = sum(1 for e in episode.evidence if e.pattern == "resume-attempt")
        if resumes > 1 and sdk.ffi_at_most((0, 12, 39)):
            return (f"{sdk.label()}: ffi 0.10.3-0.12.39 retries the resume after a signal error instead of "
                    f"restarting, and each retry can block again; from python livekit 1.0.20 any resume "
                    f"failure escalates to a restart (rust-sdks #792); {WATCHDOG}")
        if old_connect and (error in (None, "tcp_timeout", "connection_reset", "server_closed_socket",
                                      "dns_failure") and (silence is None or silence > 20)):
            gap = "a long" if silence is None else f"a ~{silence:.0f} s"
            return (f"{sdk.label()}: ffi <= 0.12.47 has no WebSocket connect timeout; {gap} gap after "
                    f"attempt {episode.first_resume_attempt or 0} is an OS-level block (old socket "
                    f"teardown or TCP connect); {CONNECT_TIMEOUT_FIX}; {WATCHDOG}")
        if isinstance(error, str) and error in _ERRORS:
            return f"{_ERRORS[error]}; {WATCHDOG}"
        if not sdk.known:
            return ("SDK version unknown (set the `livekit` logger to INFO to log "
                    f"'initializing ffi server v…'); {WATCHDOG}")
        return (f"{sdk.label()}: the old signal socket's teardown is not bounded by any SDK timer, "
                f"so a resume can hang there; {WATCHDOG}")
    if verdict == "recovered" and isinstance(reason, str) and reason in ("Migration", "ServerShutdown"):
        return _REASONS[reason]
    return ""
