"""Weather at scale: one refresh of 34 / 300 / 3,000 locations through the real client stack.

The upstream simulator runs as a separate process on 127.0.0.1 with a fixed latency per
request (150 ms or 700 ms); "primary down" makes Open-Meteo answer 503 to everything, so
the locations must come from MET Norway (one request per location, at most 20/s).  Each
case starts from a cold cache and reports the time of one attempt and how many locations
it refreshed (deadline 20 s).

By default one run measures the attempt against its floor (issue 20) for 3,000 locations in
30 Open-Meteo batches at 150 ms, without and with per-location files:

- floor = waves x latency + the fastest parse of the bodies (waves = batches / concurrency per
  host, rounded up; the parse is the fastest of stdlib ``json.loads`` and, when importable,
  orjson / msgspec, over the very bodies the simulator sends);
- the whole attempt (``Coordinator.refresh``: fetch, store, publish every output) and its
  ratio to the floor;
- the worst event-loop lag during the attempt: a probe task sleeping 5 ms at a time, lag =
  how late it woke (the worst of all runs, and the median of each run's worst: the first run
  of the process also pays the first imports of the publish path);
- per-location files: the extra time per file and the flushes of one attempt (``os.fsync``
  calls and one-call ``syncfs`` of many files);
- the same requests through a bare ``httpx.AsyncClient`` (nothing parsed): what the simulator
  and the HTTP stack cost here beyond the configured latency, and the ratio to it.

The simulator runs on its own CPU and the attempt on the others (``--no-pin``: shared), as a
remote upstream would: on 2 CPUs the daemon then has ONE core, the simulator the other.

    .venv/bin/python bench/scale.py [--repeat 5] [--locations 3000] [--latency 0.15]
    .venv/bin/python bench/scale.py --sweep [--repeat 3] [--sizes 34,300,3000] [--latencies 0.15,0.7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
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

from feeds import publish  # noqa: E402
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


class LagProbe:
    """A task that sleeps ``every`` seconds at a time and records how late it woke."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.worst = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.every)
            self.worst = max(self.worst, time.perf_counter() - t0 - self.every)

    def __enter__(self) -> LagProbe:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


class FsyncCount:
    """Counts flushes to the disk: ``os.fsync`` calls and the one-call ``syncfs`` of many files
    (``feeds.publish._flush_files``; the per-location files' cost on a real disk)."""

    def __init__(self) -> None:
        from feeds import publish

        self.calls = 0
        self._publish = publish
        self._real = os.fsync
        self._real_flush = publish._flush_files

    def __enter__(self) -> FsyncCount:
        def counted(fd: Any) -> None:
            self.calls += 1
            self._real(fd)

        def flush(folder: Path, paths: list[str]) -> None:
            if self._publish._syncfs():
                self.calls += 1  # one syncfs; else it fsyncs each file (counted above)
            self._real_flush(folder, paths)

        os.fsync = counted
        self._publish._flush_files = flush  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._real
        self._publish._flush_files = self._real_flush  # type: ignore[assignment]


def config_text(sim: Simulator) -> str:
    http = f"[http]\nper_host_concurrency = {CONCURRENCY}\n\n" if CONCURRENCY else ""
    return (
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + http +
        f'[feeds.weather]\nkind = "open-meteo"\nurl = "{sim.url("/v1/forecast", OPEN_METEO)}"\n'
        'every = "30m"\ntimeout = "10s"\ndeadline = "20s"\n'
        'locations = [{ id = "x", name = "X", lat = 10, lon = 106 }]\n'
        f'fallback = [{{ kind = "met-no", url = "{sim.url("/weatherapi/locationforecast/2.0/compact", MET)}" }}]\n'
    )


async def one(folder: Path, sim: Simulator, n: int) -> tuple[float, int, float]:
    cfg_path = folder / "bench.toml"
    cfg_path.write_text(config_text(sim), encoding="utf-8")
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


# -- the attempt against its floor (issue 20) ----------------------------------------------
@dataclass
class Attempt:
    whole: float
    fetch: float
    lag: float
    fsyncs: int
    fresh: int


