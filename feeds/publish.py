"""Snapshot publishing: build the v1 document, serialize it exactly, write it atomically.

The write follows the usual crash-safe recipe: a temporary file in the same folder, write,
flush, fsync, ``os.replace`` over the old file, fsync of the folder.  A reader (a PHP page,
nginx) sees either the whole old file or the whole new one, never a mix, and a crash at any
point leaves the previous snapshot in place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from feeds.models import isoformat
from feeds.priority import lower_thread_priority
from feeds.watch import content_digest, record_written

__all__ = ["SCHEMA_VERSION", "build_snapshot", "dumps", "write_atomic", "write_files", "write_snapshot"]

SCHEMA_VERSION = 1


def build_snapshot(
    *,
    feed: str,
    kind: str,
    status: str,
    generated_at: datetime,
    fetched_at: datetime | None,
    as_of: datetime | None,
    stale_since: datetime | None,
    next_update_at: datetime | None,
    source_name: str | None,
    source_url: str | None,
    data: Mapping[str, Any] | None,
    upstream_stale_since: datetime | None = None,
    expires_at: datetime | None = None,
    widget: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble one snapshot document in the documented key order."""
    return {
        "schema_version": SCHEMA_VERSION,
        "feed": feed,
        "kind": kind,
        "status": status,
        "generated_at": isoformat(generated_at),
        "fetched_at": isoformat(fetched_at),
        "as_of": isoformat(as_of),
        "stale_since": isoformat(stale_since),
        "upstream_stale_since": isoformat(upstream_stale_since),
        "next_update_at": isoformat(next_update_at),
        "expires_at": isoformat(expires_at),
        "source": (
            {"name": source_name, "url": source_url} if source_name and source_url else None
        ),
        "data": dict(data) if data is not None else None,
        "widget": dict(widget) if widget is not None else None,
    }


def _number(value: Decimal | float) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal in snapshot")
        # Fixed-point text of the exact value: 26081.50 -> "26081.5", 25850 -> "25850".
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    if not math.isfinite(value):
        raise ValueError("non-finite float in snapshot")
    return _float_text(value)  # as orjson writes it (the fast paths)


#: A list of more plain items than this (a weather feed's locations) is written one compact
#: item per line (orjson's bytes): ~10x faster than the indented form, and the file is about
#: half the size.  Smaller lists and everything else stay indented.
INLINE_ITEMS = 50
_SCALARS = (str, int, bool, float)


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what the json module writes exactly as we do."""
    t = type(value)
    if value is None or t in _SCALARS:
        return t is not float or math.isfinite(value)
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if t is list or t is tuple:
        return all(_plain(v) for v in value)
    return False  # Decimal, datetime, subclasses: our own encoding


_JSON_TYPES = frozenset({str, int, bool, type(None), float, dict, list, tuple})


def _inline_fits(value: Any) -> bool:
    """Whether orjson writes ``value`` indented exactly as ``_encode`` would, as far as a walk
    must tell: no list longer than ``INLINE_ITEMS``, no NaN or infinity (orjson writes
    ``null``), no type but JSON's own (the rest orjson refuses under ``_ORJSON_STRICT``:
    Decimals, datetimes, subclasses, non-str keys, ints past 64 bits).  One pass, no
    recursion: two walks before (a plainness check and ``fastjson.finite``; 3,000 per-location
    files: ~250 ms).
    """
    top = type(value)
    if top is not dict and top is not list and top is not tuple:
        return top in _JSON_TYPES and (top is not float or value - value == 0.0)
    if top is not dict and len(value) > INLINE_ITEMS:
        return False
    most = INLINE_ITEMS
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        container = pop()
        # The scalars (most values) checked in place, only containers pushed (~2x faster than
        # pushing every value: 3,000 per-location files, issue 20).
        for v in container.values() if type(container) is dict else container:
            t = type(v)
            if t is str or t is int or v is None or t is bool:
                continue
            if t is float:
                if v - v != 0.0:  # inf - inf and NaN - NaN are NaN
                    return False
            elif t is dict:
                push(v)
            elif t is list or t is tuple:
                if len(v) > most:
                    return False
                push(v)
            else:
                return False
    return True


def _float_text(value: float) -> str:
    """A finite float as orjson writes it: ``repr``'s shortest digits, fixed notation down to
    1e-5 (``0.00002``), the exponent otherwise without padding (``1e-6``, ``1e+16``)."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    e = int(exp)
    if e == -5:
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"


