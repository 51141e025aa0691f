"""Per-location files (issue 20): each file atomic, ONE flush of their bytes (``syncfs``) and ONE
folder fsync per batch, a file left alone when its bytes did not change, and rewritten when it was
touched behind our back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds import publish, watch
from feeds.publish import write_files


class Fsyncs:
    """Counts fsyncs of files and folders, and the one-call flushes of a filesystem (syncfs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = 0
        self.folders = 0
        self.flushes = 0
        real = os.fsync
        real_flush = publish._flush_files

        def flush(folder: Path, paths: list[str]) -> None:
            self.flushes += 1
            real_flush(folder, paths)

        def counted(fd: int) -> None:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                self.folders += 1
            else:
                self.files += 1
            real(fd)

        monkeypatch.setattr(os, "fsync", counted)
        monkeypatch.setattr(publish, "_flush_files", flush)


def test_one_folder_fsync_per_batch_and_unchanged_files_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "weather"
    files = {f"loc-{i}.json": f'{{"i": {i}}}\n'.encode() for i in range(20)}
    count = Fsyncs(monkeypatch)
    assert sorted(write_files(folder, files)) == sorted(files)
    # Where the C library has syncfs (Linux): no fsync per file, one flush, one folder fsync.
    assert (count.files, count.flushes, count.folders) == ((0 if publish._syncfs() else 20), 1, 1)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert all(watch.generation(folder / name) is not None for name in files)  # watched like the rest
    assert oct((folder / "loc-0.json").stat().st_mode & 0o777) == "0o644"

    changed = dict(files, **{"loc-3.json": b'{"i": 33}\n'})
    count.files = count.folders = count.flushes = 0
    assert write_files(folder, changed) == ["loc-3.json"]
    assert (count.flushes, count.folders) == (1, 1)
    assert (folder / "loc-3.json").read_bytes() == b'{"i": 33}\n'

    count.files = count.folders = count.flushes = 0
    assert write_files(folder, changed) == []
    assert (count.files, count.flushes, count.folders) == (0, 0, 0)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_file_touched_behind_our_back_is_written_again(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    files = {"a.json": b"{}\n", "b.json": b"[]\n", "c.json": b"1\n"}
    write_files(folder, files)
    (folder / "a.json").unlink()
    (folder / "b.json").write_bytes(b"garbage")
    c = folder / "c.json"
    os.replace(folder / "c.json", tmp_path / "moved")
    (tmp_path / "moved").rename(c)  # same bytes, same inode: left alone
    assert sorted(write_files(folder, files)) == ["a.json", "b.json"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_an_error_midway_keeps_every_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "w"
    write_files(folder, {"a.json": b"old a\n", "b.json": b"old b\n"})
    real = publish._stage
    calls = []

    def failing(path: Path, content: bytes, mode: int) -> str:
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, content, mode)

    # Disk full while writing the second temporary file: none is renamed, every file stays old.
    monkeypatch.setattr(publish, "_stage", failing)
    with pytest.raises(OSError):
        write_files(folder, {"a.json": b"new a\n", "b.json": b"new b\n"})
    assert (folder / "a.json").read_bytes() == b"old a\n"
    assert (folder / "b.json").read_bytes() == b"old b\n"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]

    # The flush fails (an I/O error): nothing renamed either; then a rename fails midway:
    # the first file is new (and flushed before its rename), the second old, both whole.
    monkeypatch.setattr(publish, "_stage", real)

    def flush_fails(folder: Path, paths: list[str]) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(publish, "_flush_files", flush_fails)
    with pytest.raises(OSError):
        write_files(folder, {"a.json": b"new a\n", "b.json": b"new b\n"})
    assert (folder / "a.json").read_bytes() == b"old a\n"
    monkeypatch.undo()
    real_replace = os.replace
    renames = []

    def replace_fails(src: str, dst: Path) -> None:
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError):
        write_files(folder, {"a.json": b"new a\n", "b.json": b"new b\n"})
    assert (folder / "a.json").read_bytes() == b"new a\n"
    assert (folder / "b.json").read_bytes() == b"old b\n"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- the previous files kept as spares, rewritten in place (issue 20) ------------------------------
# Creating a file costs 0.5-1 ms of kernel time on this machine's disk (a fresh, empty one: 7 us on
# tmpfs): 3,000 per-location files took 1.5-2.5 s per attempt.  The file a rename replaces is kept
# as a spare (``<folder>/../.spare/<folder name>/``) and, once it has been out of use for
# ``SPARE_QUIET`` seconds, rewritten in place and swapped in by one atomic exchange of names.


