"""TOML data files (pattern packs, SDK fingerprint tables, the config), parsed once and then kept as JSON.

`tomllib` is pure Python: importing it and parsing the shipped files took about 15 ms of every run that
found an episode, more than the rest of a small scan. The parsed form of each file is kept in
``$XDG_CACHE_HOME/lkwedge`` (default ``~/.cache/lkwedge``), keyed like Python's ``.pyc`` files by the
file's path, size and modification time, and read back by the C JSON decoder. A missing, stale or
damaged entry is parsed again; a cache that cannot be written is not used. ``LKWEDGE_NO_CACHE=1``
turns it off.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def load_toml(path: Path) -> dict[str, Any]:
    """The TOML file at ``path``, as `tomllib.loads` gives it. Raises OSError if it cannot be read and
    ValueError (`tomllib.TOMLDecodeError`, `UnicodeDecodeError`) if it is not valid TOML."""
    stamp = _stamp(path)
    entry = _entry(path)
    if entry is not None:
        try:
            with open(entry, encoding="utf-8") as fh:
                cached = json.load(fh)
            if cached["path"] == os.path.abspath(path) and cached["stamp"] == stamp:
                return cached["data"]  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, stale or damaged: parse the file
    import tomllib  # only on a cache miss

    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if entry is not None and _stamp(path) == stamp:  # not rewritten while being read
        _store(entry, {"path": os.path.abspath(path), "stamp": stamp, "data": data})
    return data


def cache_dir() -> Path | None:
    if os.environ.get("LKWEDGE_NO_CACHE", "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lkwedge"


def _stamp(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_mtime_ns, st.st_size]


def _entry(path: Path) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    name = os.path.abspath(path).replace("%", "%25").replace(os.sep, "%2F")
    return folder / f"{name}.json"


def _store(entry: Path, record: dict[str, Any]) -> None:
    try:
        text = json.dumps(record)
    except (TypeError, ValueError):
        return  # a TOML date or time has no JSON form: such a file is parsed every time
    temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, entry)  # readers see the old entry or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
