"""Every fault class through the simulator (a real HTTP server on 127.0.0.1) and the resolver
seam: the snapshot published (status, data intact, no error text), health (kind, detail),
the simulator's request counts (politeness, breaker) and the publish before the deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feeds.app import open_runtime
from feeds.clock import Clock, FakeClock
from feeds.config import Config, load_config
from feeds.coordinator import AttemptResult
from feeds.errors import DnsError
from feeds.resolver import StaticResolver
from feeds.store import Health
from feeds.testing.dns_server import FakeDnsServer
from feeds.testing.upstream import Fault, UpstreamSimulator

BANK = "www.vietcombank.com.vn"
OPEN_METEO = "api.open-meteo.com"
MET = "api.met.no"
DEADLINE = 3.0


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    with UpstreamSimulator() as s:
        yield s


def make_config(tmp_path: Path, sim: UpstreamSimulator, extra: str = "", rates: str = 'min_interval = "0s"\n') -> Config:
    p = sim.port
    text = f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

{extra}

[feeds.rates]
kind = "vietcombank"
url = "http://{BANK}:{p}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "1s"
deadline = "{DEADLINE}s"
{rates}

[feeds.weather]
kind = "open-meteo"
url = "http://{OPEN_METEO}:{p}/v1/forecast"
every = "30m"
timeout = "1s"
deadline = "{DEADLINE}s"
batch_size = 1
locations = [
  {{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }},
  {{ id = "hue", name = "Huế", lat = 16.46, lon = 107.59 }},
  {{ id = "ho-chi-minh", name = "Hồ Chí Minh", lat = 10.78, lon = 106.70 }},
]
fallback = [{{ kind = "met-no", url = "http://{MET}:{p}/weatherapi/locationforecast/2.0/compact" }}]
"""
    path = tmp_path / "portal-feeds.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def dns_table() -> StaticResolver:
    return StaticResolver({BANK: ["127.0.0.1"], OPEN_METEO: ["127.0.0.1"], MET: ["127.0.0.1"]})


def refresh(
    cfg: Config, name: str, resolver: StaticResolver, clock: Clock | None = None
) -> tuple[AttemptResult, float, Health]:
    async def go() -> tuple[AttemptResult, float, Health]:
        async with open_runtime(cfg, primary_resolver=resolver, clock=clock) as rt:
            t0 = time.monotonic()
            r = await rt.coordinator.refresh(cfg.feeds[name])
            took = time.monotonic() - t0
            return r, took, rt.store.get(f"health/{name}")

    return asyncio.run(go())


def snapshot(tmp_path: Path, name: str) -> dict[str, Any]:
    return json.loads((tmp_path / "snapshots" / f"{name}.json").read_text(encoding="utf-8"))


def assert_clean(tmp_path: Path, name: str) -> None:
    text = (tmp_path / "snapshots" / f"{name}.json").read_text(encoding="utf-8")
    for bad in ("Traceback", "Error", "remote name", "<html", "Server Error", "Errno"):
        assert bad not in text


FAULTS = [
    # fault, expected kind, detail, retried?
    (Fault.status(500), "http_status", "500", True),
    (Fault.status(503, retry_after=1), "http_status", "503", True),
    (Fault.status(429, retry_after=120), "http_status", "429", False),
    (Fault.status(404), "http_status", "404", False),
    (Fault.html_error(), "invalid_payload", "html", False),
    (Fault.empty(), "invalid_payload", "empty", False),
    (Fault.garbage(), "invalid_payload", "malformed", False),
    (Fault.truncated(), "connect", "dropped", True),
    (Fault.reset(), "connect", "dropped", True),
    (Fault.hang(), "timeout", None, True),
    (Fault.latency(5), "timeout", None, True),
    (Fault.trickle(20), "timeout", "deadline", False),
    (Fault.huge(5_000_000), "invalid_payload", "too_large", False),
]


@pytest.mark.parametrize(("fault", "kind", "detail", "retried"), FAULTS, ids=[f[0].kind + str(f[0].status_code) for f in FAULTS])
def test_each_fault_keeps_good_data(tmp_path: Path, sim: UpstreamSimulator, validate_snapshot, fault: Fault,  # type: ignore[no-untyped-def]
                                    kind: str, detail: str | None, retried: bool) -> None:
    cfg = make_config(tmp_path, sim)
    resolver = dns_table()
    r, _, _ = refresh(cfg, "rates", resolver)
    assert r.status == "fresh"
    good = snapshot(tmp_path, "rates")["data"]
    sim.reset_counts()
    sim.set_faults("vietcombank", [fault], repeat_last=True)
    r, took, health = refresh(cfg, "rates", resolver)
    snap = validate_snapshot(tmp_path / "snapshots" / "rates.json")
    assert snap["status"] == "stale"
    assert snap["data"] == good
    assert_clean(tmp_path, "rates")
    assert health.outcome == kind
    if detail is not None:
        assert health.detail == detail
    assert took < DEADLINE + 0.5  # republished by the deadline
    n = sim.request_count("vietcombank")
    assert (n > 1) if retried else (n == 1), n


