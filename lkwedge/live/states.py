"""What an open episode is right now, in the words fleet tooling uses (metrics labels, alert names)."""

from __future__ import annotations

from lkwedge.detect.episodes import Episode

OPEN_STATES = ("reconnecting", "stalled", "ghost")


def open_state(episode: Episode) -> str:
    """"reconnecting" while within the window; once stalled, "ghost" when its last word was the SDK giving
    up (`failed to reconnect to the livekit room`, with no disconnect after it: before livekit-ffi 0.12.59
    the room stays Reconnecting forever), else "stalled"."""
    if not episode.stalled:
        return "reconnecting"
    return "ghost" if episode.outcome == "gave_up" else "stalled"
