"""Per-location files, every one of them new (a weather feed's: each has its own ``fetched_at``):
the spares' folder is rewritten whole and the two folders are exchanged, one atomic exchange
instead of one per file (issue 20: 3,000 files, ~115 -> ~65 ms per attempt).  Readers get every
new file at once; the spares stay private and are rewritten only once out of use for
``SPARE_QUIET``; anything the exchange of folders could lose sends the write back to the
exchange of each file."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import publish, watch
from feeds.publish import write_files
from tests.test_write_files_faults import _content
from tests.test_write_files_faults import _run as _run_failing

pytestmark = pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")

NAMES = [f"loc-{i:02d}.json" for i in range(8)]


def _files(gen: int, names: list[str] = NAMES) -> dict[str, bytes]:
    # Lengths differ per generation: a rewrite in place that stopped midway would show.
    return {n: _content(gen, n) for n in names}


def _spares(folder: Path) -> Path:
    return folder.parent / ".spare" / folder.name


def _read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


class Calls:
    """Counts the exchanges (of files, of folders) and the files made by ``_stage`` (new ones)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.exchanges: list[tuple[str, str]] = []
        self.staged: list[str] = []
        real_exchange, real_stage = publish._exchange, publish._stage

        def exchange(a: str, b: str) -> bool:
            self.exchanges.append((a, b))
            return real_exchange(a, b)

        def stage(path: Path, content: bytes, mode: int) -> str:
            self.staged.append(path.name)
            return real_stage(path, content, mode)

        monkeypatch.setattr(publish, "_exchange", exchange)
        monkeypatch.setattr(publish, "_stage", stage)

    def clear(self) -> None:
        self.exchanges.clear()
        self.staged.clear()


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)


def test_every_file_new_exchanges_the_folders_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    write_files(folder, _files(1))  # new files
    write_files(folder, _files(2))  # new temporary files; the first ones kept as spares
    folder.chmod(0o750)  # the admin's choice for the published folder
    for gen in (3, 4, 5):
        calls.clear()
        assert sorted(write_files(folder, _files(gen))) == NAMES
        assert calls.exchanges == [(str(_spares(folder)), str(folder))], gen
        assert calls.staged == []  # no file made: the spares were rewritten in place
        assert _read(folder) == _files(gen)
        assert _read(_spares(folder)) == _files(gen - 1)  # the files just replaced, kept
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
        assert stat.S_IMODE(_spares(folder).stat().st_mode) == 0o700  # not for the web server's eyes
        assert all(stat.S_IMODE((folder / n).stat().st_mode) == 0o644 for n in NAMES)
        assert all(watch.generation(folder / n) is not None for n in NAMES)
        assert watch.check(folder) == []  # what is recorded is what is there
    # Recorded as written: the same bytes again are not written at all.
    calls.clear()
    assert write_files(folder, _files(5)) == []
    assert calls.exchanges == []


def test_some_files_unchanged_exchange_only_the_changed_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    """A file whose bytes did not change is left alone: its inode and mtime stay (a web
    server's ETag with them), so the folders are not exchanged."""
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2, 3):
        write_files(folder, _files(gen))
    before = (folder / "loc-00.json").stat()
    new = dict(_files(3), **{"loc-05.json": b'{"changed": true}\n'})
    calls.clear()
    assert write_files(folder, new) == ["loc-05.json"]
    assert calls.exchanges == [(str(_spares(folder) / "loc-05.json"), str(folder / "loc-05.json"))]
    after = (folder / "loc-00.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _read(folder) == new


def test_a_file_not_ours_in_the_folder_stays_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2):
        write_files(folder, _files(gen))
    (folder / "README.txt").write_text("placed by the admin\n")
    calls.clear()
    write_files(folder, _files(3))
    assert len(calls.exchanges) == len(NAMES)  # each file: the folder keeps what is not ours
    assert _read(folder) == dict(_files(3), **{"README.txt": b"placed by the admin\n"})


def test_folders_with_extended_attributes_are_not_exchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    """A default ACL or a security label on the published folder would not come with the
    spares' folder: such folders get the exchange of each file."""
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2):
        write_files(folder, _files(gen))
    try:
        os.setxattr(folder, "user.portal", b"kept")
    except OSError:
        pytest.skip("no user extended attributes on this filesystem")
    calls.clear()
    write_files(folder, _files(3))
    assert len(calls.exchanges) == len(NAMES)
    assert os.getxattr(folder, "user.portal") == b"kept"
    assert _read(folder) == _files(3)


def test_a_spares_folder_holding_a_folder_is_not_exchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2):
        write_files(folder, _files(gen))
    (_spares(folder) / "loc-03.json").unlink()
    (_spares(folder) / "loc-03.json").mkdir()
    calls.clear()
    write_files(folder, _files(3))
    assert str(folder) not in [b for _, b in calls.exchanges]
    assert _read(folder) == _files(3)


