"""Data files (packs, fingerprint tables, the config) are parsed once, then read back from the cache:
the same data either way, and a changed, damaged or unwritable cache never changes what is read."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from conftest import run_lkwedge

from lkwedge import datafile
from lkwedge.detect.fingerprint import builtin_table_files
from lkwedge.detect.patterns import builtin_pack_files


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LKWEDGE_NO_CACHE", raising=False)
    return tmp_path / "cache" / "lkwedge"


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_text: str) -> None:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(tomllib, "loads", refuse)


def test_shipped_files_read_the_same_parsed_and_cached(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = builtin_pack_files() + builtin_table_files()
    parsed = [tomllib.loads(path.read_text(encoding="utf-8")) for path in files]
    assert [datafile.load_toml(path) for path in files] == parsed  # parsed, and stored
    assert len(list(cache.glob("*.json"))) == len(files)
    _no_parsing(monkeypatch)
    assert [datafile.load_toml(path) for path in files] == parsed  # read back


def test_a_changed_file_is_parsed_again(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "pack.toml"
    path.write_text('name = "one"\n')
    assert datafile.load_toml(path) == {"name": "one"}
    path.write_text('name = "two, longer"\n')
    assert datafile.load_toml(path) == {"name": "two, longer"}
    os.utime(path, ns=(1, 1))  # same size, other time
    path.write_text('name = "six, longer"\n')
    assert datafile.load_toml(path) == {"name": "six, longer"}


def test_a_damaged_entry_is_parsed_again_and_mended(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "pack.toml"
    path.write_text("n = 1\n")
    datafile.load_toml(path)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"path": "x", "stamp": "')
    assert datafile.load_toml(path) == {"n": 1}
    assert json.loads(entry.read_text())["data"] == {"n": 1}


def test_an_unwritable_cache_or_no_cache_reads_the_same(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pack.toml"
    path.write_text("n = 2\n")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # cannot hold a folder
    assert datafile.load_toml(path) == {"n": 2}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LKWEDGE_NO_CACHE", "1")
    assert datafile.load_toml(path) == {"n": 2}
    assert not (tmp_path / "cache").exists()


def test_a_file_with_a_toml_date_is_read_but_not_cached(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "dated.toml"
    path.write_text("when = 2026-01-30\n")
    assert str(datafile.load_toml(path)["when"]) == "2026-01-30"
    assert not list(cache.glob("*.json"))


def test_bad_toml_is_still_a_one_line_error(tmp_path: Path) -> None:
    pack = tmp_path / "bad.toml"
    pack.write_bytes(b"[[patterns]\nid = \xff\n")  # neither TOML nor UTF-8
    log = tmp_path / "a.log"
    log.write_text("[2026-01-30T18:24:43Z INFO livekit] hello\n")
    for _ in range(2):  # the second run may find a cache entry: there must be none for a bad file
        proc = run_lkwedge("scan", "--patterns", str(pack), str(log))
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "not valid TOML" in proc.stderr, proc.stderr