def _inline(value: Any) -> str:
    """One plain value on one line, compact, in pure Python (the reference for orjson)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_inline(k)}:{_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_inline(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value) if isinstance(value, int) else _float_text(value)


#: orjson writes these types natively in its own way; passed through, they raise TypeError and
#: the list takes the Python path (as ``_plain`` rules).
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


#: Put between a long list's items to encode them in one orjson call: its text, as orjson writes
#: it between two items, is what the line breaks replace.  A value equal to it elsewhere in the
#: list shows as one mark too many: then each item is encoded alone.
_MARK = "\x00portal-feeds item\x00"
_MARK_TEXT = b',"\\u0000portal-feeds item\\u0000",'


def _joined(value: list[Any] | tuple[Any, ...], line: bytes) -> memoryview | None:
    """The items of a long list, compact, ``line`` between each two: one orjson call for the
    whole list instead of one per item (3,000 locations: ~11 -> ~5 ms, issue 20); None when
    that cannot be done exactly (``_items`` then decides).  A view without the brackets: the
    2.7 MB of a 3,000-location list are copied once more, into the document, not three times.
    """
    marked: list[Any] = [_MARK] * (2 * len(value) - 1)
    marked[0::2] = value
    try:
        text = orjson.dumps(marked, option=_ORJSON_STRICT)
    except TypeError:
        return None
    sep = b"," + line
    joined = text.replace(_MARK_TEXT, sep)
    # Each mark replaced changes the length by the same nonzero amount: a value holding the
    # mark's text (one replacement too many) shows in the length.
    if len(joined) != len(text) + (len(value) - 1) * (len(sep) - len(_MARK_TEXT)):
        return None
    return memoryview(joined)[1:-1]


def _items(value: list[Any] | tuple[Any, ...]) -> list[bytes] | None:
    """Each item of a long list on its own line, compact, by orjson (a weather feed's 3,000
    locations in ~7 ms instead of ~60 ms, issue 20); None when an item is not plain JSON
    (a Decimal, a datetime, a subclass, a non-str key, an int past 64 bits).

    Non-finite floats never get here in a snapshot (feeds.bounds refuses them before);
    orjson would write them as ``null``.
    """
    try:
        return [orjson.dumps(v, option=_ORJSON_STRICT) for v in value]
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def _encode(value: Any, out: list[str | bytes | memoryview], indent: str, level: int, fast: bool = True) -> None:
    if isinstance(value, list | tuple) and len(value) > INLINE_ITEMS:
        line = ("\n" + indent * (level + 1)).encode("ascii")
        joined: bytes | memoryview | None = _joined(value, line) if fast else None
        if joined is None:
            items = (
                _items(value) if fast
                else ([_inline(v).encode("utf-8") for v in value] if _plain(value) else None)
            )
            # Joined as bytes, as orjson gave them (3 MB decoded, padded and encoded again
            # took 20 ms of a 3,000-location publish).
            joined = (b"," + line).join(items) if items is not None else None
        if joined is not None:
            out.extend((b"[" + line, joined, b"\n" + indent.encode("ascii") * level + b"]"))
            return
    pad = "\n" + indent * (level + 1)
    end = "\n" + indent * level
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal | float):
        out.append(_number(value))
    elif isinstance(value, datetime):
        out.append(json.dumps(isoformat(value)))
    elif isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            out.append(("," if i else "") + pad + json.dumps(str(k), ensure_ascii=False) + ": ")
            _encode(v, out, indent, level + 1, fast)
        out.append(end + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, v in enumerate(value):
            out.append(("," if i else "") + pad)
            _encode(v, out, indent, level + 1, fast)
        out.append(end + "]")
    else:
        raise TypeError(f"cannot serialize {type(value).__name__} in a snapshot")


def dumps(document: Any, indent: int = 2, *, fast: bool = True) -> bytes:
    """Serialize to UTF-8 JSON: Vietnamese unescaped, Decimals as their exact value.

    ``fast=False`` encodes every value in Python (the reference the fast path is tested against).
    """
    if fast and indent == 2:
        # A small plain document (a per-location file): orjson writes exactly our bytes, ~10x
        # faster than the json module, whose indented form is pure Python (issue 20: 3,000
        # per-location files took 260 ms).  Otherwise (an int past 64 bits...) the Python path.
        text = dumps_nested(document, 0)
        if text is not None:
            return text + b"\n"
    out: list[str | bytes | memoryview] = []
    _encode(document, out, " " * indent, 0, fast)
    out.append("\n")
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in out)


def dumps_nested(value: Any, level: int) -> bytes | None:
    """``value`` as ``dumps`` writes it ``level`` indents deep inside a document (without the
    final newline), where orjson writes it so (``_inline_fits``); None otherwise."""
    if not _inline_fits(value):
        return None
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | _ORJSON_STRICT)
    except TypeError:  # an int past 64 bits
        return None
    # JSON text holds no raw newline but between values: each one starts an indented line.
    return text.replace(b"\n", b"\n" + b"  " * level) if level else text


def write_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``content`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, content, mode)
    _fsync_folder(path.parent)
    record_written(path, content)  # the daemon's watch over published files (feeds.watch)


#: Per file written by ``write_files``: a digest of its bytes and the file's identity after the
#: write (inode, size, mtime), so an unchanged file is not written again.
_WRITTEN: dict[str, tuple[bytes, tuple[int, int, int]]] = {}
_WRITTEN_LOCK = threading.Lock()


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_files(folder: Path, files: Mapping[str, bytes], mode: int = 0o644) -> list[str]:
    """Write many files into one folder, durably and atomically, with ONE flush for them all;
    return the names written.

    Every new content goes to a file beside its target first; then one ``syncfs(2)`` of the
    folder's filesystem makes them all durable (where the C library lacks it: an fsync per
    file), then each is renamed over its target, then ONE fsync of the folder.  The same
    durability as ``write_atomic`` per file — a file's bytes are on disk before its new name
    is — for two flushes instead of one per file (3,000 per-location files: 3,000 fsyncs
    before, issue 20).

    The file a write replaces is kept as a spare (``<folder>/../.spare/<folder name>/``, a
    folder only we may read) and, once it has been out of use for ``SPARE_QUIET`` seconds,
    rewritten in place with the next content and swapped in by one atomic exchange of the two
    names (``renameat2(RENAME_EXCHANGE)``): creating a file costs 0.5-1 ms of kernel time on
    some disks, and a weather feed's 3,000 files took 1.5-2.5 s per attempt that way.  A spare
    is only rewritten if it is plainly ours: a regular file with no other name, while no other
    process writes the folder.  Where the exchange is not supported, a new file every time.

    When every file changes (a weather feed's files, each with its own ``fetched_at``) and
    there are ``FOLDER_SWAP_FILES`` or more, the spares' folder is rewritten whole and the two
    FOLDERS are exchanged, one atomic exchange instead of one per file (``_swap_folder``):
    readers then get every new file at once, never a mix of old and new.

    A file whose bytes are those we last wrote there, still in place untouched (same inode,
    size and mtime), is not written again.  A crash at any point leaves every file whole:
    old or new.  An error while writing the new files swaps in none of them (every file
    stays old); the files swapped in before a later error are still made durable and
    recorded.
    """
    folder.mkdir(parents=True, exist_ok=True)
    base = str(folder)
    stop_preparing(folder)  # its lock, and what it made so far, are this write's
    spares = _spare_folder(folder)
    # Names as strings, not Paths, per file (3,000 per-location files: ~50k Path hashes and
    # copies took ~40 ms of each attempt; issue 20).
    # name, the file to swap in, bytes, digest, whether that file is a rewritten spare
    staged: list[tuple[str, str, bytes, bytes, bool]] = []
    # name, bytes, digest, the file's stat once in place (None: looked up after)
    done: list[tuple[str, bytes, bytes, os.stat_result | None]] = []
    swapped_folder = False
    try:
        changed: list[tuple[str, bytes, bytes]] = []
        with _WRITTEN_LOCK:
            known = [_WRITTEN.get(f"{base}/{name}") for name in files]
        for (name, content), seen in zip(files.items(), known, strict=True):
            digest = content_digest(content)
            if seen is not None and seen[0] == digest:
                try:
                    if _identity(os.stat(f"{base}/{name}")) == seen[1]:
                        continue
                except OSError:
                    pass
            changed.append((name, content, digest))
        if spares is not None and len(changed) == len(files) >= FOLDER_SWAP_FILES:
            whole = _swap_folder(folder, spares, changed, mode)
            if whole is not None:
                done, swapped_folder = list(whole), True
                return [name for name, _, _, _ in done]
        for name, content, digest in changed:
            spare = f"{spares.path}/{name}" if spares is not None else ""
            if spares is not None and _rewrite_spare(spare, content, mode, spares.left_use_at):
                staged.append((name, spare, content, digest, True))
            else:
                staged.append((name, _stage(folder / name, content, mode), content, digest, False))
        if staged:
            _flush_files(folder, [src for _, src, _, _, _ in staged])
        for name, src, content, digest, reused in staged:
            _swap_in(src, f"{base}/{name}", reused, spares)
            done.append((name, content, digest, None))
    finally:
        swapped = {name for name, _, _, _ in done}
        for name, src, _, _, reused in staged:
            if name not in swapped and not reused:  # a rewritten spare stays a spare
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(src)
        if spares is not None:
            with contextlib.suppress(OSError):
                _prune_spares(spares.path, folder)
            spares.close()
        if done:
            if swapped_folder:
                # Both folders' entries changed: the exchange is durable once both parents are.
                _fsync_folder(folder.parent)
                _fsync_folder(folder.parent / SPARE_FOLDER)
            else:
                _fsync_folder(folder)
            for name, content, digest, st in done:
                target = f"{base}/{name}"
                if st is None:
                    try:
                        st = os.stat(target)
                    except OSError:
                        continue  # gone already: nothing we wrote is there to remember
                with _WRITTEN_LOCK:
                    _WRITTEN[target] = (digest, _identity(st))
                record_written(target, content, st, digest=digest)
    return [name for name, _, _, _ in done]


#: Seconds a replaced file is left alone before it is rewritten as a later version: a reader may
#: still hold it open (nginx's ``open_file_cache`` serves a cached descriptor for
#: ``open_file_cache_valid``, 60 s by default, before it looks at the name again).
SPARE_QUIET = 120.0
#: The spares' folder, beside the folder of the files they were (``write_files``).
SPARE_FOLDER = ".spare"
#: From this many files, a write that changes every one of them exchanges the two folders
#: (``_swap_folder``) instead of each file with its spare: 3,000 per-location files, ~115 ->
#: ~65 ms per attempt on this disk (issue 20).  Below it, the exchanges per file cost < 1 ms.
FOLDER_SWAP_FILES = 64


class _Spares:
    """The spares' folder of one ``write_files`` call, locked against other processes.

    The lock is a file beside the folder (``.spare/.<folder name>.lock``), not the folder
    itself: the folder changes places with the published one (``_swap_folder``).  The lock
    file's mtime says when the spares last left public use together (a folder exchange): a
    spare is quiet only ``SPARE_QUIET`` seconds after that, and after its own last exchange.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.left_use_at = os.fstat(fd).st_mtime

    def left_use_now(self) -> None:
        now = time.time()
        os.utime(self.fd, (now, now))

    def close(self) -> None:
        os.close(self.fd)  # drops the flock


def _spare_folder(folder: Path) -> _Spares | None:
    """``folder``'s spares' folder (made, mode 0700), locked (``flock``) for this call; None
    where names cannot be exchanged here or another process writes the folder now."""
    if not _exchange_supported():
        return None
    path = folder.parent / SPARE_FOLDER / folder.name
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(
            folder.parent / SPARE_FOLDER / f".{folder.name}.lock",
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
        )
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_size == 0:
            _first_lock(fd, path)
        return _Spares(path, fd)
    except OSError:
        os.close(fd)
        return None


def _first_lock(fd: int, spares: Path) -> None:
    """A lock file just made (empty): its mtime says when the spares left use.  Spares that
    were never published (``prepare_spares``'s) have never been in use: the epoch.  Any
    other spare may have been public a moment ago: now, as the lock file was just made.
    Marked (one byte) so that this is decided once."""
    os.pwrite(fd, b"\n", 0)  # its mtime: now
    if all(_never_published(e.stat(follow_symlinks=False)) for e in os.scandir(spares)):
        os.utime(fd, (0, 0))


#: The mode of a spare ``prepare_spares`` made: writable by us, readable by nobody (a published
#: file is readable), so ``_never_published`` knows it.
PREPARED_MODE = 0o200
#: How much nicer than the process the thread making spares is (``feeds.priority``).
PREPARE_NICE = 10
_PREPARING: dict[str, tuple[threading.Thread, threading.Event]] = {}
_PREPARING_LOCK = threading.Lock()


def prepare_spares(folder: Path, names: Sequence[str]) -> None:
    """Make, in a background thread at low priority, the spares a ``write_files`` of ``names``
    into ``folder`` will want and that do not exist yet: empty files readable by nobody,
    which were never published (``_never_published``) and so are rewritten at once.

    Creating a file costs 0.1-0.7 ms of kernel time on this machine's disk: the 3,000 files
    of a weather feed's first publish with per-location files (and the spares of its second)
    took longer than the rest of the attempt.  Made while the attempt waits on the network,
    they cost it little.  ``write_files`` stops the thread (and waits for the file it is
    making) before it writes the folder, and makes whatever is still missing itself.  Returns
    at once; never raises.
    """
    if not _exchange_supported():
        return
    base = str(folder)
    with _PREPARING_LOCK:
        if base in _PREPARING:
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_prepare, args=(folder, list(names), stop), name="feeds-spares", daemon=True
        )
        _PREPARING[base] = (thread, stop)
    thread.start()


