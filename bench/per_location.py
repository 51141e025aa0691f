"""What per-location snapshot files cost, and what they save a page (issue 11).

For 34, 300 and 3,000 locations (weather data shaped exactly as the daemon publishes it, 3
daily days each): the whole ``weather.json`` against one ``weather/<id>.json`` — raw and
gzipped as nginx would send them (zlib level 1, nginx's default ``gzip_comp_level``, and 6)
— and the time to publish each way: the whole file alone, and the whole file plus every
per-location file (``feeds.portal.write_companions``: ``feeds.publish.write_files``, every
file to a temporary file, one ``syncfs`` for them all, the renames, one fsync of the folder). Median of ``--repeat`` runs, on the real disk
under ``--dir`` (default: a temporary folder under the working directory, not tmpfs).

    .venv/bin/python bench/per_location.py [--repeat 5] [--dir PATH]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.config import parse_config  # noqa: E402
from feeds.models import CurrentWeather, DailyForecast, Location, LocationWeather  # noqa: E402
from feeds.portal import location_documents, write_companions  # noqa: E402
from feeds.publish import build_snapshot, dumps, write_atomic  # noqa: E402
from feeds.timezone import in_zone, load_zone  # noqa: E402


def document(n: int) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    rnd = random.Random(n)  # varied values, so gzip is not flattered by repetition
    locs = []
    for i in range(n):
        loc = Location(f"loc-{i:04d}", f"Địa điểm số {i}", round(8 + rnd.random() * 15, 2), round(102 + rnd.random() * 7, 2))

        def t() -> float:
            return round(15 + rnd.random() * 20, 1)

        cur = CurrentWeather(now, t(), t(), rnd.randint(40, 100), round(rnd.random() * 30, 1), rnd.randint(0, 359),
                             round(rnd.random() * 5, 1), 61, "rain_light", "Mưa nhỏ")
        daily = tuple(
            DailyForecast((now + timedelta(days=d)).date(), t(), t(), round(rnd.random() * 20, 1), 3, "overcast", "Nhiều mây")
            for d in range(3)
        )
        locs.append(LocationWeather(loc, cur, daily).to_data(now))
    snap = build_snapshot(
        feed="weather", kind="weather", status="fresh", generated_at=now, fetched_at=now, as_of=now,
        stale_since=None, next_update_at=now + timedelta(minutes=30), source_name="Open-Meteo",
        source_url="https://api.open-meteo.com/v1/forecast", data={"locations": locs},
    )
    return in_zone(snap, load_zone("Asia/Ho_Chi_Minh")), [loc["id"] for loc in locs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-per-location-", dir=args.dir or Path.cwd()))
    print(f"# per-location snapshot files: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, folder {base}")
    print("| locations | whole file | gzip -1 / -6 | one location | gzip -1 / -6 "
          "| publish .json | + .html | + per-location files | per file |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for n in (34, 300, 3000):
            doc, ids = document(n)
            cfg = parse_config(
                {"feeds": {"weather": {"kind": "open-meteo", "per_location_files": True,
                                       "locations": [{"id": i, "name": i, "lat": 1, "lon": 1} for i in ids]}}},
                base,
            )
            feed = cfg.feeds["weather"]
            html_only = replace(feed, per_location_files=False)
            whole = dumps(doc)
            one = dumps(location_documents(doc, ids[:1])[ids[0]])
            t_whole, t_html, t_all = [], [], []
            for r in range(args.repeat):
                folder = base / f"{n}-{r}"
                t0 = time.perf_counter()
                write_atomic(folder / "weather.json", whole)
                t_whole.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                write_atomic(folder / "weather.json", dumps(doc))
                write_companions(cfg, html_only, folder, doc)
                t_html.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                write_atomic(folder / "weather.json", dumps(doc))
                write_companions(cfg, feed, folder, doc)
                t_all.append(time.perf_counter() - t0)
                shutil.rmtree(folder)
            tw, th, ta = (statistics.median(t) for t in (t_whole, t_html, t_all))
            print(f"| {n:,} | {len(whole):,} B | {len(zlib.compress(whole, 1)):,} / {len(zlib.compress(whole, 6)):,} B "
                  f"| {len(one):,} B | {len(zlib.compress(one, 1)):,} / {len(zlib.compress(one, 6)):,} B "
                  f"| {tw * 1000:.1f} ms | {th * 1000:.0f} ms | {ta * 1000:.0f} ms | {(ta - th) / n * 1000:.2f} ms |")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
