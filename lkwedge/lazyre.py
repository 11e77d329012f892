"""Regular expressions compiled on first use.

A process compiles about a hundred expressions (the pattern packs, the log formats), most of which a
given input never needs; compiling them all took about 30 ms of every start (`re` caches nothing across
processes). `compile` returns an object that behaves as the compiled pattern: its first use compiles
it and binds the compiled methods onto it, so later calls cost what a compiled pattern's do.

>>> TIME = compile(r"(\\d\\d):(\\d\\d)")
>>> TIME.match("12:34").groups()
('12', '34')
"""

from __future__ import annotations

import re
from typing import cast


class LazyPattern:
    def __init__(self, source: str | bytes, flags: int = 0) -> None:
        self._source = source
        self._flags = flags

    def __getattr__(self, name: str) -> object:  # only called for what is not bound yet
        if name.startswith("_"):
            raise AttributeError(name)
        compiled = re.compile(self._source, self._flags)
        for method in _BOUND:
            self.__dict__[method] = getattr(compiled, method)
        return getattr(compiled, name)

    def __reduce__(self) -> tuple[object, ...]:
        return (LazyPattern, (self._source, self._flags))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyPattern):
            return (self._source, self._flags) == (other._source, other._flags)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._source, self._flags))

    def __repr__(self) -> str:
        return f"lazyre.compile({self._source!r})"


_BOUND = ("match", "search", "fullmatch", "finditer", "findall", "sub", "subn", "split", "pattern",
          "flags", "groups", "groupindex")


def compile(source: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", LazyPattern(source, flags))


def compile_bytes(source: bytes, flags: int = 0) -> re.Pattern[bytes]:
    return cast("re.Pattern[bytes]", LazyPattern(source, flags))