def _spares(folder: Path) -> Path:
    return folder.parent / ".spare" / folder.name


def _stage_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    created: list[str] = []
    real = publish._stage

    def stage(path: Path, content: bytes, mode: int) -> str:
        created.append(path.name)
        return real(path, content, mode)

    monkeypatch.setattr(publish, "_stage", stage)
    return created


@pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")
def test_later_writes_create_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    folder = tmp_path / "weather"
    created = _stage_counter(monkeypatch)
    names = [f"loc-{i}.json" for i in range(5)]
    for n in range(4):
        files = {name: f'{{"n": {n}, "name": "{name}"}}\n'.encode() for name in names}
        created.clear()
        assert sorted(write_files(folder, files)) == names
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
        assert all(watch.generation(folder / name) is not None for name in names)
        assert oct((folder / "loc-0.json").stat().st_mode & 0o777) == "0o644"
        # 1st: new files; 2nd: new temporary files, the replaced ones kept as spares; then none.
        assert created == (names if n < 2 else []), n
        assert sorted(p.name for p in _spares(folder).iterdir()) == ([] if n == 0 else names)
        if n >= 1:
            assert (_spares(folder) / "loc-2.json").read_bytes() == f'{{"n": {n - 1}, "name": "loc-2.json"}}\n'.encode()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")
def test_a_spare_is_rewritten_only_when_quiet_and_only_if_plainly_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "w"
    created = _stage_counter(monkeypatch)
    write_files(folder, {"a.json": b"1\n", "b.json": b"1\n", "c.json": b"1\n"})
    write_files(folder, {"a.json": b"2\n", "b.json": b"2\n", "c.json": b"2\n"})
    # Just replaced: a reader (nginx's open_file_cache) may still hold it open: not rewritten.
    created.clear()
    write_files(folder, {"a.json": b"3\n", "b.json": b"3\n", "c.json": b"3\n"})
    assert sorted(created) == ["a.json", "b.json", "c.json"]
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    # A spare with a second name (a hard link someone made) or a symbolic link is never
    # written through: a new file is made instead, the other name keeps its bytes.
    elsewhere = tmp_path / "kept-by-someone"
    os.link(_spares(folder) / "a.json", elsewhere)
    before = elsewhere.read_bytes()
    target = tmp_path / "target"
    target.write_bytes(b"not ours\n")
    (_spares(folder) / "b.json").unlink()
    (_spares(folder) / "b.json").symlink_to(target)
    created.clear()
    write_files(folder, {"a.json": b"4\n", "b.json": b"4\n", "c.json": b"4\n"})
    assert sorted(created) == ["a.json", "b.json"]
    assert elsewhere.read_bytes() == before and target.read_bytes() == b"not ours\n"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"a.json": b"4\n", "b.json": b"4\n", "c.json": b"4\n"}


@pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")
def test_a_failed_exchange_midway_keeps_every_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    folder = tmp_path / "w"
    for n in (1, 2):
        write_files(folder, {"a.json": f"old a {n}\n".encode(), "b.json": f"old b {n}\n".encode()})
    real = publish._exchange
    calls: list[str] = []

    def failing(src: str, dst: str) -> bool:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(publish, "_exchange", failing)
    with pytest.raises(OSError):
        write_files(folder, {"a.json": b"new a\n", "b.json": b"new b\n"})
    assert (folder / "a.json").read_bytes() == b"new a\n"
    assert (folder / "b.json").read_bytes() == b"old b 2\n"
    monkeypatch.setattr(publish, "_exchange", real)
    assert sorted(write_files(folder, {"a.json": b"new a\n", "b.json": b"new b\n"})) == ["b.json"]
    assert (folder / "b.json").read_bytes() == b"new b\n"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")
def test_the_spare_of_a_removed_file_goes_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    for n in (1, 2):
        write_files(folder, {"a.json": f"{n}\n".encode(), "b.json": f"{n}\n".encode()})
    assert sorted(p.name for p in _spares(folder).iterdir()) == ["a.json", "b.json"]
    assert oct(_spares(folder).stat().st_mode & 0o777) == "0o700"  # not for the web server's eyes
    (folder / "b.json").unlink()  # as feeds.portal does for a location no longer configured
    write_files(folder, {"a.json": b"3\n"})
    assert sorted(p.name for p in _spares(folder).iterdir()) == ["a.json"]
