"""``portal-feeds demo``: the whole behaviour offline, in about a minute.

Starts the upstream simulator on 127.0.0.1, then the real daemon against it (short
intervals, snapshots in a temporary folder it names), and plays a scripted story:

1. healthy                 -> both feeds fresh
2. Vietcombank's DNS gone  -> serve-stale DNS: the last known address is used, data stays fresh
3. the upstream down (503) -> exchange rates stale, last good data kept
4. back                    -> fresh again

The status table is printed whenever it changes.  Ends by itself (or Ctrl-C) and cleans up.
Host names resolve through the project's resolver seam (a table pointing them at
127.0.0.1), so no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from feeds.app import open_runtime
from feeds.config import Config, load_config
from feeds.daemon import Daemon
from feeds.errors import DnsError
from feeds.health import feed_rows, format_table
from feeds.logs import setup_logging
from feeds.notify import Notifier
from feeds.resolver import StaticResolver
from feeds.testing.upstream import Fault, UpstreamSimulator

__all__ = ["run_demo"]

BANK = "portal.vietcombank.com.vn"
METEO = "api.open-meteo.com"
MET = "api.met.no"


def _config(folder: Path, port: int) -> Config:
    text = f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[http]
# The shipped 10 minutes would keep the circuit open past the story's end: phase 4 must be
# able to show "back to fresh" (the half-open probe after 5 s closes it).
breaker_cooldown = "5s"

[feeds.exchange-rates]
kind = "vietcombank"
url = "http://{BANK}:{port}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "3s"
min_interval = "0s"
timeout = "1s"
deadline = "2s"
max_stale = "1h"

[feeds.weather]
kind = "open-meteo"
url = "http://{METEO}:{port}/v1/forecast"
every = "5s"
timeout = "1s"
deadline = "3s"
max_stale = "1h"
locations = "vietnam-provinces"
fallback = [{{ kind = "met-no", url = "http://{MET}:{port}/weatherapi/locationforecast/2.0/compact" }}]
"""
    path = folder / "portal-feeds.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def _story(seconds: float, daemon: Daemon, sim: UpstreamSimulator, resolver: StaticResolver,
                 out: Path) -> None:
    step = seconds / 4
    def dns_gone() -> None:
        resolver.table[BANK] = DnsError("x", detail="temporary")

    def bank_down() -> None:
        sim.set_faults("vietcombank", [Fault.status(503)], repeat_last=True)

    def all_back() -> None:
        sim.clear_faults("vietcombank")
        resolver.table[BANK] = ["127.0.0.1"]

    phases: list[tuple[str, Callable[[], None]]] = [
        ("1/4 healthy: simulator serving recorded payloads", lambda: None),
        (f"2/4 DNS of {BANK} gone: serve-stale DNS keeps the rates fresh", dns_gone),
        ("3/4 Vietcombank down (HTTP 503): rates go stale, last good data kept", bank_down),
        ("4/4 back: DNS and upstream restored", all_back),
    ]
    last: tuple[object, ...] = ()
    for title, action in phases:
        action()
        print(f"\n=== {title}", flush=True)
        loop = asyncio.get_running_loop()
        end = loop.time() + step
        while loop.time() < end and not daemon.stop_event.is_set():
            if daemon.rt is not None:
                now = daemon.rt.clock.now()
                rows = feed_rows(daemon.config, daemon.rt.store, now)
                key = tuple((r.feed, r.status, r.outcome, r.detail, r.stale_dns_used) for r in rows)
                if key != last:
                    print(format_table(rows, now), flush=True)
                    last = key
            await asyncio.sleep(0.5)
        if daemon.stop_event.is_set():
            break
    print(f"\nsnapshots: {out}", flush=True)
    daemon.stop_event.set()


#: The default length of the story: four phases of 10 s.
DEFAULT_SECONDS = 40.0


def run_demo(seconds: float = DEFAULT_SECONDS, keep: bool = False) -> int:
    """Run the demo; return 0."""
    seconds = max(8.0, min(seconds, 85.0))
    folder = Path(tempfile.mkdtemp(prefix="portal-feeds-demo-"))
    setup_logging(logging.WARNING, stream=sys.stderr)
    sim = UpstreamSimulator().start()
    try:
        cfg = _config(folder, sim.port)
        print(f"portal-feeds demo: simulator on {sim.base_url}, snapshots in {cfg.snapshot_dir}", flush=True)
        resolver = StaticResolver({BANK: ["127.0.0.1"], METEO: ["127.0.0.1"], MET: ["127.0.0.1"]})
        daemon = Daemon(
            folder / "portal-feeds.toml",
            cfg,
            notifier=Notifier(None),
            runtime_factory=lambda c: open_runtime(c, primary_resolver=resolver),
        )

        async def main() -> None:
            run = asyncio.create_task(daemon.run())
            while daemon.rt is None and not run.done():
                await asyncio.sleep(0.05)
            story = asyncio.create_task(_story(seconds, daemon, sim, resolver, cfg.snapshot_dir))
            await run
            story.cancel()

        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"cleaned up {folder}", flush=True)
    return 0