def _prepare(folder: Path, names: list[str], stop: threading.Event) -> None:
    base = str(folder)
    try:
        lower_thread_priority(PREPARE_NICE)
        folder.mkdir(parents=True, exist_ok=True)  # as the write would (empty meanwhile)
        spares = _spare_folder(folder)
        if spares is None:
            return
        try:
            dfd = os.open(spares.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                present = set(os.listdir(dfd))
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                for name in names:
                    if stop.is_set():
                        break
                    if name not in present:
                        with contextlib.suppress(FileExistsError):
                            os.close(os.open(name, flags, PREPARED_MODE, dir_fd=dfd))
            finally:
                os.close(dfd)
        finally:
            spares.close()
    except OSError:
        pass  # nothing lost: the write makes what is missing itself
    finally:
        with _PREPARING_LOCK:
            if _PREPARING.get(base, (None,))[0] is threading.current_thread():
                del _PREPARING[base]


def stop_preparing(folder: Path) -> None:
    """Stop ``prepare_spares``'s thread for ``folder``, if one runs, and wait for it."""
    with _PREPARING_LOCK:
        job = _PREPARING.get(str(folder))
    if job is not None and job[0] is not threading.current_thread():
        job[1].set()
        job[0].join()


def _never_published(st: os.stat_result) -> bool:
    """Whether a spare is one ``prepare_spares`` made and nobody wrote since: an empty
    regular file only we may write and nobody may read (a published file is readable)."""
    return stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == PREPARED_MODE and st.st_size == 0


def _prune_spares(spares: Path, folder: Path) -> None:
    """Remove the spares of files no longer in ``folder`` (a location dropped from the
    configuration)."""
    present = set(os.listdir(folder))
    for entry in os.scandir(spares):
        if entry.name not in present:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _rewrite_spare(spare: str, content: bytes, mode: int, left_use_at: float = 0.0) -> bool:
    """Write ``content`` over the spare (not yet flushed); False if there is none fit for it:
    none, not a regular file of ours with one name, or out of use for less than
    ``SPARE_QUIET`` seconds (since its own exchange, or the spares' folder's: ``left_use_at``)."""
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not _fit_to_rewrite(st, os.geteuid(), time.time(), left_use_at):
            return False
        _write_over(fd, st, content, mode)
    except OSError:
        return False  # a partial spare is still only a spare; a new file is made instead
    finally:
        os.close(fd)
    return True


def _fit_to_rewrite(st: os.stat_result, euid: int, now: float, left_use_at: float) -> bool:
    """Whether a spare may be written in place: a regular file of ours with no other name,
    out of use for ``SPARE_QUIET`` seconds (since its own exchange, and since the spares'
    folder's, ``left_use_at``) -- or never published (``_never_published``)."""
    return (
        stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == euid
        and (now - max(st.st_ctime, left_use_at) >= SPARE_QUIET or _never_published(st))
    )


def _write_over(fd: int, st: os.stat_result | None, content: bytes, mode: int) -> None:
    """``content`` written over the open file ``fd`` (``st``: its stat before; None: new)."""
    view, at = memoryview(content), 0
    while at < len(content):
        at += os.pwrite(fd, view[at:], at)
    # Cut after the write, not before (a truncation to nothing makes ext4 flush the file at
    # close: its "replace by truncate" heuristic, 10x the cost), and only if it was longer.
    if st is not None and st.st_size > len(content):
        os.ftruncate(fd, len(content))
    if st is None or stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)


