"""Side by side on loopback: what portals do today against portal-feeds, on one fault schedule.

Three contenders show Vietcombank's rates on a page rendered ``--rate`` times a second each:

- **inline page**: every render fetches the bank's XML itself (timeout 10 s, like
  ``file_get_contents`` with a timeout) and shows the rates, or the error it got;
- **cron+curl**: a real ``curl -sf -m 10 -o rates.xml URL`` process every ``--every`` seconds
  (the crontab line portals use); every render parses ``rates.xml``;
- **portal-feeds**: the real daemon (``portal-feeds run``, a subprocess); every render reads
  ``snapshots/rates.json``.

The simulated bank (``feeds.testing.upstream``, 127.0.0.1) goes through the same schedule
for all three: healthy, 503, never answers, 200 garbage, rates x10, connection reset,
3 s latency, healthy.  A render is:

- ``valid``: the true rates (portal-feeds: also ``stale`` with its age shown, which is
  flagged, not hidden);
- ``error text``: the page shows an error or nothing (an exception, a non-200, no data);
- ``wrong/garbage``: rates that are not the bank's (x10) or bytes that are not rates;
- ``unflagged stale``: cron+curl's file is the true rates but older than 3 cron intervals,
  and the page cannot tell.

Then the scale table (``bench/scale.py``) and the footprint: the daemon's RSS and CPU per
refresh against one curl job (``wait4`` rusage of each curl process).

    .venv/bin/python bench/compare.py             # full: 30 s per phase, scale 34/300/3,000
    .venv/bin/python bench/compare.py --quick     # < 2 min, for CI: 4 s per phase, small scale

The tables go to docs/benchmarks.md (``--out`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from feeds.sources import vietcombank  # noqa: E402
from feeds.testing.upstream import Fault, UpstreamSimulator, _payload  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
CLASSES = ("valid", "error text", "wrong/garbage", "unflagged stale")


def times_ten(body: bytes) -> bytes:
    def mul(m: re.Match[bytes]) -> bytes:
        v = Decimal(m.group(2).decode().replace(",", "")) * 10
        return m.group(1) + f'"{v:,.2f}"'.encode()

    return re.sub(rb'((?:Buy|Transfer|Sell)=)"([\d,.]+)"', mul, body)


HEALTHY = _payload("vcb-2022-12-21-collapsed.xml")
TRUTH = {r.code: r.sell for r in vietcombank.parse(HEALTHY).rates}

#: (name, what the bank does); each phase lasts --phase seconds.
SCHEDULE: list[tuple[str, Any]] = [
    ("healthy", None),
    ("503", Fault.status(503)),
    ("never answers", Fault.hang()),
    ("200 garbage", Fault.garbage()),
    ("rates x10", "x10"),
    ("connection reset", Fault.reset()),
    ("latency 3 s", Fault.latency(3)),
    ("healthy again", None),
]


def rates_match(rates: dict[str, Any]) -> bool:
    return bool(rates) and all(Decimal(str(rates.get(c))) == v for c, v in TRUTH.items() if v is not None)


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    seconds: list[float] = field(default_factory=list)

    def add(self, cls: str, took: float) -> None:
        self.counts[cls] += 1
        self.seconds.append(took)

    def row(self, name: str) -> str:
        n = sum(self.counts.values()) or 1
        pct = " | ".join(f"{100 * self.counts[c] / n:.1f}%" for c in CLASSES)
        s = sorted(self.seconds) or [0.0]
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        return f"| {name} | {n:,} | {pct} | {statistics.median(s) * 1000:.1f} ms | {p99 * 1000:.0f} ms | {s[-1]:.2f} s |"


# -- contenders -------------------------------------------------------------------------
async def render_inline(url: str) -> str:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(url)
    except httpx.HTTPError:
        return "error text"
    if r.status_code != 200:
        return "error text"
    try:
        rates = vietcombank.parse(r.content)
    except Exception:
        return "wrong/garbage"
    return "valid" if rates_match({x.code: x.sell for x in rates.rates}) else "wrong/garbage"


def render_curl_file(path: Path, every: float) -> str:
    try:
        body = path.read_bytes()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return "error text"
    try:
        rates = vietcombank.parse(body)
    except Exception:
        return "wrong/garbage"
    if not rates_match({x.code: x.sell for x in rates.rates}):
        return "wrong/garbage"
    return "unflagged stale" if age > 3 * every else "valid"


def render_snapshot(path: Path) -> str:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "error text"
    if doc.get("status") not in ("fresh", "stale") or not doc.get("data"):
        return "error text"  # a page shows "no data" (never a raw error)
    rates = {r["code"]: r["sell"] for r in doc["data"]["rates"]}
    return "valid" if rates_match(rates) else "wrong/garbage"


@dataclass
class CurlStats:
    runs: int = 0
    max_rss_kb: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)


async def cron_curl(url: str, out: Path, every: float, stop: asyncio.Event, stats: CurlStats) -> None:
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is required (apt-get install curl)")
    while not stop.is_set():
        started = time.monotonic()

        def job() -> None:
            # GNU time measures curl itself (a wait4 from here would report the RSS of the
            # forked Python process: Linux keeps the high-water mark across exec).
            gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
            cmd = [curl, "-sf", "-m", "10", "-o", str(out), url]
            if gnu_time:
                r = subprocess.run([gnu_time, "-f", "%M %U %S", *cmd], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, check=False)
                stats.runs += 1
                with contextlib.suppress(ValueError, IndexError):
                    kb, user, sys_ = r.stderr.strip().splitlines()[-1].split()
                    stats.max_rss_kb.append(int(kb))
                    stats.cpu_s.append(float(user) + float(sys_))
            else:
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                stats.runs += 1

        # cron starts a job every interval whether the last one finished or not
        asyncio.get_running_loop().run_in_executor(None, job)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, every - (time.monotonic() - started)))


def start_daemon(folder: Path, url: str, every: float) -> subprocess.Popen[bytes]:
    cfg = folder / "portal-feeds.toml"
    cfg.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n'
        f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\nevery = "{every}s"\nmin_interval = "0s"\n'
        'timeout = "2s"\ndeadline = "4s"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(cfg)], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICK
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return cpu, rss


async def side_by_side(phase: float, rate: float, every: float) -> tuple[dict[str, Tally], dict[str, Any]]:
    tallies = {n: Tally() for n in ("inline page", "cron+curl", "portal-feeds")}
    foot: dict[str, Any] = {}
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = sim.url("vietcombank")
        daemon = start_daemon(folder, url, every)
        snap = folder / "snapshots" / "rates.json"
        curl_file = folder / "rates.xml"
        try:
            for _ in range(300):
                if snap.exists() and json.loads(snap.read_text()).get("status") == "fresh":
                    break
                await asyncio.sleep(0.05)
            stop = asyncio.Event()
            cstats = CurlStats()
            cron = asyncio.create_task(cron_curl(url, curl_file, every, stop, cstats))
            await asyncio.sleep(1.0)  # the first curl job has run
            sim.reset_counts()
            cpu0, _ = proc_cpu_rss(daemon.pid)
            rss: list[int] = []
            pending: set[asyncio.Task[None]] = set()

            async def inline_render() -> None:
                t0 = time.monotonic()
                cls = await render_inline(url)
                tallies["inline page"].add(cls, time.monotonic() - t0)

            for _name, what in SCHEDULE:
                sim.clear_faults("vietcombank")
                sim.set_payload("vietcombank", times_ten(HEALTHY) if what == "x10" else HEALTHY, "text/xml")
                if isinstance(what, Fault):
                    sim.set_faults("vietcombank", [what], repeat_last=True)
                end = time.monotonic() + phase
                next_rss = 0.0
                while time.monotonic() < end:
                    t = asyncio.create_task(inline_render())
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    t0 = time.monotonic()
                    tallies["cron+curl"].add(render_curl_file(curl_file, every), time.monotonic() - t0)
                    t0 = time.monotonic()
                    tallies["portal-feeds"].add(render_snapshot(snap), time.monotonic() - t0)
                    if time.monotonic() >= next_rss:
                        rss.append(proc_cpu_rss(daemon.pid)[1])
                        next_rss = time.monotonic() + 1.0
                    await asyncio.sleep(1.0 / rate)
            sim.clear_faults("vietcombank")
            stop.set()
            await cron
            if pending:
                await asyncio.wait(pending, timeout=15)
            cpu1, _ = proc_cpu_rss(daemon.pid)
            refreshes = sum(1 for r in sim.requests("vietcombank") if "portal-feeds" in r.headers.get("user-agent", ""))
            foot = {
                "daemon_rss_mb": statistics.median(rss) / 1e6,
                "daemon_rss_max_mb": max(rss) / 1e6,
                "daemon_cpu_per_refresh_ms": 1000 * (cpu1 - cpu0) / max(1, refreshes),
                "daemon_refreshes": refreshes,
                "curl_rss_mb": statistics.median(cstats.max_rss_kb) / 1e3 if cstats.max_rss_kb else float("nan"),
                "curl_cpu_ms": 1000 * statistics.median(cstats.cpu_s) if cstats.cpu_s else float("nan"),
                "curl_runs": cstats.runs,
            }
        finally:
            daemon.terminate()
            try:
                daemon.wait(10)
            except subprocess.TimeoutExpired:
                daemon.kill()
    return tallies, foot


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; load average {load:.2f} when the run started")


def schedule_section() -> list[str]:
    """The mean interval over 100 runs from each trigger (bench/schedule.py, computed part)."""
    import io
    from contextlib import redirect_stdout

    import schedule  # bench/schedule.py

    buf = io.StringIO()
    with redirect_stdout(buf):
        schedule.main(["--no-measure"])
    return [
        "## Schedule",
        "",
        "Fire times APScheduler gets from each trigger over 100 runs (`.venv/bin/python bench/schedule.py "
        "--no-measure`; without `--no-measure` it also runs both on a real scheduler).",
        "",
        *buf.getvalue().strip().splitlines(),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="under 2 minutes (CI): short phases, small scale")
    p.add_argument("--phase", type=float, default=None, help="seconds per schedule phase (30; quick 4)")
    p.add_argument("--rate", type=float, default=20.0, help="page renders per second per contender")
    p.add_argument("--every", type=float, default=None, help="cron and feed interval, seconds (5; quick 2)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--no-scale", action="store_true")
    args = p.parse_args(argv)
    phase = args.phase or (4.0 if args.quick else 30.0)
    every = args.every or (2.0 if args.quick else 5.0)
    started = datetime.now(UTC)
    header = machine()
    t0 = time.monotonic()
    tallies, foot = asyncio.run(side_by_side(phase, args.rate, every))
    side_s = time.monotonic() - t0

    import scale  # bench/scale.py

    scale_md = ""
    if not args.no_scale:
        cases = []
        grid = ([(34, 0.15, False), (300, 0.15, False), (34, 0.15, True)] if args.quick else
                [(n, lat, down) for lat in (0.15, 0.7) for down in (False, True) for n in (34, 300, 3000)])
        for n, lat, down in grid:
            cases.append(scale.run_case(n, lat, down, 1 if args.quick else 3))
        scale_md = scale.table(cases)

    cmd = "bench/compare.py" + (" --quick" if args.quick else "")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `.venv/bin/python {cmd}` on {started:%Y-%m-%d %H:%M} UTC"
        f"{' (quick mode: short phases, small scale: a smoke run, not figures to quote)' if args.quick else ''}.",
        "",
        f"Machine: {header}.",
        "",
        "## Side by side, one fault schedule",
        "",
        f"Schedule: {', '.join(n for n, _ in SCHEDULE)}; {phase:g} s each; {args.rate:g} renders/s per "
        f"contender; cron and feed interval {every:g} s. DNS faults are measured separately "
        "(bench/faults.py); here every contender reaches the bank by address.",
        "",
        "| contender | renders | valid | error text | wrong/garbage | unflagged stale | render median | p99 | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[t.row(n) for n, t in tallies.items()],
        "",
        "## Footprint",
        "",
        "| | RSS | CPU |",
        "|---|---|---|",
        f"| portal-feeds daemon | {foot['daemon_rss_mb']:.1f} MB median, {foot['daemon_rss_max_mb']:.1f} MB max "
        f"| {foot['daemon_cpu_per_refresh_ms']:.1f} ms per refresh ({foot['daemon_refreshes']} refreshes) |",
        f"| one curl job | {foot['curl_rss_mb']:.1f} MB max RSS (median of {foot['curl_runs']} jobs) "
        f"| {foot['curl_cpu_ms']:.0f} ms per job (GNU time: 10 ms resolution) |",
        "",
        f"The side-by-side took {side_s:.0f} s.",
    ]
    if scale_md:
        lines += [
            "",
            "## Weather at scale",
            "",
            "One attempt from a cold cache through the real client stack; the simulator in its own "
            "process with a fixed latency per request; deadline 20 s; primary down = Open-Meteo "
            "answers 503, locations come from MET Norway (20 requests/s). The fetch phase is "
            "the requests, parsing and merging; the whole attempt adds publishing every output "
            "(snapshot, store, companions). "
            f"`.venv/bin/python bench/scale.py{' --repeat 1' if args.quick else ''}`.",
            "",
            scale_md,
        ]
    lines += ["", *schedule_section()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
