"""Incidents: one network blip or server migration hits every job of a host at once.

Episodes of *different* keys (jobs, pids, services) in the same input (one log = one host) whose
starts follow each other within ``gap`` seconds of log time form one incident (single linkage: a chain
of starts, each within ``gap`` of the previous one). A lone episode, or a run of episodes of one key,
is no incident. Computed after the scan, from the finished episodes, so it never touches the per-line
path and gives the same answer for every reader.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Sequence

import msgspec

from lkwedge.detect.episodes import Episode
from lkwedge.detect.spool import headers
from lkwedge.verdicts import severity

DEFAULT_GAP = 2.0



class Incident(msgspec.Struct):
    id: str                             # "I1", "I2"... in order of first start
    file: str
    start: dt.datetime
    end: dt.datetime                    # the last episode's start
    episodes: list[Episode] = []

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(ep.key for ep in self.episodes))

    @property
    def verdict(self) -> str:
        """The worst verdict among its episodes."""
        return min((ep.verdict for ep in self.episodes), key=severity)

    @property
    def spread_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "file": self.file, "start": self.start.isoformat(),
                "spread_s": round(self.spread_s, 3), "verdict": self.verdict, "keys": self.keys,
                "episodes": [ep.id for ep in self.episodes]}


Start = tuple[dt.datetime, str, int]  # an episode's start, key and position


def find_incidents(episodes: Sequence[Episode], gap: float = DEFAULT_GAP) -> list[Incident]:
    # Starts, keys and positions first: only the episodes that form an incident are held as objects
    # (a long scan's episodes may be spilled to disk, `lkwedge.detect.spool`).
    by_file: dict[str, list[Start]] = {}
    for index, ep in enumerate(headers(episodes)):
        if ep.start is not None:
            by_file.setdefault(ep.file, []).append((ep.start, ep.key, index))
    found: list[Incident] = []
    limit = dt.timedelta(seconds=gap)
    for file, starts in by_file.items():
        starts.sort(key=operator.itemgetter(0))
        run: list[Start] = []
        for item in starts:
            if run and item[0] - run[-1][0] > limit:
                found.extend(_incident(file, run, episodes))
                run = []
            run.append(item)
        found.extend(_incident(file, run, episodes))
    found.sort(key=lambda inc: (inc.start, inc.file))
    for i, inc in enumerate(found, 1):
        inc.id = f"I{i}"
    return found


def _incident(file: str, run: list[Start], episodes: Sequence[Episode]) -> list[Incident]:
    if len({key for _, key, _ in run}) < 2:
        return []
    return [Incident("", file, run[0][0], run[-1][0], [episodes[index] for _, _, index in run])]


def incident_of(incidents: Iterable[Incident]) -> dict[str, str]:
    """Episode id -> incident id."""
    return {ep.id: inc.id for inc in incidents for ep in inc.episodes}
