"""Feeds sharing one host: does each get its turn? (issue 16, item 8)

A real ``portal-feeds run`` against the upstream simulator on 127.0.0.1: a weather feed
asking every second with no ``min_interval`` beside a rates feed every 10 s that needs 5 quiet
seconds on the host (both on 127.0.0.1).  Before issue 16 the rates feed made 1 request in
64 s.  Prints the requests each feed made, the quiet time before each rates request (never
under its min_interval) and why attempts were held back.

    .venv/bin/python bench/fairness.py [--seconds 64]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feeds.testing.upstream import UpstreamSimulator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=64.0)
    args = ap.parse_args()
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as d:
        feeds = (
            f'[feeds.busy]\nkind = "open-meteo"\nurl = "{sim.url("open-meteo")}"\nevery = "1s"\n'
            'min_interval = "0s"\nlocations = [{ id = "a", name = "A", lat = 21.0, lon = 105.8 }]\n'
            'timeout = "2s"\ndeadline = "3s"\n\n'
            f'[feeds.quiet]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}?f=quiet"\n'
            'every = "10s"\nmin_interval = "5s"\ntimeout = "2s"\ndeadline = "3s"\n'
        )
        cfg = Path(d) / "portal-feeds.toml"
        cfg.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + feeds, encoding="utf-8")
        log_path = Path(d) / "daemon.log"
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        with log_path.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(cfg)], cwd=d,
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                proc.wait(timeout=args.seconds)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
        text = log_path.read_text(encoding="utf-8")
        ok = Counter(m.group(1) for m in re.finditer(r"attempt feed=(\w+) kind=ok", text))
        held = Counter(re.findall(r"attempt feed=(\w+) kind=held_back detail=(\w+)", text))
        hits = sorted([(r.at, "weather") for r in sim.requests("open-meteo")]
                      + [(r.at, "rates") for r in sim.requests("vietcombank")])
        gaps = [t - hits[i - 1][0] for i, (t, who) in enumerate(hits) if who == "rates" and i > 0]
        print(f"{args.seconds:.0f} s: requests weather={len(sim.requests('open-meteo'))} "
              f"rates={len(sim.requests('vietcombank'))}; attempts ok {dict(ok)}")
        print(f"quiet time before each rates request: min {min(gaps):.2f} s" if gaps else "no rates request after another")
        print(f"held back: {dict(held)}; tracebacks in the log: {text.count('Traceback')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
