"""The store seam: last good data, feed health and small per-host state, on diskcache.

diskcache is SQLite underneath: safe across processes and threads, so ``portal-feeds
status`` can read what the running daemon writes.  Values are plain Python structures
(dicts, lists, str, Decimal, datetime) pickled by diskcache.

Keys (one namespace per concern, so a reader of the cache can tell them apart):

- ``good/<feed>``      ``GoodData``: the last normalized data that passed validation
- ``health/<feed>``    ``Health``: last attempt, last success, outcome kind, failures
- ``snapshot/<feed>``  status fields of the last published snapshot (stale_since, ...)
- ``rejected/<feed>``  the last few refused bodies, for inspection (never published)
- ``dns/<host>``, ``polite/<host>``, ``breaker/<host>``: per-host state (issue 3)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DiskStore",
    "GoodData",
    "Health",
    "MemoryStore",
    "Store",
    "open_store",
]


class Store(Protocol):
    """What the coordinator needs of persistence."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def lock(self) -> AbstractContextManager[None]:
        """Hold a lock shared by every process using this store."""
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
    status: str | None = None  # the status last published
    next_attempt_at: datetime | None = None
    source_used: str | None = None
    fallback_used: bool = False
    stale_dns_used: bool = False
    attempts: dict[str, int] = field(default_factory=dict)  # outcome -> count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def evolve(self, **changes: Any) -> Health:
        return replace(self, **changes)


class MemoryStore:
    """An in-memory store for unit tests."""

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


class DiskStore:
    """The store on diskcache under ``cache_dir``."""

    def __init__(self, directory: Path) -> None:
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        # No size-based eviction: losing last good data to an LRU sweep would defeat the
        # purpose.  The keys are few and small (one entry per feed or host).
        self._cache = diskcache.Cache(str(directory), eviction_policy="none", timeout=30)
        self._lock = diskcache.RLock(self._cache, "lock/store", expire=60)

    def get(self, key: str, default: Any = None) -> Any:
        return self._cache.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._cache.set(key, value)

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith(prefix))

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        self._cache.close()


def open_store(cache_dir: Path) -> DiskStore:
    """Open the diskcache store of a configuration."""
    return DiskStore(cache_dir)