class _NotPlain(Exception):
    """The spares' folder holds something not plainly ours: the files are exchanged one by one."""


def _swap_folder(
    folder: Path, spares: _Spares, changed: list[tuple[str, bytes, bytes]], mode: int
) -> list[tuple[str, bytes, bytes, os.stat_result]] | None:
    """Every file of ``folder`` new (``changed``: name, bytes, digest, every file of the
    write): the spares' folder rewritten whole, flushed, then the two folders exchanged by
    one ``renameat2(RENAME_EXCHANGE)``; the files written, with their stat once in place.
    None, with ``folder`` untouched, where it cannot be done so -- then each file is
    exchanged with its spare (``write_files``):

    - the folders are not two plain folders of ours on one filesystem, with the same owner
      and group and no extended attributes (an ACL, a security label: a swapped folder would
      not carry the published one's);
    - ``folder`` holds a name that is not one of the write's (a file somebody put there, a
      temporary file): it would leave with the old folder;
    - the spares left use less than ``SPARE_QUIET`` seconds ago (a reader may still hold them);
    - the spares' folder holds something other than files (a folder, say);
    - the filesystem cannot exchange two folders.

    A spare that is not plainly ours (another name, a link, another owner) or not quiet yet
    is replaced by a new file, never written through.  An OSError while rewriting the spares
    leaves ``folder`` untouched and is raised.
    """
    public, private = str(folder), str(spares.path)
    euid = os.geteuid()
    now = time.time()
    try:
        pub, prv = os.lstat(public), os.lstat(private)
        if (
            not (stat.S_ISDIR(pub.st_mode) and stat.S_ISDIR(prv.st_mode))
            or pub.st_dev != prv.st_dev
            or pub.st_uid != euid or prv.st_uid != euid or pub.st_gid != prv.st_gid
            or now - spares.left_use_at < SPARE_QUIET
            or _xattrs(public) or _xattrs(private)
        ):
            return None
        names = {name for name, _, _ in changed}
        present = set(os.listdir(public))
        if not present <= names:
            return None
        dfd = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    done: list[tuple[str, bytes, bytes, os.stat_result]] = []
    try:
        if os.fstat(dfd).st_ino != prv.st_ino:
            return None  # replaced since
        for extra in set(os.listdir(dfd)) - names:
            try:
                os.unlink(extra, dir_fd=dfd)
            except IsADirectoryError:
                return None
        try:
            for name, content, digest in changed:
                done.append((name, content, digest, _new_spare(dfd, name, content, mode, euid, now, spares.left_use_at)))
        except _NotPlain:
            return None
        _flush_files(spares.path, [f"{private}/{name}" for name in names])
        # The published files leave use now: marked before they do (a spare is rewritten only
        # SPARE_QUIET after this), and again once they have.  An empty folder: none leaves.
        if present:
            spares.left_use_now()
        os.fchmod(dfd, stat.S_IMODE(pub.st_mode))  # readable as the published folder is
        try:
            exchanged = _exchange(private, public)
        except BaseException:
            with contextlib.suppress(OSError):
                os.fchmod(dfd, 0o700)
            raise
        if not exchanged:
            os.fchmod(dfd, 0o700)
            return None
    finally:
        os.close(dfd)
    # The published folder of a moment ago holds the spares now: private, and out of use from now.
    with contextlib.suppress(OSError):
        os.chmod(private, 0o700)
    if present:
        with contextlib.suppress(OSError):
            spares.left_use_now()
    return done


