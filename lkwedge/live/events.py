"""What `watch` hands to its sinks and hooks: a typed event carrying a snapshot of its episode.

Sinks run on their own threads while the detector goes on changing the live `Episode`, so an event holds
a copy taken when it happened. Dicts are made only at the edge, where JSON or the environment is written:
`LiveEvent.to_dict()` (the `--jsonl` record, `--on-alert`'s stdin) and `episode_dict()` (the webhook's
`episode`), both from `Episode.to_dict()`.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from lkwedge.detect.episodes import Episode

EventKind = Literal["alert", "resolved"]


def iso_wall(wall_time: float) -> str:
    return dt.datetime.fromtimestamp(wall_time, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def snapshot(episode: Episode, **changes: object) -> Episode:
    """A copy of ``episode`` that the detector will not change any more (its lists are copied; the
    evidence lines themselves are never changed once recorded), with ``changes`` applied."""
    taken = copy.copy(episode)
    taken.evidence = list(episode.evidence)
    taken.remarks = list(episode.remarks)
    for name, value in changes.items():
        setattr(taken, name, value)
    return taken


def rounded(value: float | None) -> float | None:
    """A duration as JSON carries it (milliseconds), so text and JSON say the same."""
    return None if value is None else round(value, 3)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An alert (an episode crossed the window: its verdict is ``stalled`` or ``ghost`` and its silence
    the one proved so far) or a resolution (an alerted episode ended, after ``outage_s``)."""

    kind: EventKind
    episode: Episode      # a snapshot (see `snapshot`): safe to read from any thread
    wall_time: float      # time.time() of the event
    outage_s: float | None = None   # "resolved" only

    @property
    def id(self) -> str:
        return self.episode.id

    @property
    def outage(self) -> float | None:
        """How long the reconnect was out (a resolution), else the silence so far."""
        return rounded(self.outage_s if self.outage_s is not None else self.episode.silence_s)

    def describe(self) -> str:
        """e.g. ``the alert for agent.log:12`` (not escaped: callers escape)."""
        return f"the {self.kind} for {self.episode.id or '?'}"

    def episode_dict(self) -> dict[str, object]:
        """The episode as scan's JSON has it, plus ``outage_s`` on a resolution."""
        record = self.episode.to_dict()
        if self.outage_s is not None:
            record["outage_s"] = self.outage_s
        return record

    def to_dict(self) -> dict[str, object]:
        """The `--jsonl` record: the episode's fields plus ``event`` and ``wall_time``."""
        record = self.episode_dict()
        record["event"] = self.kind
        record["wall_time"] = iso_wall(self.wall_time)
        return record
