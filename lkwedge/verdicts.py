"""The verdicts an episode can end with, as one enum for every stage and sink.

A ``StrEnum``: a member equals its string (``Verdict.STALLED == "stalled"``), so the episodes' ``verdict``
strings, JSON and config files keep working while code that decides or presents verdicts names them.
The order is severity, worst first (presentation, incidents and headlines use it)."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    STALLED = "stalled"
    GHOST = "ghost"              # issue 11: the room keeps a participant whose session is gone
    UNRESOLVED = "unresolved"
    DISCONNECTED = "disconnected"
    RECOVERED = "recovered"


def severity(verdict: str) -> int:
    """0 for the worst verdict; unknown verdicts after every known one."""
    order = list(Verdict)
    return next((i for i, v in enumerate(order) if v == verdict), len(order))
