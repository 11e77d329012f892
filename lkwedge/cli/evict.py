"""`lkwedge evict`: one manual RemoveParticipant, with the same guard rails as `watch --evict`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lkwedge.act.targets import DEFAULT_IDENTITY_TEMPLATE, EvictionTarget, Facts, TargetOptions, derive_target
from lkwedge.cli import main
from lkwedge.cli.common import run_guarded
from lkwedge.durations import DURATION
from lkwedge.errors import InputError


@main.command("evict")
@click.option("--room", default=None, help="Room name.")
@click.option("--room-id", default=None, help="Room sid (RM_...), resolved to its name via ListRooms.")
@click.option("--identity", default=None, help="Participant identity to remove.")
@click.option("--job", default=None, help="Agent job id (AJ_...): identity from --identity-template.")
@click.option("--identity-template", default=DEFAULT_IDENTITY_TEMPLATE, show_default=True,
              help="Identity for --job; fields {job_id} {room} {room_id}.")
@click.option("--revoke-token", is_flag=True,
              help="Set revoke_token_ts=now so the old token cannot rejoin.")
@click.option("--dry-run", is_flag=True, help="Print the exact call and URL; send nothing.")
@click.option("--audit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append JSON lines (pending, then done) for the attempt to this file.")
@click.option("--missing-ok", is_flag=True,
              help="Treat \"room not found\" as already gone (default: an error, usually a typo).")
@click.option("--url", default=None, help="Server URL, e.g. http://localhost:7880 [default: $LIVEKIT_URL].")
@click.option("--api-key", default=None, help="API key [default: $LIVEKIT_API_KEY].")
@click.option("--api-secret", default=None,
              help="API secret [default: $LIVEKIT_API_SECRET; prefer the variable: flags show in ps].")
@click.option("--retry-for", type=DURATION, default=30.0, show_default="30s",
              help="Keep retrying 5xx, timeouts and refused connections this long.")
@click.option("--timeout", "request_timeout", type=DURATION, default=10.0, show_default="10s",
              help="Timeout of each request.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def evict_command(room: str | None, room_id: str | None, identity: str | None, job: str | None,
                  identity_template: str, revoke_token: bool, dry_run: bool, audit: Path | None,
                  missing_ok: bool, url: str | None, api_key: str | None, api_secret: str | None,
                  retry_for: float, request_timeout: float, fmt: str) -> None:
    """Remove one participant from a room (RoomService.RemoveParticipant).

    Exit 0 when evicted, already gone ("participant not found"), or dry run; 1 when the eviction failed
    ("room not found" too, unless --missing-ok); 2 on a usage error.

    \b
      export LIVEKIT_URL=http://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret
      lkwedge evict --room r1 --identity agent-AJ_x --dry-run
      lkwedge evict --room r1 --job AJ_x --revoke-token --audit evict.jsonl
    """
    from lkwedge.act.evict import Evictor  # aiohttp/livekit-api load only for this command

    def build() -> tuple[Evictor, EvictionTarget]:
        if not (room or room_id):
            raise InputError("give --room (or --room-id)")
        if not (identity or job):
            raise InputError("give --identity (or --job)")
        if request_timeout <= 0:
            raise InputError("--timeout must be more than 0")
        options = TargetOptions(room=room, identity=identity, identity_template=identity_template)
        target = derive_target(Facts(job=job, room_id=room_id), options)
        if not target.ok:
            raise InputError(target.reason_missing or "no eviction target")
        evictor = Evictor(url, api_key, api_secret, dry_run=dry_run, revoke_token=revoke_token,
                          retry_for=retry_for, request_timeout=request_timeout, audit=audit,
                          missing_ok=missing_ok)
        return evictor, target

    evictor, target = run_guarded(build)
    try:
        result = evictor.evict_now(target)
    except KeyboardInterrupt:
        evictor.close(timeout=0)  # cancels the call; the audit gets a "cancelled" completion line
        click.echo("lkwedge: interrupted", err=True)
        sys.exit(130)
    evictor.close(timeout=1.0)

    if fmt == "json":
        click.echo(json.dumps(result.to_dict()))
    elif result.ok:
        click.echo(f"lkwedge: {result.summary()}")
    if not result.ok:
        click.echo(f"lkwedge: error: {result.summary()}", err=True)
    sys.exit(0 if result.ok else 1)
