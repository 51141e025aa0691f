"""The store seam: last good data, feed health and small per-host state, on diskcache.

The store is only a cache (issue 9): the published snapshots are the durable copy of last
good data (``feeds.recovery``).  So the store is built to heal, never to stop a feed:

- **Values are JSON**, not pickles (``JsonDisk``): inspectable with the ``sqlite3`` shell,
  readable by any later version (a pickle names our classes and breaks when they move), and
  reading one can never run code.  datetimes, Decimals, bytes and our two dataclasses are
  tagged objects (``{"$datetime": "..."}``).  A value in any other form (an old pickle, a
  damaged file) is a damaged cache.
- **No memory-mapped reads** (``sqlite_mmap_size=0``): a cache truncated under a running
  daemon is a read error SQLite reports, not a SIGBUS that kills the process.
- **A damaged cache heals**: a database that cannot be opened or read (not a database,
  malformed pages, truncated, an unreadable value) is moved aside to
  ``<cache_dir>/cache.corrupt-<UTC time>/``, a fresh one is created, one ERROR line says so,
  and the coordinator recovers last good data from the snapshots.  A cache deleted or
  replaced under a running process is noticed (its inode) and reopened the same way.
- **Local faults never stop a feed**: when the cache cannot be written (full or read-only
  disk, permissions, a file where the folder should be) writes are kept in memory and
  written when the cache works again; reads fall back to that memory.  ``fault`` tells the
  coordinator, which records the feed's outcome as ``local`` (``feeds.localfaults``); the
  fault is logged once when it starts and once when it ends.
- **The lock dies with its owner**: ``lock()`` is ``fcntl.flock`` on
  ``<cache_dir>/store.lock``, which the kernel releases when the holding process dies (the
  former diskcache lock expired only after 60 s).  It waits at most ``LOCK_WAIT`` (a few
  milliseconds, polling without blocking) and then raises ``StoreError`` (``store:busy``), so
  no store call blocks the event loop; SQLite's own busy wait is bounded the same way.

Keys (one namespace per concern, so a reader of the cache can tell them apart):

- ``good/<feed>``      ``GoodData``: the last normalized data that passed validation
- ``health/<feed>``    ``Health``: last attempt, last success, outcome kind, failures
- ``snapshot/<feed>``  status fields of the last published snapshot (stale_since, ...)
- ``recovered/<feed>`` when last good data was last taken back from the snapshot
- ``rejected/<feed>``  the last few refused bodies, for inspection (never published)
- ``dns/<host>``, ``polite/<host>``, ``breaker/<host>``: per-host state (issue 3)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import diskcache
import orjson

from feeds.errors import LocalError
from feeds.fastjson import finite, reads_exactly
from feeds.localfaults import probe_folder, reason_of, sqlite_reason

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "DiskStore",
    "GoodData",
    "Health",
    "JsonDisk",
    "MemoryStore",
    "ReadOnlyStore",
    "Store",
    "StoreError",
    "decode_value",
    "encode_value",
    "open_store",
    "open_store_readonly",
]

logger = logging.getLogger(__name__)

DB_NAME = "cache.db"
LOCK_NAME = "store.lock"
#: How long ``lock()`` polls for the cross-process lock before giving up (seconds).
LOCK_WAIT = 0.02
#: SQLite's busy wait for a write transaction another process holds (seconds).
SQLITE_BUSY_WAIT = 0.05
#: While the cache cannot be written, try it again at most this often (seconds).
RETRY_EVERY = 5.0
#: Repairs are at least this many seconds apart, and at most ``HEAL_MAX`` in
#: ``HEAL_WINDOW`` seconds: a disk that keeps damaging the cache gives a local fault
#: ``store:corrupt`` (snapshots still published), never a loop of repairs.
HEAL_AT_MOST_EVERY = 5.0
HEAL_MAX = 6
HEAL_WINDOW = 600.0
HEAL_GAP_MAX = HEAL_WINDOW
#: How often an open cache is checked from a fresh connection (``PRAGMA quick_check``): a
#: running process reads through its own page cache and would not see damaged pages that
#: other processes (``status``) meet.  The check takes about a millisecond.
INTEGRITY_EVERY = 10.0
#: How many moved-aside caches are kept for inspection.
KEEP_CORRUPT = 3
_SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(LocalError):
    """The cache could not be used: a local fault (detail ``store:<reason>``)."""


class Store(Protocol):
    """What the coordinator needs of persistence."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def lock(self) -> AbstractContextManager[None]:
        """Hold a lock shared by every process using this store."""
        ...

    @property
    def fault(self) -> str | None:
        """The local fault that keeps writes from reaching the disk (``store:<reason>``)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class GoodData:
    """The last good normalized data of a feed."""

    data: dict[str, Any]
    fetched_at: datetime
    as_of: datetime | None
    source_name: str
    source_url: str


@dataclass(frozen=True)
class Health:
    """Per-feed health, as ``portal-feeds status`` shows it."""

    feed: str
    last_attempt_at: datetime | None = None
    last_attempt_duration_s: float | None = None
    last_success_at: datetime | None = None
    outcome: str | None = None  # "ok", "held_back" or an error kind
    detail: str | None = None
    message: str | None = None
    consecutive_failures: int = 0
    status: str | None = None  # the status last published ("not_written" if the write failed)
    next_attempt_at: datetime | None = None
    source_used: str | None = None
    fallback_used: bool = False
    stale_dns_used: bool = False
    attempts: dict[str, int] = field(default_factory=dict)  # outcome -> count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def evolve(self, **changes: Any) -> Health:
        return replace(self, **changes)


# -- values as JSON -------------------------------------------------------------------------
_CLASSES: dict[str, type[Any]] = {"GoodData": GoodData, "Health": Health}


class CorruptValue(ValueError):
    """A stored value that is not ours (a pickle, random bytes, a foreign tag)."""


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:  # the common case first (thousands of weather locations)
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"store keys inside values must be str, not {type(k).__name__}")
            out["$" + k if k[:1] == "$" else k] = v if type(v) in _SCALARS else _plain(v)  # "$" keys are our tags
        return out
    if t is list:
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | Decimal | bytes | bytearray | memoryview):
        return _tagged(value)
    if isinstance(value, GoodData | Health):
        ((tag, members),) = _tagged(value).items()
        return {tag: {k: _plain(v) for k, v in members.items()}}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"store keys inside values must be str, not {type(k).__name__}")
            out["$" + k if k.startswith("$") else k] = _plain(v)  # "$" keys are our tags
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((tag, val),) = obj.items()
        if tag.startswith("$"):
            if tag == "$datetime":
                return datetime.fromisoformat(val)
            if tag == "$decimal":
                return Decimal(val)
            if tag == "$bytes":
                return base64.b64decode(val, validate=True)
            cls = _CLASSES.get(tag[1:])
            if cls is not None:
                if not isinstance(val, dict):
                    raise ValueError(f"{tag} over a {type(val).__name__}")  # damaged: CorruptValue
                known = {f.name for f in fields(cls)}
                # Fields added or dropped by another version are tolerated.
                return cls(**{k: v for k, v in val.items() if k in known})
    if any(k.startswith("$$") for k in obj):
        return {(k[1:] if k.startswith("$$") else k): v for k, v in obj.items()}
    return obj


#: A list longer than this is encoded one item per C call, the same bytes as one call: the
#: encoder holds the GIL for a whole call, and a store write of 3,000 locations in a worker
#: thread must not stop the event loop for the ~60 ms one call takes (issue 20).
CHUNK_ITEMS = 64


def _dumps(plain: Any, depth: int = 0) -> str:
    """``json.dumps(plain, ensure_ascii=False, separators=(",", ":"))``, in steps."""
    if isinstance(plain, dict) and depth < 4 and any(isinstance(v, dict | list) for v in plain.values()):
        return "{" + ",".join(
            json.dumps(k, ensure_ascii=False) + ":" + _dumps(v, depth + 1) for k, v in plain.items()
        ) + "}"
    if isinstance(plain, list) and len(plain) > CHUNK_ITEMS:
        # CHUNK_ITEMS items per call, their brackets cut: the same bytes as one call.
        return "[" + ",".join(
            json.dumps(plain[i : i + CHUNK_ITEMS], ensure_ascii=False, separators=(",", ":"))[1:-1]
            for i in range(0, len(plain), CHUNK_ITEMS)
        ) + "]"
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))


def _tagged(value: Any) -> dict[str, Any]:
    """orjson's ``default``: the tag of a value JSON has no type for (as ``_plain`` writes it)."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, GoodData | Health):
        return {f"${type(value).__name__}": {f.name: getattr(value, f.name) for f in fields(value)}}
    raise TypeError(f"cannot store {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _fast(value: Any) -> bytes | None:
    """``value`` encoded by orjson, the same JSON as ``_plain`` + ``_dumps`` (issue 20: 3,000
    weather locations in ~6 ms instead of ~70 ms); None when it cannot say so.

    The one rule orjson cannot apply is the escape of keys that start with ``$`` (our tags'
    mark): each tag written puts exactly one ``"$`` in the bytes, so more of them means a key
    or a string of the value's own starts with ``$``, and the value takes the exact path.
    Ints past 64 bits and non-str keys raise in orjson and take the exact path too, and so
    does a value holding a non-finite float (``feeds.fastjson.finite``).
    """
    if not finite(value):
        return None  # orjson writes NaN and infinities as null; the exact path keeps them
    tags = 0

    def default(obj: Any) -> Any:
        nonlocal tags
        tags += 1
        return _tagged(obj)

    try:
        data = orjson.dumps(value, default=default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
    return data if data.count(b'"$') == tags else None


def encode_value(value: Any) -> bytes:
    """A value as UTF-8 JSON (tagged datetimes, Decimals, bytes and dataclasses)."""
    fast = _fast(value)
    return fast if fast is not None else _dumps(_plain(value)).encode("utf-8")


def decode_value(data: bytes | str) -> Any:
    """The inverse of ``encode_value``; raises ``CorruptValue`` for anything else.

    orjson reads the text (3,000 weather locations: ~13 ms holding the GIL instead of ~45 ms
    for the json module, issue 20), then ``_untag`` applies the tags bottom-up as the json
    module's ``object_hook`` did; what orjson refuses (NaN, ...) or would read otherwise (an
    int past 64 bits becomes a float there: any run of 19 digits) is read by the json module
    as before.
    """
    try:
        try:
            if not reads_exactly(data):
                raise orjson.JSONDecodeError("", "", 0)  # orjson reads ints past 64 bits as floats
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            return json.loads(text, object_hook=_hook)
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        # A key may spell its "$" as an escape (not ours; a damaged or forged value): then
        # every object is looked at.
        marks = raw.count(b'"$') if b"\\u" not in raw else sys.maxsize
        return _untag(obj, marks) if marks else obj
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise CorruptValue("a stored value is not JSON of ours") from exc


def _untag(value: Any, marks: int) -> Any:
    """``_hook`` applied to each object of a decoded value that has a key starting with ``$``
    (a tag, or an escaped key of the value's own), innermost first, as json's
    ``object_hook`` would: the value it gives, the objects without such a key left as they are.

    ``marks``: how many times ``"$`` occurs in the text.  Every such key accounts for one, so
    the objects are searched level by level only until that many keys were found: a weather
    feed's good data has its three tags at the top, above 3,000 locations never walked (their
    untagging took ~100 ms, issue 20).  A ``"$`` in a string (not a key) only means the
    search goes to the bottom.
    """
    found: list[tuple[Any, Any, dict[str, Any]]] = []  # (parent, key in it, object)
    level: list[tuple[Any, Any, Any]] = [(None, None, value)]
    seen = 0
    while level and seen < marks:
        below: list[tuple[Any, Any, Any]] = []
        for parent, key, obj in level:
            if type(obj) is dict:
                tagged = False
                for k, v in obj.items():
                    if k[:1] == "$":
                        tagged = True
                        seen += 1
                    if type(v) in _CONTAINERS:
                        below.append((obj, k, v))
                if tagged:
                    found.append((parent, key, obj))
            else:
                below.extend((obj, i, v) for i, v in enumerate(obj) if type(v) in _CONTAINERS)
        level = below
    # Deepest first (a tag's value is untagged before the tag itself), each replaced in place.
    for parent, key, obj in reversed(found):
        new = _hook(obj)
        if parent is None:
            value = new
        else:
            parent[key] = new
    return value


_CONTAINERS = (dict, list)


class Encoded:
    """A value already encoded by ``encode_value`` (``DiskStore.set`` encodes once)."""

    __slots__ = ("data", "value")

    def __init__(self, data: bytes, value: Any) -> None:
        self.data = data
        self.value = value


#: Last good data at least this big is remembered (by a digest of its bytes) when written, and
#: not decoded again when those very bytes are read back (3,000 locations: 3 MB, ~60 ms).
MEMO_BYTES = 64 * 1024
MEMO_ENTRIES = 8


class JsonDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache serialization as plain JSON (see the module docstring for why)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (the bytes written, the value they encode), the few biggest, newest last.  The bytes
        #: themselves, not a digest: comparing 3 MB is ~0.3 ms, hashing them ~3 ms (issue 20).
        self._memo: list[tuple[bytes, Any]] = []
        self._memo_lock = threading.Lock()

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if read:
            raise TypeError("file values are not used")
        if isinstance(value, Encoded):
            data = value.data
            if len(data) >= MEMO_BYTES and isinstance(value.value, GoodData):  # frozen, never changed in place
                with self._memo_lock:
                    self._memo.append((data, value.value))
                    del self._memo[:-MEMO_ENTRIES]
        else:
            data = encode_value(value)
        return super().store(data, False, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
            raise CorruptValue(f"a stored value has mode {mode} (a pickle or a damaged row)")
        data = super().fetch(mode, filename, value, False)
        if not isinstance(data, bytes | str):
            raise CorruptValue("a stored value is not text")
        if len(data) >= MEMO_BYTES:
            # The very bytes this process wrote (another process's write differs): the value
            # is already in memory, never decoded again.
            with self._memo_lock:
                memo = list(self._memo)
            for written, known in reversed(memo):
                if written == data:  # lengths first, then memcmp
                    return known
        return decode_value(data)


# -- stores ---------------------------------------------------------------------------------
class MemoryStore:
    """An in-memory store for unit tests."""

    fault: str | None = None

    def __init__(self) -> None:
        self._d: dict[str, Any] = {}
        self._lock = threading.RLock()

    def get(self, key: str, default: Any = None) -> Any:
        return self._d.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._d[key] = value

    def delete(self, key: str) -> None:
        self._d.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._d if k.startswith(prefix))

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        pass


_MISSING = object()
_DELETED = object()
_FAILED = object()


class _Damaged(Exception):
    """The cache database is damaged (not a local fault): heal it."""


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


class DiskStore:
    """The store on diskcache under ``cache_dir``: self-healing, never raising on reads."""

    def __init__(self, directory: Path, *, lock_wait: float = LOCK_WAIT) -> None:
        self.directory = Path(directory)
        self.lock_wait = lock_wait
        self._cache: Any = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open database
        #: The database file's stat when its header was last found sound (``_identity``).
        self._sound: tuple[int, int, int, int, int] | None = None
        self._pending: dict[str, Any] = {}  # writes not on disk yet (value or _DELETED)
        self._encoded: dict[str, bytes] = {}  # the pending values as encoded by set()
        #: Guards the pending writes and the open cache: the coordinator's publish step runs
        #: in a worker thread while the event loop reads per-host state.
        self._io = threading.RLock()
        self._fault: str | None = None
        self._retry_at = 0.0
        self._healed_at = -HEAL_GAP_MAX
        self._heals: list[float] = []
        self._mutex = threading.RLock()
        self._depth = 0
        #: The thread holding ``lock`` (its updates are written when it lets go).
        self._holder: int | None = None
        self._lock_fd: int | None = None
        self._checked_at = time.monotonic()
        self._reopen("open")

    # -- public --------------------------------------------------------------------------
    @property
    def fault(self) -> str | None:
        return f"store:{self._fault}" if self._fault else None

    def get(self, key: str, default: Any = None) -> Any:
        with self._io:
            if key in self._pending:
                value = self._pending[key]
                return default if value is _DELETED else value
            value = self._run(lambda c: c.get(key, _MISSING), write=False)
        return default if value is _MISSING or value is _FAILED else value

    def set(self, key: str, value: Any) -> None:
        # Encoded once, here: a value we cannot store is a bug and raises now, not in the
        # flush; the flush writes these very bytes (``Encoded``), never encoding again.
        data = encode_value(value)
        with self._io:
            self._pending[key] = value
            self._encoded[key] = data
            if not self._held_here():
                self._flush()

    def delete(self, key: str) -> None:
        with self._io:
            self._pending[key] = _DELETED
            self._encoded.pop(key, None)
            if not self._held_here():
                self._flush()

    def _held_here(self) -> bool:
        """Whether this thread holds ``lock``: its updates wait for it to let go."""
        return self._holder is not None and self._holder == threading.get_ident()

    def keys(self, prefix: str) -> list[str]:
        with self._io:
            return self._keys(prefix)

    def _keys(self, prefix: str) -> list[str]:
        found = self._run(
            lambda c: [k for k in c.iterkeys() if isinstance(k, str) and k.startswith(prefix)], write=False
        )
        names = set(found) if isinstance(found, list) else set()
        for k, v in self._pending.items():
            if k.startswith(prefix):
                if v is _DELETED:
                    names.discard(k)
                else:
                    names.add(k)
        return sorted(names)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The cross-process store lock: flock, released by the kernel if we die."""
        if not self._mutex.acquire(timeout=self.lock_wait):
            raise StoreError("another thread held the cache lock", detail="store:busy")
        try:
            if self._depth == 0:
                self._take_flock()
                self._holder = threading.get_ident()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._holder = None
                    try:
                        # What was set under the lock, in one transaction, before another
                        # process can take it (a politeness claim: two records; issue 20).
                        self._flush()
                    finally:
                        self._drop_flock()
        finally:
            self._mutex.release()

    def close(self) -> None:
        with self._io:
            self._flush(force=True)
            if self._cache is not None:
                with contextlib.suppress(Exception):
                    self._cache.close()
                self._cache = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the lock ------------------------------------------------------------------------
    def _take_flock(self) -> None:
        if self._lock_fd is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                # No lock file (the folder is broken): this process still serializes itself.
                self._note_fault(reason_of(exc), exc)
                return
        end = time.monotonic() + self.lock_wait
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= end:
                    raise StoreError(
                        "another process held the cache lock", detail="store:busy"
                    ) from None
                time.sleep(0.001)
            except OSError as exc:
                self._note_fault(reason_of(exc), exc)
                return

    def _drop_flock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- opening and healing -----------------------------------------------------------
    def _db(self) -> Path:
        return self.directory / DB_NAME

    def _db_text(self) -> str:
        """``str(self._db())``, made once per folder: it is stat-ed before every operation
        (a Path built and converted each time was a third of a read's cost; issue 20)."""
        known = self.__dict__.get("_db_known")
        if known is None or known[0] is not self.directory:
            known = self._db_known = (self.directory, str(self.directory / DB_NAME))
        return known[1]

    def _identity(self) -> tuple[int, int] | None:
        """(dev, ino) of the database file, or None if it is gone; raises _Damaged if truncated
        or its header is not SQLite's.

        Asked before every operation: one ``stat``, and the header is read again only when the
        file's stat changed since it was last found sound (a file written over changes its
        size or mtime; SQLite in WAL mode rarely touches the main file).  Four syscalls per
        operation were ~460 per weather attempt on the event loop (issue 20).
        """
        try:
            st = os.stat(self._db_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key == self._sound:
            return (st.st_dev, st.st_ino)
        try:
            fd = os.open(self._db_text(), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        try:
            st = os.fstat(fd)
            head = os.pread(fd, 16, 0)
        finally:
            os.close(fd)
        if st.st_size == 0 or head != _SQLITE_MAGIC:
            self._sound = None
            raise _Damaged("the database file is truncated or its header is not SQLite's")
        self._sound = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return (st.st_dev, st.st_ino)

    def _open_cache(self) -> Any:
        self.directory.mkdir(parents=True, exist_ok=True)
        cache = diskcache.Cache(
            str(self.directory),
            disk=JsonDisk,
            timeout=SQLITE_BUSY_WAIT,
            # No size-based eviction: losing last good data to an LRU sweep would defeat the
            # purpose.  The keys are few and small (one entry per feed or host).
            eviction_policy="none",
            sqlite_mmap_size=0,
        )
        try:
            # Reading every row proves the database and its values readable now, not at
            # the first attempt (the table is small: one row per feed or host).
            for key in list(cache.iterkeys()):
                cache.get(key)
        except BaseException:
            cache.close()
            raise
        return cache

    def _reopen(self, why: str) -> None:
        """(Re)open the cache; heal it if it is damaged; note a local fault if it cannot be."""
        if self._cache is not None:
            with contextlib.suppress(Exception):
                self._cache.close()
            self._cache = None
        if why == "gone" and not self._db().exists():
            # The WAL of the removed database must not be replayed into the new one.
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(self.directory / (DB_NAME + suffix))
        try:
            try:
                self._identity()  # a damaged header heals before diskcache touches it
                self._cache = self._open_cache()
            except (_Damaged, CorruptValue, sqlite3.DatabaseError, OSError) as exc:
                if self._local(exc):
                    raise
                self._heal(exc)
                self._cache = self._open_cache()
            self._ident = self._identity()
        except (_Damaged, CorruptValue, sqlite3.DatabaseError, OSError, StoreError) as exc:
            self._cache = None
            reason = "corrupt" if isinstance(exc, _Damaged | CorruptValue) else (
                exc.detail.split(":", 1)[1] if isinstance(exc, StoreError) and exc.detail else reason_of(exc)
            )
            self._note_fault(reason, exc)
            self._retry_at = time.monotonic() + RETRY_EVERY
            return
        if why == "gone":
            logger.error(
                "cache database was removed or replaced under us: a fresh one was opened in %s; "
                "last good data is recovered from the published snapshots",
                self.directory,
            )

    def _local(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a local fault (disk, rights) rather than a damaged database."""
        if isinstance(exc, _Damaged | CorruptValue):
            return False
        if isinstance(exc, sqlite3.DatabaseError):
            reason = sqlite_reason(exc)
            if reason is None:
                return False
            if reason == "io":
                # An I/O error on an intact file is the disk's; on a damaged file, damage.
                try:
                    self._identity()
                except _Damaged:
                    return False
                except OSError:
                    return True
            return True
        return isinstance(exc, OSError)

    def _heal_or_note(self, exc: BaseException) -> bool:
        """Move a damaged cache aside and reopen a fresh one; when even that fails, note the
        fault, wait RETRY_EVERY before the next try, and say so (False)."""
        try:
            self._heal(exc)
        except (OSError, StoreError) as err:
            self._note_fault("corrupt" if isinstance(err, StoreError) else reason_of(err), err)
            self._retry_at = time.monotonic() + RETRY_EVERY
            return False
        self._reopen("healed")
        return True

    def _heal(self, exc: BaseException) -> None:
        """Move the damaged cache aside and let a fresh one be created."""
        now = time.monotonic()
        recent = [t for t in self._heals if now - t < HEAL_WINDOW]
        if now - self._healed_at < HEAL_AT_MOST_EVERY or len(recent) >= HEAL_MAX:
            raise StoreError("the cache was damaged again right after a repair", detail="store:corrupt")
        self._heals = [*recent, now]
        self._healed_at = now
        aside = self.directory / f"cache.corrupt-{_utc_stamp()}"
        n = 1
        while aside.exists():
            n += 1
            aside = self.directory / f"cache.corrupt-{_utc_stamp()}-{n}"
        with self.lock():
            aside.mkdir()
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.startswith(DB_NAME) or (len(name) == 2 and entry.is_dir(follow_symlinks=False)):
                    os.replace(entry.path, aside / name)
        what = type(exc).__name__ if not isinstance(exc, _Damaged) else "damaged file"
        logger.error(
            "cache unreadable (%s: %s): moved aside to %s and a fresh one created; "
            "last good data is recovered from the published snapshots",
            what, str(exc)[:120], aside,
        )
        self._prune_corrupt()

    def _prune_corrupt(self) -> None:
        old = sorted(p for p in self.directory.glob("cache.corrupt-*") if p.is_dir())
        for p in old[:-KEEP_CORRUPT]:
            shutil.rmtree(p, ignore_errors=True)

    # -- running operations ------------------------------------------------------------
    def _note_fault(self, reason: str, exc: BaseException | None) -> None:
        if self._fault != reason:
            logger.error(
                "cache not usable (%s%s): keeping its updates in memory and retrying; "
                "snapshots are still published",
                reason, f", {type(exc).__name__}" if exc is not None else "",
            )
        self._fault = reason

    def _clear_fault(self) -> None:
        if self._fault is not None:
            logger.info("cache usable again (was %s)", self._fault)
        self._fault = None

    def _usable(self) -> Any:
        """The open cache, reopened if its file went away, was replaced or was damaged."""
        if self._cache is None:
            if time.monotonic() < self._retry_at:
                return None
            self._reopen("retry")
            return self._cache
        try:
            ident = self._identity()
        except _Damaged as exc:
            self._cache.close()
            self._cache = None
            if not self._heal_or_note(exc):
                return None
            return self._cache
        except OSError as exc:
            self._note_fault(reason_of(exc), exc)
            return self._cache
        if ident != self._ident:
            self._reopen("gone")
        elif time.monotonic() >= self._checked_at + INTEGRITY_EVERY:
            self._checked_at = time.monotonic()
            problem = self._quick_check()
            if problem is not None:
                with contextlib.suppress(Exception):
                    self._cache.close()
                self._cache = None
                try:
                    self._heal(_Damaged(problem))
                except (OSError, StoreError) as err:
                    self._note_fault("corrupt" if isinstance(err, StoreError) else reason_of(err), err)
                    self._retry_at = time.monotonic() + RETRY_EVERY
                    return None
                self._reopen("healed")
        return self._cache

    def _quick_check(self) -> str | None:
        """What a fresh reader finds wrong with the database file, or None."""
        try:
            con = sqlite3.connect(f"{self._db().resolve().as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_WAIT)
            try:
                con.execute("PRAGMA mmap_size=0")
                row = con.execute("PRAGMA quick_check(1)").fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            if self._local(exc):
                return None  # busy, rights: not damage; the normal path reports those
            return f"quick_check: {str(exc)[:80]}"
        except OSError:
            return None
        return None if row and row[0] == "ok" else f"quick_check: {str(row[0] if row else '')[:80]}"

    def _run(self, op: Any, *, write: bool) -> Any:
        """Run ``op(cache)``; heal on damage; on a local fault note it and return _FAILED."""
        for _ in range(2):
            cache = self._usable()
            if cache is None:
                return _FAILED
            try:
                result = op(cache)
            except diskcache.Timeout:
                self._note_fault("busy", None)
                return _FAILED
            except (CorruptValue, sqlite3.DatabaseError, OSError) as exc:
                if self._local(exc):
                    # SQLite says "disk I/O error" for a full disk: look at the disk.
                    reason = reason_of(exc)
                    self._note_fault(probe_folder(self.directory) or reason if reason == "io" else reason, exc)
                    self._retry_at = time.monotonic() + RETRY_EVERY
                    return _FAILED
                with contextlib.suppress(Exception):
                    cache.close()
                self._cache = None
                if not self._heal_or_note(exc):
                    return _FAILED
                continue
            if write:
                self._clear_fault()
            return result
        return _FAILED

    def _flush(self, force: bool = False) -> None:
        """Write the pending updates, unless the cache is known broken and not due a retry."""
        if not self._pending:
            return
        if self._fault and not force and time.monotonic() < self._retry_at:
            return

        def write(cache: Any) -> bool:
            with cache.transact():
                for key, value in list(self._pending.items()):
                    if value is _DELETED:
                        cache.delete(key)
                    else:
                        data = self._encoded.get(key)
                        cache.set(key, Encoded(data, value) if data is not None else value)
            return True

        with self._io:
            if self._run(write, write=True) is True:
                self._pending.clear()
                self._encoded.clear()
            else:
                self._retry_at = time.monotonic() + RETRY_EVERY


class ReadOnlyStore:
    """A read-only view of the cache for ``status`` and ``check``: creates and repairs nothing.

    A missing cache reads as empty.  A damaged or unreadable one reads as empty too, and
    ``problem`` says why (``corrupt``, ``permission``, ...), so the caller can say it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.problem: str | None = None
        self._con: sqlite3.Connection | None = None
        self._disk = JsonDisk(str(self.directory))
        db = self.directory / DB_NAME
        if not db.exists():
            return
        try:
            with open(db, "rb") as f:
                if f.read(16) != _SQLITE_MAGIC:
                    self.problem = "corrupt"
                    return
            self._connect(db, "mode=ro")
        except (sqlite3.DatabaseError, OSError) as exc:
            if probe_folder(self.directory) == "read_only":
                # On a read-only file system SQLite cannot create the WAL index it needs to
                # read: nobody can write the file there, so it may be read as immutable
                # (``status`` must see the health while the daemon starts on a read-only cache).
                self._close_con()
                try:
                    self._connect(db, "mode=ro&immutable=1")
                    return
                except (sqlite3.DatabaseError, OSError) as exc2:
                    self._fail(exc2)
                    return
            self._fail(exc)

    def _connect(self, db: Path, params: str) -> None:
        self._con = sqlite3.connect(
            f"{db.resolve().as_uri()}?{params}", uri=True, timeout=SQLITE_BUSY_WAIT,
            isolation_level=None, check_same_thread=False,
        )
        self._con.execute("PRAGMA mmap_size=0")
        self._con.execute("SELECT count(*) FROM Cache").fetchone()

    def _close_con(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None

    fault: str | None = None

    def _fail(self, exc: BaseException) -> None:
        reason = "corrupt"
        if isinstance(exc, sqlite3.DatabaseError):
            reason = sqlite_reason(exc) or "corrupt"
        elif isinstance(exc, OSError):
            reason = reason_of(exc)
        self.problem = self.problem or reason
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None

    def get(self, key: str, default: Any = None) -> Any:
        if self._con is None:
            return default
        try:
            row = self._con.execute(
                "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
                " AND (expire_time IS NULL OR expire_time > ?)",
                (key, time.time()),
            ).fetchone()
            if row is None:
                return default
            return self._disk.fetch(row[0], row[1], row[2], False)
        except FileNotFoundError:
            return default  # a value file removed: that key is lost, the others are fine
        except (sqlite3.DatabaseError, OSError, CorruptValue) as exc:
            self._fail(exc)
            return default

    def set(self, key: str, value: Any) -> None:
        raise TypeError("the read-only store is not written")

    def delete(self, key: str) -> None:
        raise TypeError("the read-only store is not written")

    def keys(self, prefix: str) -> list[str]:
        if self._con is None:
            return []
        try:
            rows = self._con.execute("SELECT key FROM Cache WHERE raw = 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return []
        return sorted(k for (k,) in rows if isinstance(k, str) and k.startswith(prefix))

    @contextmanager
    def lock(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def open_store(cache_dir: Path) -> DiskStore:
    """Open the cache of a configuration for reading and writing (it heals itself)."""
    return DiskStore(cache_dir)


def open_store_readonly(cache_dir: Path) -> ReadOnlyStore:
    """Open the cache for ``status``/``check``: never creates, writes or repairs anything."""
    return ReadOnlyStore(cache_dir)

