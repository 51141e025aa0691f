"""Local faults: our own machine failing us, not the upstream.

A full disk, a read-only mount, a permission, a directory where a snapshot file should be, a
file where a folder should be: each is classified as ``local`` (``feeds.errors.LocalError``)
with a detail ``<where>:<reason>`` (``publish:disk_full``, ``store:read_only``, ...), so
``status`` and ``check`` say that the machine needs an admin, and the feed's other work (and
the other feeds) go on.

Also here: the start-up sweep of temporary files left by killed writes, and the folder probe
that ``status``/``check`` use to see a fault the daemon cannot record (its cache on a full or
read-only disk).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from pathlib import Path

from feeds.errors import LocalError

__all__ = [
    "NOT_WRITTEN",
    "STALE_TEMP_AGE",
    "local_error",
    "probe_folder",
    "reason_of",
    "remove_stale_temps",
    "sqlite_reason",
]

logger = logging.getLogger(__name__)

#: The status of an attempt whose snapshot could not be written (health only, never in a
#: snapshot: the file on disk is still the previous one).
NOT_WRITTEN = "not_written"

_ERRNO_REASON = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EFBIG: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "permission",
    errno.EPERM: "permission",
    errno.EISDIR: "is_a_directory",
    errno.ENOTDIR: "not_a_directory",
    errno.EEXIST: "not_a_directory",  # mkdir over a file
    errno.ENAMETOOLONG: "name_too_long",
    errno.EMFILE: "too_many_open_files",
    errno.ENFILE: "too_many_open_files",
}

_TEXT = {
    "disk_full": "no space left on the disk",
    "read_only": "the file system is read-only",
    "permission": "permission denied",
    "is_a_directory": "a directory is where the file should be",
    "not_a_directory": "a file is where a folder should be",
    "name_too_long": "the file name is too long",
    "too_many_open_files": "too many open files",
    "busy": "another process held the cache lock",
    "corrupt": "the cache could not be read",
    "io": "an input/output error",
}


def reason_of(exc: BaseException) -> str:
    """A short reason for a local fault: ``disk_full``, ``read_only``, ``permission``, ..."""
    if isinstance(exc, sqlite3.DatabaseError):
        return sqlite_reason(exc) or "corrupt"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASON:
        return _ERRNO_REASON[exc.errno]
    return "io"


# SQLite primary result codes that are our machine's fault, not a damaged database.
_SQLITE_LOCAL = {
    3: "permission",  # SQLITE_PERM
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
    7: "io",  # SQLITE_NOMEM
    8: "read_only",  # SQLITE_READONLY
    13: "disk_full",  # SQLITE_FULL
    14: "permission",  # SQLITE_CANTOPEN (folder missing, unreadable, or a file in its place)
    10: "io",  # SQLITE_IOERR (the caller checks the file before calling it local)
}


def sqlite_reason(exc: sqlite3.DatabaseError) -> str | None:
    """The local reason of a SQLite error, or None when it means a damaged database."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    return _SQLITE_LOCAL.get(code & 0xFF)


def local_error(where: str, exc: BaseException | str) -> LocalError:
    """A ``LocalError`` for a failure at ``where`` (``publish`` or ``store``)."""
    reason = exc if isinstance(exc, str) else reason_of(exc)
    what = "the snapshot could not be written" if where == "publish" else "the cache could not be used"
    return LocalError(f"{what}: {_TEXT.get(reason, reason)}", detail=f"{where}:{reason}")


#: Temporary files of killed writes older than this are removed at start.
STALE_TEMP_AGE = 300.0


def remove_stale_temps(folder: Path, max_age: float = STALE_TEMP_AGE) -> int:
    """Remove ``.NAME.*.tmp`` files older than ``max_age`` seconds (writes killed midway), in
    ``folder`` and the folders right under it.

    Every published file (``feeds.publish.write_atomic``: ``.json`` snapshots and any other
    output) writes its temporary file under that name in its own folder.  A write in progress
    is seconds old, so it is never touched.  Returns how many were removed; never raises.
    """
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    # Per-location files are published one folder down (``<feed>/<id>.json``).
    for sub in [e for e in entries if e.is_dir(follow_symlinks=False)]:
        with contextlib.suppress(OSError):
            entries.extend(os.scandir(sub.path))
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or now - st.st_mtime < max_age:
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError:
            continue
    if removed:
        logger.info("removed stale temporary files folder=%s count=%d", folder, removed)
    return removed


#: Less free space than this on a folder's file system counts as a full disk.
MIN_FREE_BYTES = 64 * 1024


def probe_folder(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (a reason of ``reason_of``), or None.

    A cheap check without writing anything, for ``status`` and ``check``: they can see what
    a daemon whose cache is on a full or read-only disk could not record there.
    """
    try:
        if not folder.exists():
            return None  # created at the first write
        if not folder.is_dir():
            return "not_a_directory"
        st = os.statvfs(folder)
    except OSError as exc:
        return reason_of(exc)
    if st.f_flag & os.ST_RDONLY:
        return "read_only"
    # Permissions are not judged here: status may run as another user than the daemon.
    if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
        return "disk_full"
    return None
