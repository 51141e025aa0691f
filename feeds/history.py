"""Rates history: the last table of each Vietnam calendar day, archived beside the snapshot.

The archive is the durable copy, published like the snapshot (``feeds.publish.write_atomic``):

    <snapshot_dir>/history/<feed>/<YYYY-MM-DD>.json   one file per Vietnam day that had a table

each holding the day's last table (by its own ``as_of``), valid against
``feeds/schemas/history-v1.schema.json``.  Nothing else holds history: the folder listing is the
index, so losing the cache loses no day, and a crash at any point leaves whole files.

- ``record`` files a gated table: a table whose ``as_of`` is not later than the day's file (a
  frozen source answering the same table, an older one) adds nothing; days past the retention
  are removed.
- ``previous`` is the last table of the most recent earlier Vietnam day that had one (weekends
  and holidays, when the bank publishes nothing, are skipped naturally).
- ``with_change`` adds ``previous`` and ``change`` to each rate of a snapshot's data (exact
  decimals; percentages to 0.01, half up).
- ``history_document`` is ``<feed>.history.json``: the last N days of closing values per
  currency, small enough for a widget.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from feeds.clock import VIETNAM_TZ
from feeds.models import isoformat

__all__ = [
    "COLUMNS",
    "DEFAULT_DAYS",
    "DEFAULT_KEEP_DAYS",
    "archive_folder",
    "archived_days",
    "change_of",
    "compact",
    "history_document",
    "previous",
    "read_day",
    "record",
    "vietnam_day",
    "with_change",
]

SCHEMA_VERSION = 1
COLUMNS = ("buy_cash", "buy_transfer", "sell")
#: How long the archive keeps a day, and how many days ``<feed>.history.json`` carries.
DEFAULT_KEEP_DAYS = 400
DEFAULT_DAYS = 30
_DAY_FILE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.json$")
#: An archived file larger than this is not ours (a table has at most 200 rows).
MAX_DAY_FILE = 256 * 1024


def vietnam_day(when: datetime) -> date:
    return when.astimezone(VIETNAM_TZ).date()


def archive_folder(snapshot_dir: Path, feed: str) -> Path:
    return snapshot_dir / "history" / feed


def archived_days(snapshot_dir: Path, feed: str) -> list[date]:
    """The days the archive holds a file for, oldest first (names only; files are read lazily)."""
    folder = archive_folder(snapshot_dir, feed)
    out = []
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    for name in names:
        m = _DAY_FILE.match(name)
        if m:
            with contextlib.suppress(ValueError):
                out.append(date(int(m[1]), int(m[2]), int(m[3])))
    return sorted(out)


def _amount(value: Any) -> Decimal | None:
    """A rate as the gate bounds it (positive, at most 12 integer digits and 6 decimals), else None:
    an archive file is read like any input, so the change computed from it stays in range."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or d <= 0 or not -6 <= d.adjusted() <= 11:
        return None
    return d


def read_day(snapshot_dir: Path, feed: str, day: date) -> dict[str, Any] | None:
    """One archived day, or None when missing or not a valid day file (never raises)."""
    path = archive_folder(snapshot_dir, feed) / f"{day.isoformat()}.json"
    try:
        if path.stat().st_size > MAX_DAY_FILE:
            return None
        doc = json.loads(path.read_bytes(), parse_float=Decimal, parse_int=Decimal)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION or doc.get("date") != day.isoformat():
        return None
    try:
        as_of = datetime.fromisoformat(str(doc["as_of"]))
        if as_of.tzinfo is None or vietnam_day(as_of) != day or not isinstance(doc.get("rates"), list):
            return None
    except (KeyError, ValueError, OverflowError):  # year 1 at +14:00 cannot move to Vietnam time
        return None
    rates = {}
    for row in doc["rates"]:
        if isinstance(row, dict) and isinstance(row.get("code"), str):
            rates[row["code"]] = {c: _amount(row.get(c)) for c in COLUMNS}
    return {"date": day, "as_of": as_of, "rates": rates, "doc": doc}


def _day_document(feed: str, as_of: datetime, fetched_at: datetime, source: str, data: Mapping[str, Any]) -> dict[str, Any]:
    rows = []
    for r in data.get("rates", []):
        if isinstance(r, Mapping) and isinstance(r.get("code"), str):
            rows.append({"code": r["code"], **{c: r.get(c) for c in COLUMNS}})
    local = as_of.astimezone(VIETNAM_TZ)
    return {
        "schema_version": SCHEMA_VERSION,
        "feed": feed,
        "date": local.date().isoformat(),
        "as_of": isoformat(local),
        "fetched_at": isoformat(fetched_at.astimezone(VIETNAM_TZ)),
        "source": source,
        "rates": rows,
    }