def _new_spare(
    dfd: int, name: str, content: bytes, mode: int, euid: int, now: float, left_use_at: float
) -> os.stat_result:
    """``content`` in the spare ``name`` of the open spares' folder ``dfd``: the spare
    rewritten in place when it is plainly ours and quiet, else a new file in its place.
    Returns the file's stat after the write.  ``_NotPlain``: not a file at all."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        fd = -1
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: never followed, replaced
            os.unlink(name, dir_fd=dfd)
            fd = -1
        elif exc.errno == errno.EISDIR:
            raise _NotPlain(name) from None
        else:
            raise
    st: os.stat_result | None = None
    if fd >= 0:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _NotPlain(name)
        except BaseException:
            os.close(fd)
            raise
        if not _fit_to_rewrite(st, euid, now, left_use_at):
            # Another name keeps these bytes, or a reader may still: a new file instead.
            os.close(fd)
            os.unlink(name, dir_fd=dfd)
            fd, st = -1, None
    if fd < 0:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        _write_over(fd, st, content, mode)
        return os.fstat(fd)
    finally:
        os.close(fd)


def _xattrs(path: str) -> bool:
    """Whether ``path`` has extended attributes (an ACL, a security label)."""
    try:
        return bool(os.listxattr(path, follow_symlinks=False))
    except (OSError, AttributeError):
        return False  # none supported here: none to lose


def _swap_in(src: str, path: str, reused: bool, spares: _Spares | None) -> None:
    """Put ``src`` (flushed) at ``path``; the file it replaces becomes ``path``'s spare."""
    if reused:
        try:
            if _exchange(src, path):
                return
        except FileNotFoundError:
            pass  # no file at ``path`` (removed meanwhile): the spare takes its place
        os.rename(src, path)
        return
    if spares is not None:
        # The file about to be replaced, kept by a second name (a link, no new file).
        spare = f"{spares.path}/{os.path.basename(path)}"
        with contextlib.suppress(OSError):
            os.unlink(spare)
        with contextlib.suppress(OSError):
            os.link(path, spare, follow_symlinks=False)
    os.replace(src, path)


