"""Who to evict for an episode: the room name and participant identity, derived from the logs.

livekit-agents joins the room as ``agent-<job_id>`` (``JobRequest.accept``), so the identity follows from the
job id every agents log record carries. The room comes from the episode's ``room`` (agents >= 1.6 records, or
the job's ``received job request`` record); failing that, from its ``room_id`` (``RM_...``), which the
evictor resolves to a name through ``RoomService.ListRooms``. When neither a job id nor an explicit identity
is known there is no target, and ``reason_missing`` says why: we never guess who to remove.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Protocol

from lkwedge.errors import InputError

DEFAULT_IDENTITY_TEMPLATE = "agent-{job_id}"

# Fields an identity template may use; plain names only, so a template cannot reach attributes
# the way str.format("{x.__class__}") could.
TEMPLATE_FIELDS = ("job_id", "room", "room_id", "pid")


@dataclass(frozen=True)
class EvictionTarget:
    """A participant to remove. ``room`` is the room *name* the server API wants; ``room_id`` (``RM_...``)
    is used only when the name is unknown. ``reason_missing`` is set (and the rest may be None) when no
    target could be derived."""

    room: str | None
    identity: str | None
    room_id: str | None = None
    reason_missing: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason_missing is None and bool(self.identity) and bool(self.room or self.room_id)

    @property
    def key(self) -> tuple[str, str]:
        """The dedupe key: (room name, or room_id when the name is unknown; identity)."""
        return (self.room or self.room_id or "", self.identity or "")


class EpisodeFacts(Protocol):
    """What a target is derived from: an `Episode` (lkwedge.detect.episodes), or `Facts`."""

    @property
    def id(self) -> str | None: ...
    @property
    def job(self) -> str | None: ...
    @property
    def room(self) -> str | None: ...
    @property
    def room_id(self) -> str | None: ...
    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class Facts:
    """The facts of an eviction that has no episode (``lkwedge evict --job AJ_x --room-id RM_y``)."""

    id: str | None = None
    job: str | None = None
    room: str | None = None
    room_id: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class TargetOptions:
    """User overrides (``--room``, ``--identity``, ``--identity-template``)."""

    room: str | None = None
    identity: str | None = None
    identity_template: str = DEFAULT_IDENTITY_TEMPLATE

    def __post_init__(self) -> None:
        validate_template(self.identity_template)


def _parse(template: str) -> list[tuple[str, str | None]]:
    """(literal text, field name or None) pieces; raises InputError on bad templates."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError(f"identity template {template!r}: {exc}") from None
    pieces: list[tuple[str, str | None]] = []
    for lit, name, spec, conv in parsed:
        if name is not None and name not in TEMPLATE_FIELDS:
            raise InputError(
                f"identity template {template!r}: unknown field {{{name}}}; "
                f"use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
        if spec or conv:
            raise InputError(f"identity template {template!r}: format specs are not supported")
        pieces.append((lit, name))
    return pieces


def validate_template(template: str) -> None:
    """Raise InputError unless `template` only uses ``{job_id}``, ``{room}``, ``{room_id}``, ``{pid}``."""
    if not template.strip():
        raise InputError("identity template is empty")
    _parse(template)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def derive_target(episode: EpisodeFacts, options: TargetOptions | None = None) -> EvictionTarget:
    """The eviction target for `episode` (an ``Episode``, or `Facts`), honouring `options`."""
    opts = options or TargetOptions()
    job = _text(episode.job)
    room = opts.room or _text(episode.room)
    room_id = _text(episode.room_id)
    pid = episode.pid

    identity = opts.identity
    if identity is None:
        values = {"job_id": job, "room": room, "room_id": room_id, "pid": None if pid is None else str(pid)}
        pieces = _parse(opts.identity_template)
        missing = [n for _lit, n in pieces if n is not None and values[n] is None]
        if missing:
            what = "job id" if missing == ["job_id"] else ", ".join(missing)
            return EvictionTarget(
                room, None, room_id,
                reason_missing=f"no {what} in the log for this episode, so the participant identity is "
                f"unknown (give --identity, or --identity-template without {{{missing[0]}}})",
            )
        identity = "".join(lit + (values[n] or "" if n is not None else "") for lit, n in pieces)

    if room is None and room_id is None:
        return EvictionTarget(
            None, identity, None,
            reason_missing="no room name or room_id in the log for this episode (give --room)",
        )
    return EvictionTarget(room, identity, room_id)