def test_spares_not_plainly_ours_are_replaced_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None
) -> None:
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2):
        write_files(folder, _files(gen))
    elsewhere = tmp_path / "kept-by-someone"
    os.link(_spares(folder) / "loc-01.json", elsewhere)
    before = elsewhere.read_bytes()
    target = tmp_path / "target"
    target.write_bytes(b"not ours\n")
    (_spares(folder) / "loc-02.json").unlink()
    (_spares(folder) / "loc-02.json").symlink_to(target)
    (_spares(folder) / "stray.json").write_bytes(b"a spare of nothing\n")
    calls.clear()
    write_files(folder, _files(3))
    assert calls.exchanges == [(str(_spares(folder)), str(folder))]
    assert elsewhere.read_bytes() == before and target.read_bytes() == b"not ours\n"
    assert _read(folder) == _files(3)  # the stray spare did not come along
    assert not (folder / "stray.json").exists()


def test_spares_are_rewritten_only_once_the_folder_is_out_of_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the folders are exchanged, the spares are the files readers had a moment ago
    (nginx's open_file_cache may hold them): none is written in place for ``SPARE_QUIET``,
    though each file's own times are older (they were written before the exchange)."""
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 4)
    shift = 0.0
    real_time = time.time
    monkeypatch.setattr(publish.time, "time", lambda: real_time() + shift)
    folder = tmp_path / "weather"
    calls = Calls(monkeypatch)
    for gen in (1, 2):
        write_files(folder, _files(gen))
    held = os.open(folder / "loc-04.json", os.O_RDONLY)  # a reader holding generation 2
    try:
        shift = 1000.0  # every file and the lock long quiet: the folders are exchanged
        calls.clear()
        write_files(folder, _files(3))
        assert calls.exchanges == [(str(_spares(folder)), str(folder))]
        # Generation 2 is the spares now, left use just now: one file changes, and its spare is
        # not rewritten (a new file is made), though the file itself was written long "ago".
        calls.clear()
        changed = dict(_files(3), **{"loc-04.json": b'{"gen": 4}\n'})
        assert write_files(folder, changed) == ["loc-04.json"]
        assert calls.staged == ["loc-04.json"]
        assert os.pread(held, 4096, 0) == _files(2)["loc-04.json"]
        # The whole folder again within SPARE_QUIET: each file, new files, nothing written through.
        calls.clear()
        write_files(folder, _files(5))
        assert str(folder) not in [b for _, b in calls.exchanges]
        assert sorted(calls.staged) == NAMES
        assert os.pread(held, 4096, 0) == _files(2)["loc-04.json"]
        assert _read(folder) == _files(5)
    finally:
        os.close(held)


def test_the_spares_of_removed_files_go_with_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    folder = tmp_path / "weather"
    for gen in (1, 2, 3):
        write_files(folder, _files(gen))
    fewer = NAMES[:5]
    for name in NAMES[5:]:
        (folder / name).unlink()  # as feeds.portal does for a location no longer configured
    write_files(folder, _files(4, fewer))
    assert sorted(os.listdir(folder)) == fewer
    assert sorted(os.listdir(_spares(folder))) == fewer


# -- faults: any call failing at any point leaves every file whole ------------------------------
CALLS = ("open", "pwrite", "write", "ftruncate", "fchmod", "chmod", "unlink", "listdir", "utime", "link", "replace")


def _run(folder: Path, gen: int, fail_at: int | None) -> tuple[int, BaseException | None]:
    return _run_failing(folder, gen, NAMES, fail_at, CALLS)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(fail_at=st.integers(1, 70))
def test_any_failed_call_leaves_every_file_whole(tmp_path_factory: pytest.TempPathFactory, fail_at: int) -> None:
    saved = publish.SPARE_QUIET, publish.FOLDER_SWAP_FILES
    publish.SPARE_QUIET, publish.FOLDER_SWAP_FILES = 0.0, 4
    try:
        folder = tmp_path_factory.mktemp("w") / "weather"
        for gen in (1, 2, 3):  # the folders were exchanged once already
            assert _run(folder, gen, None)[1] is None
        calls, raised = _run(folder, 4, fail_at)
        got = _read(folder)
        assert sorted(got) == NAMES
        for n in NAMES:
            assert got[n] in (_files(3)[n], _files(4)[n]), (n, got[n])
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        if fail_at > calls:
            assert raised is None and got == _files(4)
        if raised is None:
            assert got == _files(4)  # no error said: everything new
        # The next write puts everything right, whatever the failure left behind.
        assert _run(folder, 5, None)[1] is None
        assert _read(folder) == _files(5)
        assert sorted(os.listdir(_spares(folder))) == NAMES
    finally:
        publish.SPARE_QUIET, publish.FOLDER_SWAP_FILES = saved
