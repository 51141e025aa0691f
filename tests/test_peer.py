"""The peer source (kind = "portal-feeds"): another instance's snapshot carried as it is,
never fresher than its origin, and the bank asked directly when the peer cannot serve."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.config import ConfigError
from feeds.coordinator import Coordinator
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from tests.helpers import config_file, vcb_fixture

BANK = "https://bank.example/rates.xml"
PEER = "http://centre.example/feeds/exchange-rates.json"

ORIGIN_CFG = f"""
[feeds.exchange-rates]
kind = "vietcombank"
url = "{BANK}"
every = "15m"
"""

PEER_CFG = f"""
[feeds.rates]
kind = "portal-feeds"
url = "{PEER}"
every = "15m"
fallback = [{{ kind = "vietcombank", url = "{BANK}" }}]
"""

RANK = {"fresh": 0, "stale": 1, "expired": 2, "unavailable": 3}


def origin_snapshot(tmp_path: Path, clock: FakeClock) -> dict[str, Any]:
    """A real snapshot, published by a real coordinator (the origin instance)."""
    folder = tmp_path / "origin"
    folder.mkdir(exist_ok=True)
    cfg = config_file(folder, ORIGIN_CFG)

    async def go() -> None:
        transport = httpx.MockTransport(lambda r: httpx.Response(200, content=vcb_fixture()))
        async with httpx.AsyncClient(transport=transport) as client:
            await Coordinator(cfg, MemoryStore(), client, clock).refresh(cfg.feeds["exchange-rates"])

    asyncio.run(go())
    doc: dict[str, Any] = json.loads((folder / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8"))
    return doc


class Net:
    """The peer's nginx and the bank, behind one MockTransport."""

    def __init__(self, peer: bytes | Exception, bank_ok: bool = True) -> None:
        self.peer = peer
        self.bank_ok = bank_ok
        self.bank_requests = 0
        self.peer_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "bank.example":
            self.bank_requests += 1
            return httpx.Response(200 if self.bank_ok else 503, content=vcb_fixture() if self.bank_ok else b"")
        self.peer_requests += 1
        if isinstance(self.peer, Exception):
            raise self.peer
        return httpx.Response(200, content=self.peer, headers={"Content-Type": "application/json"})


def refresh_peer(tmp_path: Path, net: Net, clock: FakeClock) -> tuple[Any, dict[str, Any]]:
    folder = tmp_path / "peer"
    folder.mkdir(exist_ok=True)
    cfg = config_file(folder, PEER_CFG)

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(net)) as client:
            coord = Coordinator(cfg, MemoryStore(), client, clock, retry=RetryPolicy(clock))
            return await coord.refresh(cfg.feeds["rates"])

    r = asyncio.run(go())
    snap = json.loads((folder / "snapshots" / "rates.json").read_text(encoding="utf-8"))
    return r, snap


def test_peer_carries_data_times_and_source_without_asking_the_bank(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    clock.advance(120)  # the copy is made two minutes later
    net = Net(json.dumps(origin).encode())
    r, snap = refresh_peer(tmp_path, net, clock)
    validate_snapshot(snap)
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert net.bank_requests == 0 and net.peer_requests == 1
    assert snap["data"] == origin["data"]
    assert (snap["fetched_at"], snap["as_of"]) == (origin["fetched_at"], origin["as_of"])  # the origin's
    assert snap["generated_at"] > origin["generated_at"]
    assert snap["source"] == origin["source"]  # Vietcombank, its URL


def test_stale_origin_stays_stale_with_its_stale_since(tmp_path: Path) -> None:
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    origin["status"] = "stale"
    origin["stale_since"] = (clock.now() + timedelta(minutes=15)).isoformat()
    origin["next_update_at"] = (clock.now() + timedelta(minutes=35)).isoformat()  # still publishing
    clock.advance(1800)
    net = Net(json.dumps(origin).encode())
    r, snap = refresh_peer(tmp_path, net, clock)
    assert snap["status"] == "stale"
    assert datetime.fromisoformat(snap["stale_since"]) == datetime.fromisoformat(origin["stale_since"])
    assert snap["fetched_at"] == origin["fetched_at"] and net.bank_requests == 0


@pytest.mark.parametrize(
    "case",
    ["expired", "unavailable", "unreachable", "garbage", "not_a_snapshot", "overdue", "other_kind"],
)
def test_bank_asked_directly_when_the_peer_cannot_serve(tmp_path: Path, case: str) -> None:
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    clock.advance(60)
    peer: bytes | Exception
    if case == "expired":
        origin.update(status="expired", stale_since=origin["generated_at"])
    elif case == "unavailable":
        origin.update(status="unavailable", data=None, fetched_at=None, as_of=None, source=None,
                      stale_since=origin["generated_at"])
    elif case == "overdue":  # its daemon died; its nginx still serves the last "fresh" file
        clock.advance(3600)
    elif case == "other_kind":
        origin["kind"] = "weather"
    if case == "unreachable":
        peer = httpx.ConnectError("[Errno 111] Connection refused")
    elif case == "garbage":
        peer = b"<html>502 Bad Gateway</html>"
    elif case == "not_a_snapshot":
        peer = json.dumps({"status": "fresh", "data": {}}).encode()
    else:
        peer = json.dumps(origin).encode()
    net = Net(peer)
    r, snap = refresh_peer(tmp_path, net, clock)
    assert net.bank_requests == 1
    assert (r.status, snap["source"]["name"]) == ("fresh", "Vietcombank")
    assert datetime.fromisoformat(snap["fetched_at"]) == clock.now().replace(microsecond=0)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    status=st.sampled_from(["fresh", "stale", "expired"]),
    age_s=st.integers(0, 72 * 3600),
    bank_ok=st.booleans(),
)
def test_never_fresher_than_the_origin(tmp_path_factory: pytest.TempPathFactory, status: str, age_s: int, bank_ok: bool) -> None:
    tmp_path = tmp_path_factory.mktemp("peer")
    clock = FakeClock()
    origin = origin_snapshot(tmp_path, clock)
    if status != "fresh":
        origin["stale_since"] = origin["generated_at"]
    origin["status"] = status
    origin["next_update_at"] = None  # only status and age matter here
    clock.advance(age_s)
    net = Net(json.dumps(origin).encode(), bank_ok=bank_ok)
    r, snap = refresh_peer(tmp_path, net, clock)
    if net.bank_requests and bank_ok:
        assert snap["status"] == "fresh" and snap["source"]["name"] == "Vietcombank"
        assert datetime.fromisoformat(snap["fetched_at"]) == clock.now().replace(microsecond=0)
        return
    if snap["data"] is not None and snap["fetched_at"] == origin["fetched_at"]:
        # The origin's copy was published: never better than the origin said.
        assert RANK[snap["status"]] >= RANK[status]
        assert status != "expired" and age_s <= 48 * 3600
    else:
        assert snap["status"] == "unavailable"


