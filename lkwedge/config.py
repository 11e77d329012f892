"""Settings from ``lkwedge.toml`` or ``[tool.lkwedge]`` in ``pyproject.toml``, so CI command lines stay short.

Search: from the current directory upward. In each directory ``lkwedge.toml`` is looked at first, then a
``pyproject.toml`` that has a ``[tool.lkwedge]`` table (one without it is skipped, like ruff does). The first
hit wins; nothing is merged. The walk stops after the repository root (the first directory holding ``.git``)
or at the filesystem root, so a config file above your checkout never leaks into its CI runs.
``--config PATH`` names the file explicitly and turns the search off.

Precedence: a flag given on the command line > an LKWEDGE_<COMMAND>_<OPTION> environment variable >
the config file > the built-in default (the `lkwedge` click group applies the file as click's
default_map). Keys mirror the long flags (``max_stalls`` or ``max-stalls``). Relative paths in the
file (``junit``, ``patterns``) are
relative to the directory of the config file, not to the current directory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from lkwedge.datafile import load_toml
from lkwedge.durations import parse_duration
from lkwedge.errors import InputError

CONFIG_NAME = "lkwedge.toml"
FAIL_ON_CHOICES = ("unresolved", "stalled", "disconnected", "ghost")


class Config(msgspec.Struct):
    """Settings read from a file: only the keys the file sets are present in ``values``."""

    path: Path | None = None
    values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def default_values(self) -> dict[str, Any]:
        """The values as click option defaults (parameter names; types click's converters accept)."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            if isinstance(value, dt.date):
                value = value.isoformat()
            out[_PARAM_NAMES.get(key, key)] = value
        return out


def _non_negative_int(value: Any) -> int:
    # bool is an int subclass in Python; `max_stalls = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('expected a duration such as "20s" or a number of seconds')
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _window(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def _fail_on(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ValueError(f"expected a list of verdicts from {', '.join(FAIL_ON_CHOICES)}")
    bad = [v for v in items if v not in FAIL_ON_CHOICES]
    if bad:
        raise ValueError(f"unknown verdict {bad[0]!r} (choose from {', '.join(FAIL_ON_CHOICES)})")
    return tuple(dict.fromkeys(items))


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("expected a date such as 2026-05-01")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a path string")
    return value


def _paths(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ValueError("expected a list of path strings")
    return items


# key -> validator. Path-valued keys are resolved against the config file's directory below.
_KEYS: dict[str, Callable[[Any], Any]] = {
    "window": _window,
    "ghost_window": _window,
    "date": _date,
    "patterns": _paths,
    "max_stalls": _non_negative_int,
    "max_ghosts": _non_negative_int,
    "max_silence": _duration,
    "fail_on": _fail_on,
    "expect_recovered": _non_negative_int,
    "junit": _path,
    "github": _bool,
    "tz": lambda v: _path(v) if isinstance(v, str) else _path(None),
    "max_jump": _duration,
    "max_lag": _duration,
    "lookback": _duration,
    "max_line": _non_negative_int,
}
# config key -> the click parameter name where they differ
_PARAM_NAMES = {"junit": "junit_path"}
_PATH_KEYS = ("junit", "patterns")


def find_config(start: Path | None = None) -> Path | None:
    """The config file that applies to ``start`` (default: the current directory), or None."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "lkwedge" in _read_toml(pyproject).get("tool", {}):
            return pyproject
        if (directory / ".git").exists():
            return None
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return load_toml(path)
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, or not UTF-8
        raise InputError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, *, start: Path | None = None) -> Config:
    """Read and validate the config: ``path`` if given (it must exist), else the one found by searching.

    Raises InputError with a one-line message on an unknown key or a bad value.
    """
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise InputError(f"config file not found: {path}")
    else:
        found = find_config(start)
        if found is None:
            return Config()
    data = _read_toml(found)
    where = str(found)
    if found.name == "pyproject.toml":
        table = data.get("tool", {}).get("lkwedge")
        if table is None:
            raise InputError(f"{found}: no [tool.lkwedge] table")
        where = f"{found} [tool.lkwedge]"
        data = table
    if not isinstance(data, dict):
        raise InputError(f"{where}: [tool.lkwedge] must be a table")
    values: dict[str, Any] = {}
    for raw_key, raw_value in data.items():
        key = raw_key.replace("-", "_")
        validator = _KEYS.get(key)
        if validator is None:
            raise InputError(f"{where}: unknown key {raw_key!r} (known: {', '.join(sorted(_KEYS))})")
        try:
            value = validator(raw_value)
        except ValueError as exc:
            raise InputError(f"{where}: bad value for {raw_key!r}: {exc}") from None
        if key in _PATH_KEYS:
            base = found.parent
            value = [str(base / v) for v in value] if isinstance(value, list) else str(base / value)
        values[key] = value
    return Config(path=found, values=values)


def pick(flag: Any, config: Config, key: str, default: Any) -> Any:
    """Precedence in one place: a flag the user gave (not None / not empty) > the config file > default."""
    if flag is not None and flag != ():
        return flag
    return config.get(key, default)
