"""What an open episode is right now, in the words fleet tooling uses (metrics labels, alert names)."""

from __future__ import annotations

import datetime as dt

from lkwedge.detect.episodes import Episode

OPEN_STATES = ("reconnecting", "stalled", "ghost")


def open_state(episode: Episode, log_now: dt.datetime | None = None, window: float = 0.0) -> str:
    """"reconnecting" while within the window; once stalled, "ghost" when the SDK gave up (`failed to
    reconnect to the livekit room`) and no disconnect followed within the window (before livekit-ffi
    0.12.59 none ever does: the room stays Reconnecting), else "stalled".  Without `log_now` a stalled
    episode whose last word was the give-up counts as a ghost."""
    if not episode.stalled:
        return "reconnecting"
    if episode.ghost:  # lkwedge.detect.ghost decided it (SDK version, or silence after a claimed reconnect)
        return "ghost"
    if episode.outcome != "gave_up":
        return "stalled"
    if log_now is None or episode.last_progress is None:
        return "ghost"
    return "ghost" if (log_now - episode.last_progress).total_seconds() > window else "stalled"
