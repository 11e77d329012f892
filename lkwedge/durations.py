"""Durations such as ``20s``, ``1m30s``, ``500ms`` or ``20`` (seconds), for options and config files.

A small pyparsing grammar: it runs once per option given as text, never per log line, and is built
(pyparsing imported) only then, so a command run with default options does not pay for it.
"""

from __future__ import annotations

import functools
from typing import Any

import click

from lkwedge.errors import InputError

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@functools.cache
def _grammar() -> Any:
    import pyparsing as pp

    number = pp.Regex(r"\d+(?:\.\d+)?").set_parse_action(lambda t: float(t[0]))
    part = pp.Group(number + pp.one_of("ms sec min s m h"))
    return (pp.OneOrMore(part) | number) + pp.StringEnd()


def parse_duration(text: str | float | int) -> float:
    """Return seconds. A bare number means seconds; parts add up (``1m30s`` = 90)."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        import pyparsing as pp

        try:
            parsed = _grammar().parse_string(text.strip().lower(), parse_all=True)
        except pp.ParseException:
            raise InputError(f"not a duration: {text!r} (try 20s, 1m30s, 500ms)") from None
        if len(parsed) == 1 and isinstance(parsed[0], float):
            value = parsed[0]
        else:
            value = sum(number * _UNITS[unit] for number, unit in parsed)
    if value < 0:
        raise InputError(f"duration must not be negative: {text!r}")
    return value


class DurationType(click.ParamType):
    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)  # a default or a TOML number: no grammar needed
        try:
            return parse_duration(str(value))
        except InputError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()
