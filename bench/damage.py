"""Benchmark (issue 9): does any damage to the cache freeze the daemon's event loop?

1. A running daemon (a real subprocess, a notify socket bound here, WATCHDOG_USEC=1 s so
   it pings every 0.5 s) goes through every damage scenario of tests/test_damage.py in turn,
   with its upstreams alternately down and up; the longest gap between two WATCHDOG=1 pings
   is reported per scenario (a store call blocking the loop shows up as a gap > 0.5 s).
2. ``portal-feeds fetch`` right after a process holding the store lock was SIGKILLed (was
   60.09 s against a 3 s deadline with diskcache's expiring lock), and next to a live holder.
3. A daemon started right after a lock holder was SIGKILLed: start to READY=1 and the
   longest ping gap of its first seconds (was 59.8 s without a ping).

    .venv/bin/python bench/damage.py [--seconds 3]

Everything runs on 127.0.0.1 through the upstream simulator.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.store import DB_NAME, LOCK_NAME  # noqa: E402
from feeds.testing.upstream import Fault, UpstreamSimulator  # noqa: E402

CONFIG = """
[http]
# The upstreams go down and up every few seconds here: a short breaker cool-down.
breaker_cooldown = "1s"

[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[feeds.rates]
kind = "vietcombank"
url = "{rates}"
every = "1s"
min_interval = "0s"
timeout = "1s"
deadline = "3s"

[feeds.weather]
kind = "open-meteo"
url = "{weather}"
every = "1s"
min_interval = "0s"
timeout = "1s"
deadline = "3s"
locations = "vietnam-provinces"
"""


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}


def hold_lock(cache: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
         str(cache / LOCK_NAME)],
        stdout=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def killed_holder(cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    p = hold_lock(cache)
    p.send_signal(signal.SIGKILL)
    p.wait()


def damages(root: Path) -> dict[str, Callable[[], None]]:
    cache, db = root / "cache", root / "cache" / DB_NAME

    def rm_db() -> None:
        for p in cache.glob(DB_NAME + "*"):
            p.unlink()

    def header() -> None:
        with open(db, "r+b") as f:
            f.write(os.urandom(100))

    def pages() -> None:
        size = db.stat().st_size
        with open(db, "r+b") as f:
            for off in range(4096, size, 4096):
                f.seek(off)
                f.write(os.urandom(4096))

    def value() -> None:
        con = sqlite3.connect(db, timeout=5)
        try:
            con.execute("UPDATE Cache SET value = ?, mode = 1 WHERE key LIKE 'good/%'", (b"\x80garbage",))
            con.commit()
        except sqlite3.DatabaseError:
            pages()  # not repaired yet since the previous damage: damage it again
        finally:
            con.close()

    def snapshot_dir() -> None:
        p = root / "snapshots" / "weather.json"
        p.unlink()
        p.mkdir()

    return {
        "rm cache.db": rm_db,
        "truncate -s 0": lambda: os.truncate(db, 0),
        "random bytes over header": header,
        "random bytes over pages": pages,
        "corrupt value": value,
        "killed lock holder": lambda: killed_holder(cache),
        "rm -r cache_dir": lambda: shutil.rmtree(cache),
        "weather.json is a directory": snapshot_dir,
    }


class Pings:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.times: list[float] = []
        self.ready_at: float | None = None

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536).decode()
            except TimeoutError:
                continue
            now = time.monotonic()
            for line in data.splitlines():
                if line == "WATCHDOG=1":
                    self.times.append(now)
                elif line == "READY=1" and self.ready_at is None:
                    self.ready_at = now

    def max_gap(self, since: float) -> float:
        ts = [t for t in self.times if t >= since]
        return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=float("nan"))


def start(root: Path, pings: Pings) -> subprocess.Popen[bytes]:
    e = env()
    e.update(NOTIFY_SOCKET=str(root / "notify.sock"), WATCHDOG_USEC="1000000")
    return subprocess.Popen(
        [sys.executable, "-m", "feeds", "run", "--config", str(root / "portal-feeds.toml")],
        env=e, cwd=root, stdout=open(root / "daemon.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )


def upstream(sim: UpstreamSimulator, up: bool) -> None:
    for ep in ("vietcombank", "open-meteo"):
        if up:
            sim.clear_faults(ep)
        else:
            sim.set_faults(ep, [Fault.status(503)], repeat_last=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="time per scenario phase")
    args = ap.parse_args()
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "portal-feeds.toml").write_text(
            CONFIG.format(rates=sim.url("vietcombank"), weather=sim.url("open-meteo")), encoding="utf-8"
        )
        # 1. the running daemon through every damage
        pings = Pings(root / "notify.sock")
        proc = start(root, pings)
        pings.pump(8)
        print("1. running daemon, WATCHDOG every 0.5 s; longest gap between pings per scenario")
        t0 = time.monotonic()
        pings.pump(args.seconds)
        print(f"   {'baseline (healthy)':34s} {pings.max_gap(t0):6.3f} s")
        worst = 0.0
        for name, damage in damages(root).items():
            t0 = time.monotonic()
            upstream(sim, False)
            pings.pump(1.0)
            damage()
            pings.pump(args.seconds)
            if name == "weather.json is a directory":
                (root / "snapshots" / "weather.json").rmdir()
            upstream(sim, True)
            pings.pump(args.seconds)
            gap = pings.max_gap(t0)
            worst = max(worst, gap)
            print(f"   {name:34s} {gap:6.3f} s   (daemon alive: {proc.poll() is None})")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        log = (root / "daemon.log").read_text(errors="replace")
        print(f"   worst gap {worst:.3f} s; exit {code}; tracebacks in the log: {log.count('Traceback')}; "
              f"'moved aside' lines: {log.count('moved aside')}")
        pings.sock.close()

        # 2. fetch next to a killed and a live lock holder
        print("2. portal-feeds fetch (deadline 3 s)")
        for label in ("after a lock holder was SIGKILLed", "while a live process holds the lock"):
            holder = None
            if label.startswith("after"):
                killed_holder(root / "cache")
            else:
                holder = hold_lock(root / "cache")
            t = time.monotonic()
            p = subprocess.run([sys.executable, "-m", "feeds", "fetch", "--config", str(root / "portal-feeds.toml")],
                               capture_output=True, text=True, env=env(), cwd=root)
            took = time.monotonic() - t
            if holder is not None:
                holder.kill()
                holder.wait()
            outcome = " | ".join(line.split("  ")[0] + " " + line.split()[1] for line in p.stdout.splitlines()
                                 if len(line.split()) > 1) or p.stderr.strip().splitlines()[-1][:100]
            print(f"   {label:38s} {took:6.2f} s  exit {p.returncode}  ({outcome})")

        # 3. a daemon started right after a killed lock holder
        killed_holder(root / "cache")
        (root / "notify.sock").unlink()
        pings = Pings(root / "notify.sock")
        t = time.monotonic()
        proc = start(root, pings)
        pings.pump(6)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        ready = (pings.ready_at - t) if pings.ready_at else float("nan")
        first = (pings.times[0] - t) if pings.times else float("nan")
        print(f"3. daemon start after a killed lock holder: READY=1 at {ready:.2f} s, first ping at "
              f"{first:.2f} s, longest gap {pings.max_gap(t):.3f} s")
        with contextlib.suppress(OSError):
            pings.sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
