"""Weather at scale: one refresh of 34 / 300 / 3,000 locations through the real client stack.

The upstream simulator runs as a separate process on 127.0.0.1 with a fixed latency per
request (150 ms or 700 ms); "primary down" makes Open-Meteo answer 503 to everything, so
the locations must come from MET Norway (one request per location, at most 20/s).  Each
case starts from a cold cache and reports the time of one attempt and how many locations
it refreshed (deadline 20 s).

    .venv/bin/python bench/scale.py [--repeat 3] [--sizes 34,300,3000] [--latencies 0.15,0.7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.app import open_runtime  # noqa: E402
from feeds.config import load_config  # noqa: E402
from feeds.models import Location  # noqa: E402
from feeds.resolver import StaticResolver  # noqa: E402
from feeds.sources.provinces import VIETNAM_PROVINCES  # noqa: E402

OPEN_METEO = "api.open-meteo.com"
MET = "api.met.no"


def locations(n: int) -> tuple[Location, ...]:
    if n <= len(VIETNAM_PROVINCES):
        return VIETNAM_PROVINCES[:n]
    return tuple(
        Location(f"loc-{i:04d}", f"Place {i}", round(8.5 + (i * 0.0131) % 14.5, 4), round(102.2 + (i * 0.0173) % 7.2, 4))
        for i in range(n)
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    """``python -m feeds.testing.upstream`` in its own process, with repeated faults."""

    def __init__(self, faults: list[str]) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "feeds.testing.upstream", "--port", str(self.port)]
        for f in faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        for _ in range(3):
            self.proc.stdout.readline()  # the endpoints it prints once listening

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Case:
    n: int
    latency: float
    primary_down: bool
    seconds: list[float]
    refreshed: list[int]
    fetch_seconds: list[float] = field(default_factory=list)


CONCURRENCY: int | None = None  # None: the built-in default of [http] per_host_concurrency


async def one(folder: Path, sim: Simulator, n: int) -> tuple[float, int, float]:
    cfg_path = folder / "bench.toml"
    http = f"[http]\nper_host_concurrency = {CONCURRENCY}\n\n" if CONCURRENCY else ""
    cfg_path.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + http +
        f'[feeds.weather]\nkind = "open-meteo"\nurl = "{sim.url("/v1/forecast", OPEN_METEO)}"\n'
        'every = "30m"\ntimeout = "10s"\ndeadline = "20s"\n'
        'locations = [{ id = "x", name = "X", lat = 10, lon = 106 }]\n'
        f'fallback = [{{ kind = "met-no", url = "{sim.url("/weatherapi/locationforecast/2.0/compact", MET)}" }}]\n',
        encoding="utf-8",
    )
    cfg = load_config(cfg_path)
    feed = replace(cfg.feeds["weather"], locations=locations(n))
    # Two host names (as in production) for the one simulator: politeness, the circuit
    # breaker and the per-host limits are per host, so the two upstreams must not share one.
    names = StaticResolver({OPEN_METEO: ["127.0.0.1"], MET: ["127.0.0.1"]})
    async with open_runtime(cfg, primary_resolver=names) as rt:
        # The fetch phase (requests, parsing, merging) apart from publishing the outputs.
        fetch_feed = rt.coordinator._fetch_feed
        fetched_in: list[float] = []

        async def timed(*a: Any) -> Any:
            f0 = time.monotonic()
            try:
                return await fetch_feed(*a)
            finally:
                fetched_in.append(time.monotonic() - f0)

        rt.coordinator._fetch_feed = timed  # type: ignore[method-assign]
        started = rt.clock.now()
        t0 = time.monotonic()
        r = await rt.coordinator.refresh(feed)
        took = time.monotonic() - t0
    data = r.snapshot.get("data") or {"locations": []}
    fresh = sum(
        1 for loc in data["locations"] if datetime.fromisoformat(loc["fetched_at"]) >= started.replace(microsecond=0)
    )
    return took, fresh, (fetched_in or [took])[0]


def run_case(n: int, latency: float, primary_down: bool, repeat: int) -> Case:
    faults = [f"met-no=latency:{latency}"]
    faults.append("open-meteo=status:503" if primary_down else f"open-meteo=latency:{latency}")
    sim = Simulator(faults)
    case = Case(n, latency, primary_down, [], [])
    try:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                took, fresh, fetch_s = asyncio.run(one(Path(tmp), sim, n))
            case.seconds.append(took)
            case.refreshed.append(fresh)
            case.fetch_seconds.append(fetch_s)
    finally:
        sim.stop()
    return case


def table(cases: list[Case]) -> str:
    lines = [
        "| locations | latency | primary | fetch phase, median (min-max) | whole attempt incl. publishing | refreshed, median (min-max) |",
        "|---:|---:|---|---|---|---|",
    ]
    for c in cases:
        t = f"{statistics.median(c.seconds):.2f} s ({min(c.seconds):.2f}-{max(c.seconds):.2f})"
        fs = c.fetch_seconds or c.seconds
        ft = f"{statistics.median(fs):.2f} s ({min(fs):.2f}-{max(fs):.2f})"
        pct = [100 * x / c.n for x in c.refreshed]
        f = (
            f"{statistics.median(c.refreshed):.0f} = {statistics.median(pct):.0f}% "
            f"({min(c.refreshed)}-{max(c.refreshed)})"
        )
        lines.append(
            f"| {c.n:,} | {c.latency * 1000:.0f} ms | {'down (503)' if c.primary_down else 'healthy'} | {ft} | {t} | {f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sizes", default="34,300,3000")
    p.add_argument("--latencies", default="0.15,0.7")
    p.add_argument("--primary", choices=["healthy", "down", "both"], default="both")
    p.add_argument("--concurrency", type=int, default=None, help="[http] per_host_concurrency")
    args = p.parse_args(argv)
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    cases = []
    for lat in (float(x) for x in args.latencies.split(",")):
        for down in {"healthy": [False], "down": [True], "both": [False, True]}[args.primary]:
            for n in (int(x) for x in args.sizes.split(",")):
                c = run_case(n, lat, down, args.repeat)
                print(table([c]).splitlines()[-1], flush=True)
                cases.append(c)
    print()
    print(table(cases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
