"""The `lkwedge` command: a click group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from lkwedge import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lkwedge")
def main() -> None:
    """Catch the moment a LiveKit agent's reconnect wedges: scan, watch, evict, check, report."""


# Subcommands register themselves on `main` when imported (one module per command).
from lkwedge.cli import scan as _scan  # noqa: E402, F401