def record(
    snapshot_dir: Path,
    feed: str,
    *,
    as_of: datetime | None,
    fetched_at: datetime,
    source: str,
    data: Mapping[str, Any],
    today: date,
    keep_days: int = DEFAULT_KEEP_DAYS,
) -> bool:
    """File a gated table as its day's last; True when the archive changed.

    A table without its own time, or not later than what the day already holds, adds
    nothing.  Raises ``OSError`` when the archive cannot be written (a local fault).
    """
    from feeds.publish import dumps, write_atomic

    if as_of is None:
        return False
    day = vietnam_day(as_of)
    held = read_day(snapshot_dir, feed, day)
    if held is not None and held["as_of"] >= as_of:
        return False
    if day > today + timedelta(days=1):  # a table dated ahead of the clock never enters history
        return False
    if day < today - timedelta(days=keep_days):  # older than the archive keeps
        return False
    doc = _day_document(feed, as_of, fetched_at, source, data)
    write_atomic(archive_folder(snapshot_dir, feed) / f"{day.isoformat()}.json", dumps(doc))
    prune(snapshot_dir, feed, today=today, keep_days=keep_days)
    return True


def prune(snapshot_dir: Path, feed: str, *, today: date, keep_days: int) -> list[date]:
    """Remove days older than ``keep_days`` before ``today``; the days removed."""
    cutoff = today - timedelta(days=keep_days)
    gone = []
    for day in archived_days(snapshot_dir, feed):
        if day < cutoff:
            with contextlib.suppress(FileNotFoundError):
                (archive_folder(snapshot_dir, feed) / f"{day.isoformat()}.json").unlink()
            gone.append(day)
    return gone


def previous(snapshot_dir: Path, feed: str, as_of: datetime | None) -> dict[str, Any] | None:
    """The last table of the most recent earlier Vietnam day that has one (readable), or None."""
    if as_of is None:
        return None
    day = vietnam_day(as_of)
    for earlier in reversed([d for d in archived_days(snapshot_dir, feed) if d < day]):
        held = read_day(snapshot_dir, feed, earlier)
        if held is not None:
            return held
    return None


_CENT = Decimal("0.01")


def change_of(current: Mapping[str, Any], before: Mapping[str, Decimal | None]) -> dict[str, Decimal | None]:
    """``{sell, sell_pct, buy_transfer, buy_transfer_pct, buy_cash, buy_cash_pct}``, exact.

    The amount is ``current - previous`` as a Decimal; the percentage is relative to the
    previous value, rounded half up to 0.01.  None where either side is not quoted.
    """
    out: dict[str, Decimal | None] = {}
    for c in ("sell", "buy_transfer", "buy_cash"):
        now, then = _amount(current.get(c)), before.get(c)
        if now is None or then is None:
            out[c] = out[f"{c}_pct"] = None
            continue
        diff = now - then
        out[c] = diff
        out[f"{c}_pct"] = (diff * 100 / then).quantize(_CENT, rounding=ROUND_HALF_UP)
    return out


def with_change(data: Mapping[str, Any], prev: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` with ``previous`` and ``change`` on each rate the earlier day quoted too."""
    out = dict(data)
    if prev is None or not isinstance(data.get("rates"), list):
        return out
    before = prev["rates"]
    rows = []
    for r in data["rates"]:
        if isinstance(r, Mapping) and r.get("code") in before:
            b = before[r["code"]]
            r = {**r, "previous": {"as_of": isoformat(prev["as_of"]), **{c: b[c] for c in COLUMNS}},
                 "change": change_of(r, b)}
        rows.append(r)
    out["rates"] = rows
    return out


def compact(value: Any) -> str:
    """JSON on one line, Decimals written exactly (``<feed>.history.json`` is for widgets: small)."""
    from feeds.publish import _number

    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(compact(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, Decimal | float):
        return _number(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def history_document(
    snapshot_dir: Path, feed: str, *, generated_at: datetime, days: int = DEFAULT_DAYS,
    codes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``<feed>.history.json``: per currency, the daily closing values of the last ``days`` days.

    ``days`` lists the archived days (oldest first) and ``as_of`` their tables' own times;
    each currency's columns are lists aligned with ``days`` (null where not quoted).
    """
    held = [h for h in (read_day(snapshot_dir, feed, d) for d in archived_days(snapshot_dir, feed)[-days:]) if h]
    wanted = list(dict.fromkeys(codes)) if codes else list(dict.fromkeys(c for h in held for c in h["rates"]))
    currencies: dict[str, dict[str, list[Decimal | None]]] = {}
    for code in wanted:
        currencies[code] = {
            c: [h["rates"].get(code, {}).get(c) for h in held] for c in ("buy_transfer", "sell")
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "feed": feed,
        "generated_at": isoformat(generated_at.astimezone(VIETNAM_TZ)),
        "days": [h["date"].isoformat() for h in held],
        "as_of": [isoformat(h["as_of"]) for h in held],
        "currencies": currencies,
    }
