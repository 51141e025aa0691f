"""Issue 11, per-location output: ``<feed>/<id>.json`` beside ``<feed>.json``, same contract, same
atomic write, each location's own ``fetched_at``; a location without data is ``unavailable``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from feeds.config import ConfigError
from feeds.portal import location_documents
from feeds.sources.provinces import VIETNAM_PROVINCES
from feeds.testing.upstream import Fault, UpstreamSimulator
from tests.helpers import config_file, make_coordinator


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def weather(url: str, extra: str = "", locations: str = '"vietnam-provinces"') -> str:
    return f"""
[feeds.weather]
kind = "open-meteo"
url = "{url}"
locations = {locations}
per_location_files = true
timeout = "2s"
deadline = "4s"
{extra}
"""


def _read(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text(encoding="utf-8"))


def test_one_file_per_location_same_contract(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    with UpstreamSimulator() as sim:
        cfg = config_file(tmp_path, weather(sim.url("open-meteo")))
        coord, clock, _, client = make_coordinator(cfg, lambda r: httpx.Response(500))
        sim.now = lambda: clock.now().timestamp()  # upstream times follow the fake clock
        coord.client = httpx.AsyncClient()
        run(coord.refresh(cfg.feeds["weather"]))
        whole = validate_snapshot(tmp_path / "snapshots" / "weather.json")
        folder = tmp_path / "snapshots" / "weather"
        files = sorted(p.name for p in folder.iterdir())
        assert files == sorted(f"{loc.id}.json" for loc in VIETNAM_PROVINCES)
        for loc in whole["data"]["locations"]:
            one = validate_snapshot(folder / f"{loc['id']}.json")
            assert one["data"] == {"locations": [loc]}
            assert one["fetched_at"] == loc["fetched_at"]
            assert {k: v for k, v in one.items() if k not in ("data", "fetched_at", "widget")} == \
                {k: v for k, v in whole.items() if k not in ("data", "fetched_at", "widget")}
            # The feed's choice of places does not apply to a one-place file.
            assert one["widget"] == {k: v for k, v in whole["widget"].items() if k != "locations"}
        assert not list(folder.glob(".*.tmp"))
        assert oct((folder / "hue.json").stat().st_mode & 0o777) == "0o644"
        # The primary fails: every file turns stale with the feed, data kept.
        clock.advance(1800)
        sim.set_faults("open-meteo", [Fault.status(503)], repeat_last=True)
        run(coord.refresh(cfg.feeds["weather"]))
        hue = validate_snapshot(folder / "hue.json")
        assert hue["status"] == "stale" and hue["data"]["locations"][0]["id"] == "hue"
        run(coord.client.aclose())


def test_location_without_data_is_unavailable_and_removed_ones_are_deleted(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    doc = {
        "schema_version": 1, "feed": "weather", "kind": "weather", "status": "stale",
        "generated_at": "2026-11-24T15:00:00+07:00", "fetched_at": "2026-11-24T14:00:00+07:00",
        "as_of": None, "stale_since": "2026-11-24T14:30:00+07:00", "next_update_at": None,
        "source": {"name": "Open-Meteo", "url": "https://api.open-meteo.com/v1/forecast"},
        "data": {"locations": [{"id": "a", "name": "A", "lat": 1, "lon": 2, "fetched_at": "2026-11-24T14:00:00+07:00",
                                "current": {"time": None, "temperature_c": None, "apparent_temperature_c": None,
                                            "humidity_pct": None, "wind_speed_kmh": None, "wind_direction_deg": None,
                                            "precipitation_mm": None, "weather_code": None, "condition": "unknown",
                                            "condition_vi": "Không xác định"}, "daily": []}]},
    }
    docs = location_documents(doc, ["a", "b"])
    assert docs["a"]["status"] == "stale" and docs["a"]["data"]["locations"][0]["id"] == "a"
    assert docs["b"]["status"] == "unavailable" and docs["b"]["data"] is None and docs["b"]["fetched_at"] is None
    assert docs["b"]["source"] is None
    for d in docs.values():
        validate_snapshot(d)

    # A location dropped from the configuration loses its file at the next publish.
    with UpstreamSimulator() as sim:
        two = '[{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }, { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 }]'
        cfg = config_file(tmp_path, weather(sim.url("open-meteo"), locations=two))
        coord, clock, store, _ = make_coordinator(cfg, lambda r: httpx.Response(500))
        sim.now = lambda: clock.now().timestamp()  # upstream times follow the fake clock
        coord.client = httpx.AsyncClient()
        run(coord.refresh(cfg.feeds["weather"]))
        folder = tmp_path / "snapshots" / "weather"
        assert sorted(p.name for p in folder.iterdir()) == ["ha-noi.json", "hue.json"]
        (folder / "notes.txt").write_text("kept")
        cfg = config_file(tmp_path, weather(sim.url("open-meteo"), locations=two.replace("hue", "da-nang").replace("Huế", "Đà Nẵng")))
        coord.config = cfg
        clock.advance(1800)
        run(coord.refresh(cfg.feeds["weather"]))
        assert sorted(p.name for p in folder.iterdir()) == ["da-nang.json", "ha-noi.json", "notes.txt"]
        run(coord.client.aclose())


def test_per_location_config_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="per_location_files"):
        config_file(tmp_path, '[feeds.r]\nkind = "vietcombank"\nper_location_files = true\n')
    with pytest.raises(ConfigError, match="per_location_files"):
        config_file(tmp_path, weather("http://127.0.0.1:1/").replace("per_location_files = true", 'per_location_files = "yes"'))
    with pytest.raises(ConfigError, match="cannot name a file"):
        config_file(tmp_path, weather("http://127.0.0.1:1/", locations='[{ id = "../etc", name = "X", lat = 1, lon = 2 }]'))
    cfg = config_file(tmp_path, weather("http://127.0.0.1:1/").replace("per_location_files = true", ""))
    assert cfg.feeds["weather"].per_location_files is False
