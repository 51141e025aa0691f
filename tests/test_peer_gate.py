"""A peer that lies can at worst make the downstream ask the bank (issue 18), end to end:
a real coordinator, the peer's nginx and the bank behind MockTransport, then the local
upstream simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from feeds import trust
from feeds.clock import FakeClock
from feeds.coordinator import Coordinator
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore, Store
from tests.helpers import config_file
from tests.test_peer import PEER_CFG, Net, origin_snapshot


def _hostile(origin: dict[str, Any], case: str, now: datetime) -> bytes:
    doc = json.loads(json.dumps(origin))
    usd = next(r for r in doc["data"]["rates"] if r["code"] == "USD")
    text = ""
    if case == "nan":
        usd["sell"] = 424242
        text = json.dumps(doc).replace("424242", "NaN")
    elif case == "400_digits":
        usd["sell"] = 424242
        text = json.dumps(doc).replace("424242", "1" + "0" * 400)
    elif case == "year_9999":
        doc["as_of"] = "9999-12-31T23:59:59+07:00"
    elif case == "fetched_2100":
        doc["fetched_at"] = "2100-01-01T00:00:00+07:00"
    elif case == "fetched_in_5_minutes":
        doc["fetched_at"] = (now + timedelta(minutes=5)).isoformat()
    elif case == "usd_out_of_bounds":
        usd.update(buy_cash=1, buy_transfer=1, sell=1)
    elif case == "dup_status":
        doc["status"] = "fresh"
        text = json.dumps(doc).replace('"status": "fresh"', '"status": "expired", "status": "fresh"')
    elif case == "dup_code":
        doc["data"]["rates"].append(dict(usd))
    elif case == "10000_rows":
        doc["data"]["rates"] = [dict(usd, code="USD") for _ in range(10_000)]
    return (text or json.dumps(doc)).encode()


def _refresh(folder: Path, net: Net, clock: FakeClock, store: Store | None = None) -> tuple[Any, dict[str, Any], Store]:
    cfg = config_file(folder, PEER_CFG)
    store = store or MemoryStore()

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(net)) as client:
            coord = Coordinator(cfg, store, client, clock, retry=RetryPolicy(clock))
            return await coord.refresh(cfg.feeds["rates"])

    r = asyncio.run(go())
    snap = json.loads((folder / "snapshots" / "rates.json").read_text(encoding="utf-8"))
    return r, snap, store


CASES = ["nan", "400_digits", "year_9999", "fetched_2100", "fetched_in_5_minutes", "usd_out_of_bounds",
         "dup_status", "dup_code", "10000_rows"]


@pytest.mark.parametrize("case", CASES)
def test_a_refused_peer_makes_the_feed_ask_the_bank_in_the_same_attempt(tmp_path: Path, case: str, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    clock.advance(60)
    net = Net(_hostile(origin, case, clock.now()))
    (tmp_path / "peer").mkdir()
    r, snap, store = _refresh(tmp_path / "peer", net, clock)
    validate_snapshot(snap)
    assert (net.peer_requests, net.bank_requests) == (1, 1)
    assert (r.status, r.outcome, snap["source"]["name"]) == ("fresh", "ok", "Vietcombank")
    assert datetime.fromisoformat(snap["fetched_at"]) == clock.now().replace(microsecond=0)
    html = (tmp_path / "peer" / "snapshots" / "rates.html").read_text(encoding="utf-8")
    assert "2100" not in html and "9999" not in html


@pytest.mark.parametrize("case", ["nan", "fetched_2100", "usd_out_of_bounds"])
def test_a_refused_peer_with_the_bank_down_publishes_nothing_of_the_peer(tmp_path: Path, case: str) -> None:
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    clock.advance(60)
    net = Net(_hostile(origin, case, clock.now()), bank_ok=False)
    (tmp_path / "peer").mkdir()
    r, snap, _ = _refresh(tmp_path / "peer", net, clock)
    assert net.bank_requests >= 1
    assert snap["status"] == "unavailable" and snap["data"] is None
    assert r.outcome in ("invalid_payload", "rejected", "http_status")


def test_fresh_word_on_47_hour_old_data_is_published_stale(tmp_path: Path) -> None:
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    origin.update(next_update_at=None, status="fresh", stale_since=None)
    clock.advance(47 * 3600)
    net = Net(json.dumps(origin).encode(), bank_ok=False)
    (tmp_path / "peer").mkdir()
    r, snap, _ = _refresh(tmp_path / "peer", net, clock)
    assert net.bank_requests == 0  # the copy is usable, only not fresh
    assert snap["status"] == "stale" and snap["fetched_at"] == origin["fetched_at"]
    fetched = datetime.fromisoformat(origin["fetched_at"])
    assert datetime.fromisoformat(snap["stale_since"]) == fetched + timedelta(minutes=30)  # 2 x every


def test_a_peer_table_that_moved_too_far_follows_the_banks_recovery_rule(tmp_path: Path) -> None:
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    (tmp_path / "peer").mkdir()
    # The last good table: the bank's, the same as the origin's.
    store: Store = MemoryStore()
    clock.advance(60)
    _, first, store = _refresh(tmp_path / "peer", Net(b"<html>502</html>"), clock, store)
    assert first["source"]["name"] == "Vietcombank"
    moved = json.loads(json.dumps(origin))
    for row in moved["data"]["rates"]:
        for col in ("buy_cash", "buy_transfer", "sell"):
            if row[col] is not None:
                row[col] = float(Decimal(str(row[col])) * Decimal("1.5"))  # a 50 % move (max_change 20 %)
    taken = []
    for _ in range(4):
        clock.advance(15 * 60)
        now = clock.now().replace(microsecond=0)
        moved["fetched_at"] = moved["generated_at"] = now.isoformat()
        moved["next_update_at"] = (now + timedelta(minutes=15)).isoformat()
        net = Net(json.dumps(moved).encode(), bank_ok=False)  # only the peer can confirm the move
        r, snap, store = _refresh(tmp_path / "peer", net, clock, store)
        taken.append(net.bank_requests == 0)
        if not taken[-1]:
            assert (r.outcome, r.detail) == ("rejected", "moved_too_far"), r.error  # the bank was asked (503)
    # Refused until seen 3 times over 30 minutes, then believed -- as a move of the bank's own.
    assert taken == [False, False, True, True]
    assert trust.read(store, "rates").get("move_accepted")


def test_weather_peer_takes_only_our_locations_and_counts_the_others(tmp_path: Path) -> None:
    from tests.test_batching import open_meteo_answer

    clock = FakeClock()
    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    ocfg = config_file(origin_dir, """