def test_retry_after_is_waited(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    sim.set_faults("vietcombank", [Fault.status(503, retry_after=1)])
    r, took, _ = refresh(cfg, "rates", dns_table())
    assert r.status == "fresh" and 1.0 <= took < DEADLINE
    reqs = sim.requests("vietcombank")
    assert len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.95


def test_long_retry_after_defers_the_next_run(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    sim.set_faults("vietcombank", [Fault.status(429, retry_after=120)])
    r, _, _ = refresh(cfg, "rates", dns_table())
    assert (r.outcome, r.status) == ("http_status", "unavailable")
    r, _, health = refresh(cfg, "rates", dns_table())
    assert r.outcome == "held_back" and health.detail == "min_interval"
    assert sim.request_count("vietcombank") == 1


def test_serve_stale_dns_keeps_data_fresh(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    resolver = dns_table()
    assert refresh(cfg, "rates", resolver)[0].status == "fresh"
    resolver.table[BANK] = DnsError("x", detail="temporary")  # the resolver is down
    r, _, health = refresh(cfg, "rates", resolver)
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert health.stale_dns_used is True
    assert sim.request_count("vietcombank") == 2


def test_dns_failure_cold_is_unavailable_then_stale(tmp_path: Path, sim: UpstreamSimulator, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path, sim)
    resolver = StaticResolver({})  # NXDOMAIN for everything
    r, _, health = refresh(cfg, "rates", resolver)
    assert (r.status, health.outcome, health.detail) == ("unavailable", "dns", "nxdomain")
    assert validate_snapshot(tmp_path / "snapshots" / "rates.json")["data"] is None
    assert sim.request_count("vietcombank") == 0
    assert_clean(tmp_path, "rates")


def test_fallback_nameservers(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with FakeDnsServer({BANK: ["127.0.0.1"]}) as fake:
        cfg = make_config(tmp_path, sim, extra=f'[dns]\nnameservers = ["127.0.0.1:{fake.address[1]}"]\ntimeout = "1s"\n')
        r, _, _ = refresh(cfg, "rates", StaticResolver({BANK: DnsError("x", detail="temporary")}))
        assert r.status == "fresh"
        assert fake.query_count >= 1
        fake.set_behaviour(BANK, "servfail")
        r, _, health = refresh(cfg, "rates", StaticResolver({BANK: DnsError("x", detail="temporary")}))
        # both resolvers fail: the address from the last good lookup is served stale
        assert r.status == "fresh" and health.stale_dns_used


def test_fallback_nameserver_timeout_is_bounded(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with FakeDnsServer({BANK: ["127.0.0.1"]}) as fake:
        fake.set_behaviour(BANK, "drop")
        cfg = make_config(tmp_path, sim, extra=f'[dns]\nnameservers = ["127.0.0.1:{fake.address[1]}"]\ntimeout = "0.5s"\n')
        r, took, health = refresh(cfg, "rates", StaticResolver({BANK: DnsError("x", detail="timeout")}))
        assert (r.status, health.outcome) == ("unavailable", "dns")
        assert health.detail in ("timeout", "temporary")
        assert took < DEADLINE + 0.5


def test_circuit_breaker_leaves_host_alone(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    sim.set_faults("vietcombank", [Fault.status(404)], repeat_last=True)
    for _ in range(5):
        refresh(cfg, "rates", dns_table())
    assert sim.request_count("vietcombank") == 5
    r, _, health = refresh(cfg, "rates", dns_table())
    assert r.outcome == "held_back" and health.detail == "circuit_open"
    assert sim.request_count("vietcombank") == 5
    from feeds.health import feed_rows
    from feeds.store import open_store

    store = open_store(cfg.cache_dir)
    try:
        from datetime import UTC, datetime

        assert feed_rows(cfg, store, datetime.now(UTC), ["rates"])[0].circuit == "open"
    finally:
        store.close()


def test_circuit_breaker_configured_threshold_and_half_open_probe(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim, extra='[http]\nbreaker_failures = 2\nbreaker_cooldown = "1s"\n')
    assert (cfg.breaker_failures, cfg.breaker_cooldown) == (2, 1.0)
    # An injected clock: the cool-down passes when the test says so (retries' sleeps move it
    # too), never while a loaded machine is slow between two attempts.
    clock = FakeClock(datetime.now(UTC))
    sim.set_faults("vietcombank", [Fault.status(500)], repeat_last=True)
    for _ in range(2):
        refresh(cfg, "rates", dns_table(), clock)
    before = sim.request_count("vietcombank")
    r, _, health = refresh(cfg, "rates", dns_table(), clock)
    assert r.outcome == "held_back" and health.detail == "circuit_open"
    assert sim.request_count("vietcombank") == before
    clock.advance(1.1)  # the cool-down passes: one probe reaches the host, fails, opens again
    refresh(cfg, "rates", dns_table(), clock)
    assert sim.request_count("vietcombank") == before + 1
    r, _, health = refresh(cfg, "rates", dns_table(), clock)
    assert r.outcome == "held_back" and health.detail == "circuit_open"
    clock.advance(1.1)  # the next probe succeeds: the breaker closes
    sim.set_faults("vietcombank", [])
    r, _, health = refresh(cfg, "rates", dns_table(), clock)
    assert r.status == "fresh" and health.consecutive_failures == 0


def test_politeness_across_runs_and_restarts(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim, rates="")  # vietcombank default: 5 minutes
    assert cfg.feeds["rates"].min_interval == 300
    assert refresh(cfg, "rates", dns_table())[0].status == "fresh"
    r, _, health = refresh(cfg, "rates", dns_table())  # a new runtime: like a restart
    assert (r.status, r.outcome) == ("fresh", "held_back")
    assert health.consecutive_failures == 0
    assert sim.request_count("vietcombank") == 1


def test_conditional_request_304_is_fresh(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    sim.set_validators("vietcombank", etag='"rates-v1"')
    assert refresh(cfg, "rates", dns_table())[0].status == "fresh"
    data = snapshot(tmp_path, "rates")["data"]
    r, _, _ = refresh(cfg, "rates", dns_table())
    assert r.status == "fresh" and snapshot(tmp_path, "rates")["data"] == data
    second = sim.requests("vietcombank")[1]
    assert second.headers.get("if-none-match") == '"rates-v1"'


ONE_AT_A_TIME = "[http]\nper_host_concurrency = 1\n"  # batches in order: the 2nd one is Huế


def test_weather_partial_keeps_each_location(tmp_path: Path, sim: UpstreamSimulator, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path, sim, extra=ONE_AT_A_TIME)
    r, _, _ = refresh(cfg, "weather", dns_table())
    assert r.status == "fresh"
    first = {loc["id"]: loc for loc in snapshot(tmp_path, "weather")["data"]["locations"]}
    assert list(first) == ["ha-noi", "hue", "ho-chi-minh"]
    time.sleep(1.1)  # fetched_at has one-second resolution
    sim.set_faults("open-meteo", [Fault.latency(0), Fault.status(404), Fault.latency(0)])
    sim.set_faults("met-no", [Fault.status(404)], repeat_last=True)  # the fallback is down too
    r, _, health = refresh(cfg, "weather", dns_table())
    snap = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    assert snap["status"] == "stale" and (health.outcome, health.detail) == ("http_status", "partial")
    now = {loc["id"]: loc for loc in snap["data"]["locations"]}
    assert now["hue"] == first["hue"]  # kept, with its own fetched_at
    assert now["ha-noi"]["fetched_at"] > first["ha-noi"]["fetched_at"]
    assert snap["fetched_at"] == first["hue"]["fetched_at"]


def test_weather_failover_is_per_location(tmp_path: Path, sim: UpstreamSimulator, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    """One primary batch fails: only its location is asked of MET Norway; the feed is whole."""
    cfg = make_config(tmp_path, sim, extra=ONE_AT_A_TIME)
    sim.set_faults("open-meteo", [Fault.latency(0), Fault.status(404), Fault.latency(0)])
    r, _, health = refresh(cfg, "weather", dns_table())
    snap = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    assert snap["status"] == "fresh" and r.outcome == "ok"
    assert snap["source"]["name"] == "Open-Meteo"  # the source of most locations
    assert [loc["id"] for loc in snap["data"]["locations"]] == ["ha-noi", "hue", "ho-chi-minh"]
    met = sim.requests("met-no")
    assert len(met) == 1 and met[0].query["lat"] == "16.46"
    assert health.fallback_used


def test_weather_failover_to_met_no(tmp_path: Path, sim: UpstreamSimulator, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path, sim)
    sim.set_faults("open-meteo", [Fault.status(400, body=b'{"error":true,"reason":"x"}')], repeat_last=True)
    r, _, health = refresh(cfg, "weather", dns_table())
    snap = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    assert snap["status"] == "fresh" and snap["source"]["name"] == "MET Norway"
    assert health.fallback_used and health.source_used == "MET Norway"
    assert len(snap["data"]["locations"]) == 3
    reqs = sim.requests("met-no")
    assert len(reqs) == 3 and all("portal-feeds" in q.headers["user-agent"] for q in reqs)
    # MET's Expires is honoured: a second attempt within it asks nothing
    refresh(cfg, "weather", dns_table())
    assert sim.request_count("met-no") == 3


def test_xml_bombs_through_the_wire(tmp_path: Path, sim: UpstreamSimulator) -> None:
    cfg = make_config(tmp_path, sim)
    fix = Path(__file__).parent / "fixtures" / "vietcombank"
    for name in ("billion-laughs.xml", "xxe.xml"):
        sim.set_payload("vietcombank", (fix / name).read_bytes())
        r, took, health = refresh(cfg, "rates", dns_table())
        assert (r.outcome, health.detail) == ("invalid_payload", "doctype") and took < 1
    from feeds.store import open_store

    store = open_store(cfg.cache_dir)
    try:
        kept = store.get("rejected/rates")
    finally:
        store.close()
    assert [k["detail"] for k in kept] == ["doctype", "doctype"]