_RENAMEAT2: Any = None
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2() -> Any:
    """The C library's ``renameat2`` (Linux), or False where there is none."""
    global _RENAMEAT2
    if _RENAMEAT2 is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _RENAMEAT2 = fn
        except (OSError, AttributeError):
            _RENAMEAT2 = False
    return _RENAMEAT2


def _exchange_supported() -> bool:
    return bool(_renameat2())


def _exchange(a: str, b: str) -> bool:
    """Swap the names ``a`` and ``b`` atomically; False where the filesystem cannot (the
    caller then renames); FileNotFoundError if either is missing."""
    import ctypes

    fn = _renameat2()
    if not fn:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), b)


_STAGED = itertools.count()


def _stage(path: Path, content: bytes, mode: int) -> str:
    """``content`` in a new temporary file beside ``path`` (not yet flushed); its name.

    Named by process and a counter (``O_EXCL``: never another's file), not by ``mkstemp``'s
    random tries, and written with ``os.write`` (no file object): the cost of 3,000 of them is
    then the filesystem's (issue 20).
    """
    folder = str(path.parent)
    while True:
        tmp = f"{folder}/.{path.name}.{os.getpid()}-{next(_STAGED)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            break
        except FileExistsError:  # a leftover of an earlier process with our pid
            continue
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