def test_config(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, PEER_CFG)
    feed = cfg.feeds["rates"]
    assert feed.data_kind == "exchange_rates" and feed.min_interval == 300  # the bank behind it
    only = config_file(tmp_path, f'[feeds.w]\nkind = "portal-feeds"\nurl = "{PEER}"\ndata_kind = "weather"\n')
    assert only.feeds["w"].data_kind == "weather" and only.feeds["w"].min_interval == 0
    with pytest.raises(ConfigError, match="data_kind"):
        config_file(tmp_path, f'[feeds.w]\nkind = "portal-feeds"\nurl = "{PEER}"\n')
    with pytest.raises(ConfigError, match="url"):
        config_file(tmp_path, '[feeds.w]\nkind = "portal-feeds"\ndata_kind = "weather"\n')


def test_weather_peer_keeps_each_locations_fetched_at(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    from tests.test_batching import open_meteo_answer

    clock = FakeClock()
    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    ocfg = config_file(origin_dir, """
[feeds.weather]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
every = "30m"
batch_size = 1
locations = [
  { id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 },
  { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },
]
""")
    calls = 0

    def om(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return open_meteo_answer(request)

    async def publish_origin() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(om)) as client:
            await Coordinator(ocfg, MemoryStore(), client, clock).refresh(ocfg.feeds["weather"])

    asyncio.run(publish_origin())
    clock.advance(600)
    asyncio.run(publish_origin())  # both locations again, 10 minutes later...
    origin = json.loads((origin_dir / "snapshots" / "weather.json").read_text(encoding="utf-8"))
    origin["data"]["locations"][1]["fetched_at"] = (clock.now() - timedelta(minutes=10)).isoformat()
    origin["fetched_at"] = origin["data"]["locations"][1]["fetched_at"]  # ...one of them older

    peer_dir = tmp_path / "peer"
    peer_dir.mkdir()
    pcfg = config_file(peer_dir, f'[feeds.w]\nkind = "portal-feeds"\nurl = "{PEER}"\ndata_kind = "weather"\n')
    clock.advance(60)

    async def copy() -> Any:
        net = Net(json.dumps(origin).encode())
        async with httpx.AsyncClient(transport=httpx.MockTransport(net)) as client:
            return await Coordinator(pcfg, MemoryStore(), client, clock).refresh(pcfg.feeds["w"])

    r = asyncio.run(copy())
    snap = validate_snapshot(peer_dir / "snapshots" / "w.json")
    assert r.status == "fresh" and snap["kind"] == "weather"
    def instant(text: str) -> datetime:
        return datetime.fromisoformat(text)

    def without_times(locs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in loc.items() if k != "fetched_at"} for loc in locs]

    assert without_times(snap["data"]["locations"]) == without_times(origin["data"]["locations"])
    assert instant(snap["fetched_at"]) == instant(origin["fetched_at"])
    # Each location keeps its own fetched_at (the same instants as at the origin).
    assert [instant(loc["fetched_at"]) for loc in snap["data"]["locations"]] == [
        instant(loc["fetched_at"]) for loc in origin["data"]["locations"]
    ]
