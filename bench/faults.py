"""Benchmark: time from the start of an attempt to the snapshot being republished, per fault
class (median and max over N runs), against the feed's deadline; and serve-stale DNS
keeping data fresh through a resolver outage.

    .venv/bin/python bench/faults.py [--runs 20] [--deadline 3]

Everything runs on 127.0.0.1 through the upstream simulator and the resolver seam.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.app import open_runtime  # noqa: E402
from feeds.config import load_config  # noqa: E402
from feeds.errors import DnsError  # noqa: E402
from feeds.resolver import StaticResolver  # noqa: E402
from feeds.testing.upstream import Fault, UpstreamSimulator  # noqa: E402

HOST = "portal.vietcombank.com.vn"

FAULTS: list[tuple[str, Fault | None]] = [
    ("none (healthy)", None),
    ("latency 10s", Fault.latency(10)),
    ("http 500", Fault.status(500)),
    ("http 503 + Retry-After 1", Fault.status(503, retry_after=1)),
    ("http 429 + Retry-After 120", Fault.status(429, retry_after=120)),
    ("http 404", Fault.status(404)),
    ("200 html error page", Fault.html_error()),
    ("200 empty body", Fault.empty()),
    ("200 garbage", Fault.garbage()),
    ("truncated body", Fault.truncated()),
    ("trickling body 20 B/s", Fault.trickle(20)),
    ("connection reset", Fault.reset()),
    ("never answers", Fault.hang()),
    ("huge body 20 MB", Fault.huge(20_000_000)),
    ("dns nxdomain (cold)", None),
    ("dns temporary (cold)", None),
]


def config(folder: Path, port: int, deadline: float) -> Path:
    path = folder / "bench.toml"
    path.write_text(f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[feeds.rates]
kind = "vietcombank"
url = "http://{HOST}:{port}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
min_interval = "0s"
timeout = "{min(10.0, deadline)}s"
deadline = "{deadline}s"
""")
    return path


async def one(cfg_path: Path, resolver: StaticResolver) -> tuple[float, str, str]:
    cfg = load_config(cfg_path)
    async with open_runtime(cfg, primary_resolver=resolver) as rt:
        t0 = time.monotonic()
        r = await rt.coordinator.refresh(cfg.feeds["rates"])
        took = time.monotonic() - t0
    snap = json.loads((cfg.snapshot_dir / "rates.json").read_text())
    return took, r.outcome + (f"/{r.detail}" if r.detail else ""), snap["status"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--deadline", type=float, default=3.0)
    args = ap.parse_args()
    logging.getLogger("feeds").addHandler(logging.NullHandler())
    logging.getLogger("feeds").propagate = False
    print(f"deadline {args.deadline:.1f} s, {args.runs} runs per fault; times in seconds")
    print(f"{'fault':30} {'outcome':28} {'status':8} {'median':>7} {'max':>7}  within deadline")
    with UpstreamSimulator() as sim:
        for name, fault in FAULTS:
            times: list[float] = []
            outcome = status = ""
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as d:
                    cfg_path = config(Path(d), sim.port, args.deadline)
                    good = StaticResolver({HOST: ["127.0.0.1"]})
                    cold = not name.startswith("dns")
                    if cold:  # a good fetch first: the fault then hits a warm cache
                        sim.clear_faults("vietcombank")
                        asyncio.run(one(cfg_path, good))
                    if name == "dns nxdomain (cold)":
                        resolver = StaticResolver({})
                    elif name == "dns temporary (cold)":
                        resolver = StaticResolver({HOST: DnsError("x", detail="temporary")})
                    else:
                        resolver = good
                    if fault is not None:
                        sim.set_faults("vietcombank", [fault], repeat_last=True)
                    took, outcome, status = asyncio.run(one(cfg_path, resolver))
                    sim.clear_faults("vietcombank")
                    times.append(took)
            ok = max(times) <= args.deadline + 0.25
            print(f"{name:30} {outcome:28} {status:8} {statistics.median(times):7.3f} {max(times):7.3f}  {'yes' if ok else 'NO'}", flush=True)

        # Serve-stale DNS: the resolver is down for the whole run, the upstream is up.
        with tempfile.TemporaryDirectory() as d:
            cfg_path = config(Path(d), sim.port, args.deadline)
            resolver = StaticResolver({HOST: ["127.0.0.1"]})
            asyncio.run(one(cfg_path, resolver))
            resolver.table[HOST] = DnsError("x", detail="temporary")
            statuses = [asyncio.run(one(cfg_path, resolver))[2] for _ in range(args.runs)]
            print(f"\nserve-stale DNS: resolver down for {args.runs} attempts -> "
                  f"{statuses.count('fresh')}/{args.runs} published fresh")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
