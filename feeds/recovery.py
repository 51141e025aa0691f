"""The published snapshot is the durable copy of a feed's last good data.

The store (``feeds.store``) is only a cache: it can be deleted, corrupted, moved aside when
it cannot be read, or sit on a full disk.  Whenever it has no good data for a feed, the
coordinator asks this module for the data of the snapshot it published last:

- the file ``<snapshot_dir>/<feed>.json`` is read and validated against the shipped schema
  (``feeds/schemas/snapshot-v1.schema.json``); a file of another feed or kind, an
  ``unavailable`` snapshot or anything that does not validate recovers nothing;
- the data keeps its own ``fetched_at`` (its age is the age it really has), and its status is
  recomputed from that age by the caller, never taken on trust;
- numbers are read as ``Decimal`` so a republished snapshot carries exactly the same values.

So a cache lost while the upstream is down costs nothing a widget can see.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from feeds.config import FeedConfig
from feeds.store import GoodData

__all__ = ["MAX_SNAPSHOT_BYTES", "Recovered", "read_snapshot", "snapshot_path"]

logger = logging.getLogger(__name__)

#: A snapshot bigger than this is not read back (the biggest real one is ~50 KB per 100
#: locations; the cap only keeps a damaged or foreign file from filling memory).
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Recovered:
    """Last good data read back from a published snapshot."""

    good: GoodData
    #: The status and stale_since the file was published with (the caller recomputes).
    status: str
    stale_since: datetime | None
    path: Path


def _closed(schema: Any) -> Any:
    """``schema`` with every object schema refusing properties it does not list."""
    if isinstance(schema, list):
        return [_closed(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=1)
def _validator() -> Any:
    """The shipped schema, with the ``data`` shapes (``$defs``) closed.

    The shipped schema is open so that consumers survive added fields; what we publish again
    must be exactly what we would publish, so unknown fields inside ``data`` recover nothing.
    Unknown top-level fields are ignored (only the known ones are read).
    """
    from feeds.bounds import ecma_validator

    schema = json.loads(files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text("utf-8"))
    schema["$defs"] = _closed(schema.get("$defs", {}))
    # ECMA-262 patterns (feeds.bounds): a full-width digit or a trailing newline is refused.
    return ecma_validator(schema)


def snapshot_path(snapshot_dir: Path, feed: str) -> Path:
    return snapshot_dir / f"{feed}.json"


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def read_snapshot(snapshot_dir: Path, feed: FeedConfig) -> Recovered | None:
    """Read the feed's published snapshot back; None when it holds no usable good data.

    Never raises: a missing, unreadable, foreign or invalid file recovers nothing (and an
    invalid one is logged, once per call, without its content).
    """
    path = snapshot_path(snapshot_dir, feed.name)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SNAPSHOT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("snapshot not readable for recovery feed=%s error=%s", feed.name, type(exc).__name__)
        return None
    if len(raw) > MAX_SNAPSHOT_BYTES:
        logger.warning("snapshot too big for recovery feed=%s", feed.name)
        return None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        logger.warning("snapshot not valid JSON, nothing recovered feed=%s", feed.name)
        return None
    if not isinstance(doc, dict):
        return None
    try:
        # jsonschema checks numbers by value, Decimal included.
        errors = list(_validator().iter_errors(doc))
    except Exception:  # a validator failure must never stop a refresh
        logger.warning("snapshot could not be validated, nothing recovered feed=%s", feed.name)
        return None
    if errors:
        logger.warning("snapshot does not match the schema, nothing recovered feed=%s", feed.name)
        return None
    if doc["feed"] != feed.name or doc["kind"] != feed.data_kind:
        return None
    if doc["status"] == "unavailable" or doc["data"] is None or doc["fetched_at"] is None:
        return None
    fetched_at = _dt(doc["fetched_at"])
    assert fetched_at is not None
    source = doc["source"] or {}
    good = GoodData(
        data=doc["data"],
        fetched_at=fetched_at,
        as_of=_dt(doc["as_of"]),
        source_name=str(source.get("name", "")),
        source_url=str(source.get("url", "")),
    )
    return Recovered(good, doc["status"], _dt(doc["stale_since"]), path)
