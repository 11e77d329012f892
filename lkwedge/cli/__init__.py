"""The `lkwedge` command: a click group; each subcommand lives in its own module."""

from __future__ import annotations

import importlib
import importlib.util

import click

from lkwedge import __version__

# Each subcommand lives in its own module and registers itself on `main` when imported. Modules are
# imported only when their command runs (or for --help), so `lkwedge scan` never pays for pandas or aiohttp.
COMMAND_MODULES = {name: f"lkwedge.cli.{name}" for name in ("scan", "watch", "evict", "check", "report",
                                                                   "patterns", "explain")}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [name for name, module in COMMAND_MODULES.items() if importlib.util.find_spec(module)]
        return sorted(set(super().list_commands(ctx)) | set(available))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            if importlib.util.find_spec(COMMAND_MODULES[cmd_name]) is None:
                return None
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lkwedge")
def main() -> None:
    """Catch the moment a LiveKit agent's reconnect wedges: scan, watch, evict, check, report."""