[feeds.weather]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
locations = [
  { id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 },
  { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },
  { id = "can-tho", name = "Cần Thơ", lat = 10.03, lon = 105.78 },
]
""")

    async def publish_origin() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(open_meteo_answer)) as client:
            await Coordinator(ocfg, MemoryStore(), client, clock).refresh(ocfg.feeds["weather"])

    asyncio.run(publish_origin())
    origin = json.loads((origin_dir / "snapshots" / "weather.json").read_text(encoding="utf-8"))
    origin["data"]["locations"][0]["name"] = "\u202eHà Nội\u200b"
    peer_dir = tmp_path / "peer"
    peer_dir.mkdir()
    pcfg = config_file(peer_dir, """
[feeds.w]
kind = "portal-feeds"
url = "http://centre.example/feeds/weather.json"
data_kind = "weather"
locations = [
  { id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 },
  { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },
]
""")
    store = MemoryStore()
    clock.advance(60)

    async def copy() -> Any:
        net = Net(json.dumps(origin).encode())
        async with httpx.AsyncClient(transport=httpx.MockTransport(net)) as client:
            return await Coordinator(pcfg, store, client, clock).refresh(pcfg.feeds["w"])

    r = asyncio.run(copy())
    snap = json.loads((peer_dir / "snapshots" / "w.json").read_text(encoding="utf-8"))
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert [loc["id"] for loc in snap["data"]["locations"]] == ["ha-noi", "hue"]
    assert snap["data"]["locations"][0]["name"] == "Hà Nội"
    assert trust.read(store, "w")["dropped_locations"] == ["can-tho"]


def test_refused_peer_falls_back_over_real_http(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    """The local upstream simulator on 127.0.0.1: its Open-Meteo endpoint plays the centre's
    nginx (a scripted payload: the snapshot), its Vietcombank endpoint the bank."""
    from feeds.testing.upstream import Fault, UpstreamSimulator

    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    clock.advance(60)
    (tmp_path / "peer").mkdir()
    with UpstreamSimulator() as sim:
        sim.now = lambda: clock.now().timestamp()
        cfg = config_file(tmp_path / "peer", f"""
[feeds.rates]
kind = "portal-feeds"
url = "{sim.url("open-meteo")}"
every = "15m"
fallback = [{{ kind = "vietcombank", url = "{sim.url("vietcombank")}" }}]
""")
        results = []
        for case in ("good", "nan", "fetched_2100", "dup_status"):
            body = json.dumps(origin).encode() if case == "good" else _hostile(origin, case, clock.now())
            sim.set_faults("open-meteo", [Fault.payload(body, headers={"Content-Type": "application/json"})],
                           repeat_last=True)
            sim.reset_counts()

            async def go() -> Any:
                async with httpx.AsyncClient() as client:
                    coord = Coordinator(cfg, MemoryStore(), client, clock, retry=RetryPolicy(clock))
                    return await coord.refresh(cfg.feeds["rates"], force=True)

            r = asyncio.run(go())
            snap = validate_snapshot(tmp_path / "peer" / "snapshots" / "rates.json")
            results.append((case, r.status, sim.request_count("open-meteo"), sim.request_count("vietcombank"),
                            snap["fetched_at"] == origin["fetched_at"]))
    assert results == [
        ("good", "fresh", 1, 0, True),  # the centre's copy, the bank not asked
        ("nan", "fresh", 1, 1, False),  # refused: the bank, same attempt
        ("fetched_2100", "fresh", 1, 1, False),
        ("dup_status", "fresh", 1, 1, False),
    ]