_SYNCFS: Any = None


def _syncfs() -> Any:
    """The C library's ``syncfs`` (Linux), or False where there is none."""
    global _SYNCFS
    if _SYNCFS is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).syncfs
            fn.argtypes = [ctypes.c_int]
            fn.restype = ctypes.c_int
            _SYNCFS = fn
        except (OSError, AttributeError):
            _SYNCFS = False
    return _SYNCFS


def _flush_files(folder: Path, paths: list[str]) -> None:
    """Make the written bytes of ``paths`` (all in ``folder``) durable: one ``syncfs`` of the
    folder's filesystem, or an fsync per file where there is no ``syncfs``."""
    fn = _syncfs()
    if fn:
        import ctypes

        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if fn(dir_fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(folder))
        finally:
            os.close(dir_fd)
        return
    for tmp in paths:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(path: Path, content: bytes, mode: int) -> None:
    """Write ``content`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_snapshot(
    snapshot_dir: Path,
    document: Mapping[str, Any],
    companions: Callable[[Path, Mapping[str, Any]], None] | None = None,
) -> Path:
    """Write ``<snapshot_dir>/<feed>.json`` atomically and return its path.

    ``companions`` (``feeds.portal.write_companions``) then writes the files published with
    it — ``<feed>.html``, per-location files — through the same ``write_atomic``.
    """
    path = snapshot_dir / f"{document['feed']}.json"
    write_atomic(path, dumps(document))
    if companions is not None:
        companions(snapshot_dir, document)
    return path
