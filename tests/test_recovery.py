"""Issue 9 §1: the published snapshot is the durable copy of last good data.

A store that lost a feed's good data (cache deleted, moved aside, one value lost) takes it
back from the snapshot on disk: validated against the shipped schema, its own fetched_at
kept, its status recomputed from its age; the recovery is logged and shown in ``status``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.config import load_config
from feeds.health import feed_rows, format_table
from feeds.publish import dumps
from feeds.recovery import read_snapshot
from feeds.store import GoodData, MemoryStore, open_store
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""

FEED = "exchange-rates"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _snap(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "snapshots" / f"{FEED}.json").read_text(encoding="utf-8"))


def _published(tmp_path: Path) -> tuple[Any, FakeClock, dict[str, Any], Upstream]:
    """One fresh publish through a disk store in tmp_path/cache; returns (cfg, clock, snap, up)."""
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture(), headers={"Content-Type": "text/xml"}))
    store = open_store(cfg.cache_dir)
    coord, clock, _, _ = make_coordinator(cfg, up, store=store)
    r = run(coord.refresh(cfg.feeds[FEED]))
    store.close()
    assert r.status == "fresh"
    return cfg, clock, _snap(tmp_path), up


def test_cache_lost_while_upstream_down_keeps_published_data(tmp_path: Path, caplog, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    """Defect 1: rm the cache, the bank answers 503 -> the file keeps its 20 rates (stale)."""
    cfg, clock, first, up = _published(tmp_path)
    assert len(first["data"]["rates"]) == 20
    shutil.rmtree(cfg.cache_dir)
    clock.advance(900)
    up.default = ok(b"Service Unavailable", status=503)
    store = open_store(cfg.cache_dir)
    coord, _, _, _ = make_coordinator(cfg, up, clock=clock, store=store)
    with caplog.at_level(logging.WARNING):
        r = run(coord.refresh(cfg.feeds[FEED]))
    assert (r.status, r.outcome) == ("stale", "http_status")
    snap = validate_snapshot(tmp_path / "snapshots" / f"{FEED}.json")
    assert snap["data"] == first["data"]
    assert snap["fetched_at"] == first["fetched_at"]  # its own age, not "now"
    assert snap["as_of"] == first["as_of"] and snap["source"] == first["source"]
    assert any("recovered last good data" in rec.getMessage() and FEED in rec.getMessage() for rec in caplog.records)
    # status shows the recovery.
    rows = feed_rows(cfg, store, clock.now())
    assert rows[0].recovered_at is not None and rows[0].recovered_at <= clock.now()
    assert rows[0].to_json()["recovered"]["fetched_at"] == first["fetched_at"]
    assert "recovered from snapshot" in format_table(rows, clock.now())
    store.close()


def test_warm_start_recovers_with_status_from_age(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg, clock, first, up = _published(tmp_path)
    feed = cfg.feeds[FEED]
    # Young data published fresh: still fresh after the cache is lost.
    shutil.rmtree(cfg.cache_dir)
    clock.advance(60)
    coord, _, store, _ = make_coordinator(cfg, up, clock=clock, store=MemoryStore())
    assert coord.republish(feed).status == "fresh"
    # Old data: the status follows its age, whatever the file said.
    clock.advance(3 * 86400)
    coord, _, store, _ = make_coordinator(cfg, up, clock=clock, store=MemoryStore())
    r = coord.republish(feed)
    assert r.status == "expired"
    snap = validate_snapshot(tmp_path / "snapshots" / f"{FEED}.json")
    assert snap["data"] == first["data"] and snap["fetched_at"] == first["fetched_at"]


def test_one_lost_value_is_recovered(tmp_path: Path) -> None:
    cfg, clock, first, up = _published(tmp_path)
    store = MemoryStore()
    coord, _, _, _ = make_coordinator(cfg, up, clock=clock, store=store)
    up.default = ok(b"", status=503)
    clock.advance(900)
    r = run(coord.refresh(cfg.feeds[FEED]))
    assert r.status == "stale" and json.loads(dumps(r.snapshot["data"])) == first["data"]
    good = store.get(f"good/{FEED}")
    assert isinstance(good, GoodData) and good.fetched_at.isoformat() == first["fetched_at"]
    # Numbers come back exact (Decimal), so a republish writes the same bytes.
    assert not any(isinstance(r[k], float) for r in good.data["rates"] for k in ("buy_cash", "buy_transfer", "sell"))
    assert dumps(good.data) == dumps(json.loads(json.dumps(first["data"]), parse_float=Decimal))


@pytest.mark.parametrize(
    "damage",
    ["missing", "not_json", "other_feed", "other_kind", "unavailable", "schema_invalid", "a_directory"],
)
def test_nothing_recovered_from_a_bad_file(tmp_path: Path, damage: str) -> None:
    cfg, _, first, _ = _published(tmp_path)
    path = tmp_path / "snapshots" / f"{FEED}.json"
    doc = dict(first)
    if damage == "missing":
        path.unlink()
    elif damage == "not_json":
        path.write_bytes(b"\x00\xffgarbage")
    elif damage == "a_directory":
        path.unlink()
        path.mkdir()
    else:
        if damage == "other_feed":
            doc["feed"] = "weather"
        elif damage == "other_kind":
            doc["kind"] = "weather"
        elif damage == "unavailable":
            doc.update(status="unavailable", data=None, fetched_at=None, source=None)
        elif damage == "schema_invalid":
            doc["data"] = {"rates": "twenty"}
        path.write_bytes(json.dumps(doc).encode())
    assert read_snapshot(cfg.snapshot_dir, cfg.feeds[FEED]) is None
    if path.is_file():
        path.unlink()  # a deliberately invalid snapshot (the autouse schema check would refuse it)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["data", "rates", 0, 3, "sell", "code", "fetched_at", "source", "status", "as_of", "url"]), min_size=1, max_size=4), value=_JSON)
def test_recovery_never_raises_and_only_returns_valid_data(tmp_path: Path, snapshot_schema, path: list[Any], value: Any) -> None:  # type: ignore[no-untyped-def]
    """Any one field of a real snapshot replaced by any JSON value: read_snapshot never raises,
    and whatever it recovers republishes as a schema-valid snapshot."""
    import jsonschema

    base = tmp_path / "prop"  # one tmp_path for every example: the seed is built once
    if not (base / "seed.json").exists():
        base.mkdir(exist_ok=True)
        cfg = config_file(base, RATES)
        _seed(base, cfg)
    cfg = load_config(base / "portal-feeds.toml")
    doc = json.loads((base / "seed.json").read_text())
    cur: Any = doc
    def fits(c: Any, k: Any, new: bool) -> bool:
        if isinstance(c, dict):
            return isinstance(k, str) and (new or k in c)
        return isinstance(c, list) and isinstance(k, int) and k < len(c)

    for key in path[:-1]:
        if fits(cur, key, False):
            cur = cur[key]
    if fits(cur, path[-1], True):
        cur[path[-1]] = value
    cfg.snapshot_dir.mkdir(parents=True, exist_ok=True)
    (cfg.snapshot_dir / f"{FEED}.json").write_text(json.dumps(doc))
    rec = read_snapshot(cfg.snapshot_dir, cfg.feeds[FEED])
    if rec is None:
        (cfg.snapshot_dir / f"{FEED}.json").unlink()
        return
    clock = FakeClock()
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(b"", status=503)), clock=clock)
    out = coord.republish(cfg.feeds[FEED])
    errors = list(jsonschema.Draft202012Validator(snapshot_schema).iter_errors(json.loads(dumps(out.snapshot))))
    assert not errors
    assert out.snapshot["data"] == rec.good.data


def _seed(base: Path, cfg: Any) -> None:
    up = Upstream(default=ok(vcb_fixture(), headers={"Content-Type": "text/xml"}))
    coord, _, _, _ = make_coordinator(cfg, up)
    run(coord.refresh(cfg.feeds[FEED]))
    (base / "seed.json").write_bytes((cfg.snapshot_dir / f"{FEED}.json").read_bytes())