def bare_client(sim: Simulator, n: int, batch_size: int, per_host: int, repeat: int) -> float:
    """The same requests through a plain ``httpx.AsyncClient``, ``per_host`` at a time, bodies
    read, nothing parsed: what the simulator and the HTTP stack cost on this machine beyond
    the configured latency (the median of ``repeat`` runs)."""
    import httpx

    from feeds.sources import open_meteo

    specs = open_meteo.build_requests(
        sim.url("/v1/forecast"), locations(n), user_agent="bench", batch_size=batch_size
    )

    async def once() -> float:
        sem = asyncio.Semaphore(per_host)
        async with httpx.AsyncClient(headers={"Host": OPEN_METEO}, timeout=30) as client:

            async def get(spec: Any) -> None:
                async with sem:
                    (await client.get(spec.url, params=list(spec.params))).raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(get(spec) for spec, _ in specs))
            return time.perf_counter() - t0

    return statistics.median(asyncio.run(once()) for _ in range(max(1, repeat)))


def fastest_parse(sim: Simulator, n: int, batch_size: int) -> tuple[float, int, int]:
    """The fastest parse of the bodies one attempt gets: (seconds, bytes, batches)."""
    import httpx

    from feeds.sources import open_meteo

    specs = open_meteo.build_requests(
        sim.url("/v1/forecast"), locations(n), user_agent="bench", batch_size=batch_size
    )
    with httpx.Client(headers={"Host": OPEN_METEO}, timeout=30) as client:
        bodies = [client.get(spec.url, params=list(spec.params)).content for spec, _ in specs]
    parsers: list[Any] = [json.loads]
    for name in ("orjson", "msgspec"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        parsers.append(mod.loads if name == "orjson" else mod.json.decode)
    best = math.inf
    for loads in parsers:
        for _ in range(3):
            t0 = time.perf_counter()
            for b in bodies:
                loads(b)
            best = min(best, time.perf_counter() - t0)
    return best, sum(len(b) for b in bodies), len(bodies)


async def attempt(folder: Path, sim: Simulator, n: int, per_location: bool, count: int = 1) -> list[Attempt]:
    """``count`` attempts one after the other in one runtime, as the daemon makes them (the
    third and later ones find the spares of the second's files, rewritten in place: in
    production the attempts are ``every`` apart, longer than ``SPARE_QUIET``, here not)."""
    cfg_path = folder / "bench.toml"
    cfg_path.write_text(config_text(sim), encoding="utf-8")
    cfg = load_config(cfg_path)
    feed = replace(cfg.feeds["weather"], locations=locations(n), per_location_files=per_location)
    names = StaticResolver({OPEN_METEO: ["127.0.0.1"], MET: ["127.0.0.1"]})
    out: list[Attempt] = []
    quiet = publish.SPARE_QUIET
    async with open_runtime(cfg, primary_resolver=names) as rt:
        fetch_feed = rt.coordinator._fetch_feed
        fetched_in: list[float] = []

        async def timed(*a: Any) -> Any:
            f0 = time.perf_counter()
            try:
                return await fetch_feed(*a)
            finally:
                fetched_in.append(time.perf_counter() - f0)

        rt.coordinator._fetch_feed = timed  # type: ignore[method-assign]
        try:
            for k in range(count):
                publish.SPARE_QUIET = quiet if k < 2 else 0.0
                os.sync()  # the previous attempt's files are on disk before this one starts
                fetched_in.clear()
                started = rt.clock.now()
                await asyncio.sleep(0.05)  # the probe's first samples before the attempt
                with LagProbe() as probe, FsyncCount() as fsyncs:
                    t0 = time.perf_counter()
                    r = await rt.coordinator.refresh(feed)
                    took = time.perf_counter() - t0
                    await asyncio.sleep(0.01)  # a lag at the very end is seen too
                data = r.snapshot.get("data") or {"locations": []}
                fresh = sum(
                    1 for loc in data["locations"]
                    if datetime.fromisoformat(loc["fetched_at"]) >= started.replace(microsecond=0)
                )
                out.append(Attempt(took, (fetched_in or [took])[0], probe.worst, fsyncs.calls, fresh))
        finally:
            publish.SPARE_QUIET = quiet
    return out


def pin_apart(sim: Simulator) -> str:
    """The simulator on the last CPU, this process on the others: in production the upstream
    is another machine, and here it must not take the daemon's core while it answers 10
    batches at once (it did: loop lags of 60-90 ms were the simulator's CPU, not ours)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    os.sched_setaffinity(sim.proc.pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"simulator pinned to CPU {cpus[-1]}, the attempt to CPU {','.join(map(str, cpus[:-1]))}"


def floor_table(n: int, latency: float, repeat: int, where: Path | None, pin: bool = True) -> str:
    sim = Simulator([f"met-no=latency:{latency}", f"open-meteo=latency:{latency}"])
    pinned = pin_apart(sim) if pin else "not pinned (--no-pin)"
    batch_size = 100
    per_host = CONCURRENCY or 10
    try:
        parse_s, size, batches = fastest_parse(sim, n, batch_size)
        waves = math.ceil(batches / per_host)
        floor = waves * latency + parse_s
        bare = bare_client(sim, n, batch_size, per_host, repeat)
        # (per-location files, later attempt) -> runs.  "Later": the third attempt of one runtime
        # (the daemon's): the cache holds the last good data, the files exist, and the files
        # the second attempt replaced are spares, rewritten in place (feeds.publish.write_files).
        runs: dict[tuple[bool, bool], list[Attempt]] = {(p, lt): [] for p in (False, True) for lt in (False, True)}
        keep: list[tempfile.TemporaryDirectory[str]] = []
        try:
            for _ in range(repeat):
                for per_location in (False, True):
                    # Every run's folder is removed at the end, not between runs: removing
                    # 3,000 files is the kernel's work for a while after (and a deleting
                    # filesystem's), which the next run must not be measured with.
                    tmp = tempfile.TemporaryDirectory(prefix="bench-scale-", dir=where)
                    keep.append(tmp)
                    first, _, third = asyncio.run(attempt(Path(tmp.name), sim, n, per_location, count=3))
                    runs[(per_location, False)].append(first)
                    runs[(per_location, True)].append(third)
        finally:
            for tmp in keep:
                tmp.cleanup()
    finally:
        sim.stop()

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})"

    lines = [
        f"{n:,} locations in {batches} Open-Meteo batches ({size / 1e6:.2f} MB), {latency * 1000:.0f} ms per request, "
        f"{per_host} in flight per host; median (min-max) of {repeat}; {pinned}.",
        "",
        f"Floor: {waves} waves x {latency * 1000:.0f} ms + fastest parse {parse_s * 1000:.0f} ms = **{floor:.2f} s**. "
        f"The same requests through a bare httpx client (nothing parsed): {bare:.2f} s "
        f"({bare - waves * latency:+.2f} s over the {waves} x {latency * 1000:.0f} ms: the simulator and the HTTP stack "
        "on this machine).",
        "",
        "| per-location files | attempt | fetch phase | whole attempt | whole / floor | whole / bare client + parse | "
        "worst loop lag, max (median) | flushes (fsync, syncfs) | per file |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for later in (False, True):
        base = statistics.median(a.whole for a in runs[(False, later)])
        for per_location in (False, True):
            rs = runs[(per_location, later)]
            whole = [a.whole for a in rs]
            ratio = statistics.median(whole) / floor
            lag = max(a.lag for a in rs)
            lag_med = statistics.median(a.lag for a in rs)
            per_file = (
                f"{(statistics.median(whole) - base) / n * 1000:.2f} ms" if per_location else "-"
            )
            assert all(a.fresh == n for a in rs), [a.fresh for a in rs]
            kind = "later (3rd of one run)" if later else "first (cold)"
            lines.append(
                f"| {'yes' if per_location else 'no'} | {kind} | {med([a.fetch for a in rs])} | {med(whole)} | "
                f"{ratio:.2f} | {statistics.median(whole) / (bare + parse_s):.2f} | "
                f"{lag * 1000:.0f} ms ({lag_med * 1000:.0f} ms) | {statistics.median(a.fsyncs for a in rs):.0f} | {per_file} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=None, help="runs per case (5 against the floor, 3 in --sweep)")
    p.add_argument("--sweep", action="store_true", help="the older table: sizes x latencies x primary")
    p.add_argument("--locations", type=int, default=3000)
    p.add_argument("--latency", type=float, default=0.15)
    p.add_argument("--dir", type=Path, default=None, help="where the snapshots go (default: a temporary folder)")
    p.add_argument("--sizes", default="34,300,3000")
    p.add_argument("--latencies", default="0.15,0.7")
    p.add_argument("--primary", choices=["healthy", "down", "both"], default="both")
    p.add_argument("--concurrency", type=int, default=None, help="[http] per_host_concurrency")
    p.add_argument("--no-pin", action="store_true",
                   help="let the simulator and the attempt share every CPU (default: apart, see pin_apart)")
    args = p.parse_args(argv)
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    if not args.sweep:
        print(floor_table(args.locations, args.latency, args.repeat or 5, args.dir, pin=not args.no_pin))
        return 0
    args.repeat = args.repeat or 3
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
