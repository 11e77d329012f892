"""The `lkwedge` command: a click group; each subcommand lives in its own module.

One configuration for every command: the group loads ``lkwedge.toml`` / ``[tool.lkwedge]`` (or
``--config PATH``, given before or after the command name) into click's ``default_map`` and reads
``LKWEDGE_<COMMAND>_<OPTION>`` environment variables. Precedence: a flag > the environment > the
config file > the built-in default.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import click

from lkwedge import __version__

# Each subcommand lives in its own module and registers itself on `main` when imported. Modules are
# imported only when their command runs (or for --help), so `lkwedge scan` never pays for pandas or aiohttp.
COMMAND_MODULES = {name: f"lkwedge.cli.{name}" for name in ("scan", "watch", "evict", "check", "report",
                                                                   "patterns", "explain")}

#: exit code for a bug in lkwedge (1 means "a stall was found", 2 "bad usage or input")
EXIT_INTERNAL = 70
ISSUES_URL = "https://github.com/lkwedge/lkwedge/issues"


#: one-line help for `lkwedge --help`, so listing the commands imports none of them (pandas, aiohttp...)
COMMAND_HELP = {
    "scan": "Explain every reconnect episode in saved logs (files, .gz, or stdin).",
    "watch": "Watch live logs and alert the moment a reconnect stalls.",
    "evict": "Remove a participant from a room (RoomService.RemoveParticipant), safely.",
    "check": "Pass or fail a CI build on its saved LiveKit logs.",
    "report": "Summarize reconnect episodes for a postmortem, with CSV/Parquet/JSON/HTML exports.",
    "patterns": "List the pattern packs, or test them against their samples and real logs.",
    "explain": "How one log line was framed, timed, keyed and classified, and which episode it belongs to.",
}


class LazyGroup(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            short = COMMAND_HELP.get(name)
            if short is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                short = command.get_short_help_str(formatter.width - 6 - len(name))
            rows.append((name, short))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [name for name, module in COMMAND_MODULES.items() if importlib.util.find_spec(module)]
        return sorted(set(super().list_commands(ctx)) | set(available))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            if importlib.util.find_spec(COMMAND_MODULES[cmd_name]) is None:
                return None
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        # `lkwedge check --config x.toml`: the command's own --config must be known before click builds
        # the command's context (that is when default_map is applied), so look for it here.
        sub_args = [*ctx._protected_args, *ctx.args]
        path = _config_flag(sub_args[1:]) or ctx.params.get("config_path")
        _load_config_into(ctx, path)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C where a command does not handle it: not click's exit 1 ("stall")
            sys.stderr.write("lkwedge: interrupted\n")
            sys.exit(130)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except Exception as exc:  # a bug: never a traceback, never exit 1 ("stall found")
            from lkwedge.safe import printable

            name = printable(type(exc).__name__)
            sys.stderr.write(f"lkwedge: internal error: {name}: {printable(exc, 300)}"
                             f" (a bug in lkwedge {__version__}; please report it with the command line at "
                             f"{ISSUES_URL})\n")
            sys.exit(EXIT_INTERNAL)


def _config_flag(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--":
            return None
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _load_config_into(ctx: click.Context, path: str | None) -> None:
    from lkwedge.cli.common import run_guarded
    from lkwedge.config import load_config

    config = run_guarded(lambda: load_config(path))
    values = config.default_values()
    ctx.default_map = {name: dict(values) for name in COMMAND_MODULES}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                              "auto_envvar_prefix": "LKWEDGE"},
             epilog="Settings: a flag > LKWEDGE_<COMMAND>_<OPTION> (e.g. LKWEDGE_SCAN_WINDOW=30s) > "
                    "lkwedge.toml or [tool.lkwedge] in pyproject.toml (searched upward to the repository "
                    "root) > the default.")
@click.version_option(__version__, prog_name="lkwedge")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read settings from this TOML file instead of searching for lkwedge.toml.")
def main(config_path: Path | None) -> None:
    """Catch the moment a LiveKit agent's reconnect wedges: scan, watch, evict, check, report."""
    from lkwedge.cli.pipes import guard_stdout

    guard_stdout()          # `lkwedge ... | head -1`: exit quietly with the results' code (issue 9)


def run() -> None:
    """The `lkwedge` console script: the group, then a quick exit (`lkwedge.cli.quick_exit`). stdout is
    guarded from the start, so that even `--help > /dev/full` ends in one line and exit 2."""
    from lkwedge.cli.pipes import guard_stdout
    from lkwedge.cli.quick_exit import run_and_exit

    guard_stdout()
    run_and_exit(main)
