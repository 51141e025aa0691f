"""Cost of the publish gate (issue 16 §1) for a weather feed of 34 / 300 / 3,000 locations.

One snapshot is built, bounded (``feeds.bounds.check_good``) and validated against the
shipped schema with ECMA-262 patterns (``feeds.bounds.schema_problem``) before it is
written; this times each step, and a whole ``republish`` (gate + never-older check + write of
the JSON, the HTML fragment and, with ``--per-location``, one file per location).

    .venv/bin/python bench/publish_gate.py [--sizes 34,300,3000] [--repeat 5] [--per-location]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from feeds import bounds  # noqa: E402
from feeds.clock import FakeClock  # noqa: E402
from feeds.config import load_config  # noqa: E402
from feeds.coordinator import Coordinator  # noqa: E402
from feeds.models import Location  # noqa: E402
from feeds.publish import build_snapshot  # noqa: E402
from feeds.store import GoodData, MemoryStore  # noqa: E402
from feeds.timezone import in_zone  # noqa: E402


def _locations(n: int) -> tuple[Location, ...]:
    return tuple(Location(f"loc-{i}", f"Điểm {i}", 8.5 + (i % 150) * 0.1, 102.2 + (i // 150) * 0.3) for i in range(n))


def _data(locs: tuple[Location, ...], stamp: str) -> dict[str, Any]:
    return {"locations": [
        {"id": loc.id, "name": loc.name, "short_name": loc.name, "lat": loc.lat, "lon": loc.lon, "fetched_at": stamp,
         "current": {"time": stamp, "temperature_c": 24.5, "apparent_temperature_c": 26.0, "humidity_pct": 80,
                     "wind_speed_kmh": 8.3, "wind_direction_deg": 120, "precipitation_mm": 0.0, "weather_code": 3,
                     "condition": "overcast", "condition_vi": "Nhiều mây"},
         "daily": [{"date": f"2026-11-2{d}", "temperature_min_c": 19.0, "temperature_max_c": 26.0,
                    "precipitation_mm": 0.4, "weather_code": 61, "condition": "rain", "condition_vi": "Mưa"}
                   for d in (4, 5, 6)]}
        for loc in locs
    ]}


def _time(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="34,300,3000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--per-location", action="store_true")
    args = ap.parse_args()
    clock = FakeClock()
    now = clock.now()
    stamp = now.isoformat()
    print(f"{'locations':>9} {'build ms':>9} {'bounds ms':>9} {'schema ms':>9} {'republish ms':>12}")
    for n in (int(x) for x in args.sizes.split(",")):
        locs = _locations(n)
        good = GoodData(_data(locs, stamp), now, now, "Open-Meteo", "https://api.open-meteo.com/v1/forecast")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "portal-feeds.toml"
            path.write_text(
                f'[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n[feeds.weather]\nkind = "open-meteo"\n'
                f'url = "https://api.open-meteo.com/v1/forecast"\nlocations = [{{ id = "x", name = "X", lat = 1, lon = 2 }}]\n'
                f'per_location_files = {"true" if args.per_location else "false"}\n',
                encoding="utf-8",
            )
            cfg = load_config(path)
            feed = replace(cfg.feeds["weather"], locations=locs)

            def build() -> dict[str, Any]:
                snap = build_snapshot(feed="weather", kind="weather", status="fresh", generated_at=now, fetched_at=now,
                                      as_of=now, stale_since=None, next_update_at=now, source_name="Open-Meteo",
                                      source_url="https://api.open-meteo.com/v1/forecast", data=good.data)  # noqa: B023
                return in_zone(snap, cfg.publish.tz)  # noqa: B023

            snap = build()
            assert bounds.schema_problem(snap) is None
            store = MemoryStore()
            store.set("good/weather", good)
            coord = Coordinator(cfg, store, httpx.AsyncClient(), clock)
            coord.republish(feed)  # warm: schema compiled, file present
            print(
                f"{n:>9} {_time(build, args.repeat):>9.1f} {_time(lambda: bounds.check_good(good, now), args.repeat):>9.1f}"  # noqa: B023
                f" {_time(lambda: bounds.schema_problem(snap), args.repeat):>9.1f}"  # noqa: B023
                f" {_time(lambda: coord.republish(feed), args.repeat):>12.1f}"  # noqa: B023
            )


if __name__ == "__main__":
    main()
