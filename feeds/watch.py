"""What was last written to each published file, so the daemon can notice when it changes.

``feeds.publish.write_atomic`` calls ``record_written(path, content)`` after every write: the
file's digest, size and identity (inode, mtime, ctime) are kept in memory.  ``check()`` then
tells which recorded files are missing or no longer hold what was written -- deleted by a
clean-up script, replaced by garbage, truncated by a full disk, edited by hand.  The daemon
(``feeds.daemon``) runs it every ``WATCH_EVERY`` seconds and republishes the feed.

Cheap by design: a ``stat`` per file; the file is read and hashed only when its identity
changed (a ``touch``, a copy of the same bytes over it), and if the bytes are the same, the
new identity is recorded and nothing is reported.  A write by another process through
``write_atomic`` (``portal-feeds fetch`` beside the daemon) changes the identity too, and is
reported once as ``changed``: the daemon's rewrite then comes from the same store.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Damage", "Watcher", "WATCHER", "check", "content_digest", "forget", "generation", "record_written"]


@dataclass(frozen=True)
class _Mark:
    """What one file held when it was last written, and how it looked on disk."""

    digest: bytes
    size: int
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_ctime_ns
    generation: int


@dataclass(frozen=True)
class Damage:
    """A recorded file that no longer holds what was written: ``missing`` or ``changed``."""

    path: Path
    reason: str


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _digest(content: bytes) -> bytes:
    return hashlib.blake2b(content, digest_size=20).digest()


#: What ``record_written`` remembers of a file's bytes (callers that need one too share it).
content_digest = _digest


def _key(path: Path | str) -> str:
    """The text a path is recorded by (normalized as ``Path`` does)."""
    return str(Path(path))


def _within(path: str, folder: str) -> bool:
    """``Path(path).is_relative_to(folder)``, on normalized texts."""
    return path == folder or path.startswith(folder if folder.endswith("/") else folder + "/")


class Watcher:
    """The per-path record of the last write (thread-safe; one per process is enough)."""

    def __init__(self) -> None:
        #: By the path's text (``str(Path(...))``): 3,000 per-location files are recorded per
        #: attempt, and a Path made and hashed for each cost ~10 ms (issue 20).
        self._marks: dict[str, _Mark] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def record_written(
        self, path: Path | str, content: bytes, st: os.stat_result | None = None, *, digest: bytes | None = None
    ) -> None:
        """Remember what ``path`` now holds (called right after the write; ``st``: its stat
        then, and ``digest``: ``content_digest(content)``, if the caller has them)."""
        if st is None:
            try:
                st = os.stat(path)
            except OSError:
                return  # gone already: nothing we wrote is there to watch
        key = path if type(path) is str else _key(path)  # a str: already a plain path (write_files)
        with self._lock:
            self._generation += 1
            self._marks[key] = _Mark(
                _digest(content) if digest is None else digest, len(content), _identity(st), self._generation
            )

    def generation(self, path: Path) -> int | None:
        """A number that grows with each write of ``path`` (None: not recorded)."""
        with self._lock:
            mark = self._marks.get(_key(path))
        return mark.generation if mark else None

    def forget(self, path: Path) -> None:
        with self._lock:
            self._marks.pop(_key(path), None)

    def paths(self) -> list[Path]:
        with self._lock:
            return [Path(p) for p in self._marks]

    def check(self, under: Path | None = None) -> list[Damage]:
        """Every recorded file (inside ``under``) that is missing or differs from what was written."""
        with self._lock:
            inside = None if under is None else _key(under)
            marks = [(p, m) for p, m in self._marks.items() if inside is None or _within(p, inside)]
        found = []
        for path, mark in marks:
            reason = self._check_one(path, mark)
            if reason is not None:
                found.append(Damage(Path(path), reason))
        return found

    def _check_one(self, path: str, mark: _Mark) -> str | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "unreadable"
        identity = _identity(st)
        if identity == mark.identity and st.st_size == mark.size:
            return None
        if st.st_size != mark.size:
            return "changed"
        try:
            with open(path, "rb") as f:
                content = f.read(mark.size + 1)
        except IsADirectoryError:
            return "changed"
        except OSError:
            return "unreadable"
        if _digest(content) != mark.digest:
            return "changed"
        # Same bytes, new identity (touched, copied back): keep watching the new one.
        with self._lock:
            if self._marks.get(path) is mark:
                self._marks[path] = _Mark(mark.digest, mark.size, identity, mark.generation)
        return None


#: The process's watcher: every ``write_atomic`` records into it.
WATCHER = Watcher()


def record_written(
    path: Path | str, content: bytes, st: os.stat_result | None = None, *, digest: bytes | None = None
) -> None:
    """Record a completed write of ``path`` (``feeds.publish.write_atomic``)."""
    WATCHER.record_written(path, content, st, digest=digest)


def check(under: Path | None = None) -> list[Damage]:
    """Recorded files (inside ``under``) that are missing or differ from what was written."""
    return WATCHER.check(under)


def generation(path: Path) -> int | None:
    return WATCHER.generation(path)


def forget(paths: Path | Iterable[Path]) -> None:
    """Stop watching ``paths`` (a feed removed, a file we no longer write)."""
    for p in [paths] if isinstance(paths, Path) else paths:
        WATCHER.forget(p)
