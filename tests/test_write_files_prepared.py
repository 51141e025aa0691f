"""Spares made ahead (issue 20): at the start of an attempt, the files its per-location write
will want and that do not exist yet are made in a background thread, while the attempt waits
on the network (``feeds.publish.prepare_spares``).  They were never published (empty, readable
by nobody), so they are rewritten at once -- and never published as they are."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from feeds import publish
from feeds.publish import prepare_spares, write_files
from tests.test_write_files import _spares
from tests.test_write_files import _stage_counter as _staged

pytestmark = pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")

NAMES = [f"loc-{i:02d}.json" for i in range(8)]


def _files(gen: int, names: list[str] = NAMES) -> dict[str, bytes]:
    return {n: f'{{"gen": {gen}, "name": "{n}"}}\n'.encode() for n in names}


def _prepare_all(folder: Path, names: list[str]) -> None:
    prepare_spares(folder, names)
    _wait(folder)


def _wait(folder: Path) -> None:
    with publish._PREPARING_LOCK:
        job = publish._PREPARING.get(str(folder))
    if job is not None:
        job[0].join()  # all of them made (not stopped)


def _published_plainly(folder: Path) -> bool:
    return all(
        stat.S_IMODE(p.stat().st_mode) == 0o644 and p.stat().st_size > 0 for p in folder.iterdir()
    )


def test_prepared_spares_are_empty_and_readable_by_nobody(tmp_path: Path) -> None:
    folder = tmp_path / "weather"
    _prepare_all(folder, NAMES)
    made = sorted(_spares(folder).iterdir())
    assert [p.name for p in made] == NAMES
    assert all(p.stat().st_size == 0 and stat.S_IMODE(p.stat().st_mode) == publish.PREPARED_MODE for p in made)
    assert list(folder.iterdir()) == []  # nothing published by making them
    assert publish._PREPARING == {}


def test_a_first_write_over_prepared_spares_makes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never published: quiet at once (the default SPARE_QUIET of 120 s holds), rewritten in
    place, and the folders exchanged; the public files are whole and readable."""
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)
    folder = tmp_path / "weather"
    made = _staged(monkeypatch)
    _prepare_all(folder, NAMES)
    created: list[str] = []
    real_open = os.open

    def counting_open(path: object, flags: int, *a: object, **k: object) -> int:
        if flags & os.O_CREAT:
            created.append(str(path))
        return real_open(path, flags, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    assert sorted(write_files(folder, _files(1))) == NAMES
    monkeypatch.undo()
    assert made == []
    assert [c for c in created if c.endswith(".json")] == []  # no file made: only the lock's open
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _files(1)
    assert _published_plainly(folder)
    assert list(_spares(folder).iterdir()) == []  # the empty folder of before


def test_fewer_files_prepared_spares_are_rewritten_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "weather"
    made = _staged(monkeypatch)
    _prepare_all(folder, NAMES[:3])
    assert sorted(write_files(folder, _files(1, NAMES[:5]))) == NAMES[:5]
    assert sorted(made) == NAMES[3:5]  # those not prepared: new temporary files
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _files(1, NAMES[:5])
    assert _published_plainly(folder)


def test_a_lost_lock_beside_published_spares_waits_spare_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock file says when the spares left use; made afresh beside spares that were
    published (a reader may hold them), it says "now": none is rewritten in place."""
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)
    folder = tmp_path / "weather"
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    for gen in (1, 2, 3):
        write_files(folder, _files(gen))
    (tmp_path / ".spare" / ".weather.lock").unlink()
    monkeypatch.setattr(publish, "SPARE_QUIET", 120.0)
    held = os.open(_spares(folder) / "loc-01.json", os.O_RDONLY)  # a reader of generation 2
    try:
        made = _staged(monkeypatch)
        write_files(folder, _files(4))
        assert sorted(made) == NAMES  # new files, each: the folders are not exchanged
        assert os.pread(held, 4096, 0) == _files(2)["loc-01.json"]
    finally:
        os.close(held)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _files(4)


def test_a_write_stops_the_preparation_and_makes_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)
    folder = tmp_path / "weather"
    many = [f"loc-{i:04d}.json" for i in range(2000)]
    prepare_spares(folder, many)
    assert sorted(write_files(folder, _files(1, many))) == many  # whatever the thread had made
    assert publish._PREPARING == {}
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _files(1, many)
    assert _published_plainly(folder)
    # The spares' folder holds only spares of published names, never a file to publish.
    assert set(os.listdir(_spares(folder))) <= set(many)


def test_an_attempt_prepares_its_per_location_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``feeds.portal.prepare_companions``, at the start of each attempt: only for a weather
    feed with per-location files."""
    from dataclasses import replace

    from feeds import portal
    from feeds.config import load_config

    cfg_path = tmp_path / "f.toml"
    cfg_path.write_text(
        f'[paths]\nsnapshot_dir = "{tmp_path / "snap"}"\ncache_dir = "{tmp_path / "cache"}"\n\n'
        '[feeds.weather]\nkind = "open-meteo"\nurl = "http://127.0.0.1:9/v1/forecast"\n'
        'locations = [{ id = "a", name = "A", lat = 10, lon = 106 }, { id = "b", name = "B", lat = 11, lon = 107 }]\n'
        "per_location_files = true\n",
        encoding="utf-8",
    )
    cfg = load_config(cfg_path)
    feed = cfg.feeds["weather"]
    portal.prepare_companions(cfg, feed)
    _wait(cfg.snapshot_dir / "weather")
    assert sorted(os.listdir(cfg.snapshot_dir / ".spare" / "weather")) == ["a.json", "b.json"]
    portal.prepare_companions(cfg, replace(feed, name="other", per_location_files=False))
    assert not (cfg.snapshot_dir / ".spare" / "other").exists()


def test_an_empty_published_file_is_not_taken_for_a_prepared_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty, but readable: it was published, a reader may hold it: not rewritten in place."""
    folder = tmp_path / "weather"
    write_files(folder, {"a.json": b""})
    write_files(folder, {"a.json": b"1\n"})  # the empty one is the spare now
    held = os.open(_spares(folder) / "a.json", os.O_RDONLY)
    try:
        made = _staged(monkeypatch)
        write_files(folder, {"a.json": b"2\n"})
        assert made == ["a.json"]  # a new file: the spare was left alone
        assert os.pread(held, 16, 0) == b""
    finally:
        os.close(held)


def test_a_write_stops_the_preparation_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preparation stops at the next file when a write of the folder begins (and the write
    waits for it, then makes the rest): it never holds up a publish for long."""
    import threading

    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)
    folder = tmp_path / "weather"
    many = [f"loc-{i:04d}.json" for i in range(200)]
    real_open = os.open
    made = 0
    stop_came = threading.Event()

    def slow_open(path: object, flags: int, *a: object, **k: object) -> int:
        nonlocal made
        if threading.current_thread().name == "feeds-spares" and flags & os.O_CREAT:
            made += 1
            if made == 10:
                with publish._PREPARING_LOCK:
                    job = publish._PREPARING[str(folder)]
                if job[1].wait(30):  # until the write says stop (a guard, not a timing)
                    stop_came.set()
        return real_open(path, flags, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", slow_open)
    prepare_spares(folder, many)
    while made < 10:
        threading.Event().wait(0.01)
    assert sorted(write_files(folder, _files(1, many))) == many
    assert stop_came.is_set()
    assert made == 10  # it stopped there: the write made the other 190
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _files(1, many)
