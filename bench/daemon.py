"""Benchmark the daemon as systemd runs it.

1. Process start to READY=1 with warm snapshots published (median of N starts).
2. Steady state: 6 feeds at 1 s intervals against the simulator for a duration; RSS and CPU
   of the daemon process sampled from /proc, and the RSS growth over the run.

    .venv/bin/python bench/daemon.py [--starts 10] [--duration 600]

The simulator runs in this process on 127.0.0.1; the daemon is a real subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.testing.upstream import UpstreamSimulator  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def config(folder: Path, sim: UpstreamSimulator) -> Path:
    feeds = []
    for i in range(2):
        feeds.append(f'[feeds.rates-{i}]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}"\n'
                     'every = "1s"\nmin_interval = "0s"\ntimeout = "2s"\ndeadline = "3s"\n')
        feeds.append(f'[feeds.weather-{i}]\nkind = "open-meteo"\nurl = "{sim.url("open-meteo")}"\n'
                     'every = "1s"\ntimeout = "2s"\ndeadline = "3s"\nlocations = "vietnam-provinces"\n')
        feeds.append(f'[feeds.metno-{i}]\nkind = "met-no"\nurl = "{sim.base_url}/weatherapi/locationforecast/2.0/compact"\n'
                     'every = "1s"\ntimeout = "2s"\ndeadline = "3s"\n'
                     'locations = [{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 },'
                     ' { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },'
                     ' { id = "ho-chi-minh", name = "Hồ Chí Minh", lat = 10.78, lon = 106.70 }]\n')
    path = folder / "bench.toml"
    path.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + "\n".join(feeds), encoding="utf-8")
    return path


def start(cfg: Path, notify_path: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    if notify_path.exists():
        notify_path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="10000000")
    proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, sock


def wait_ready(sock: socket.socket, timeout: float = 30) -> bool:
    sock.settimeout(timeout)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = sock.recv(65536).decode()
        if "READY=1" in data.split("\n"):
            return True
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--duration", type=float, default=600)
    args = ap.parse_args()
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as d:
        sim.set_expires("met-no", None)  # ask MET every time: the worst case for the daemon
        folder = Path(d)
        cfg = config(folder, sim)
        notify = folder / "notify.sock"

        # Warm the cache once, then measure cold process starts on a warm cache.
        proc, sock = start(cfg, notify)
        assert wait_ready(sock)
        time.sleep(4)
        stop(proc)
        sock.close()
        times = []
        for _ in range(args.starts):
            t0 = time.monotonic()
            proc, sock = start(cfg, notify)
            ok = wait_ready(sock)
            took = time.monotonic() - t0
            snaps = [json.loads(p.read_text()) for p in sorted((folder / "snapshots").glob("*.json"))]
            stop(proc)
            sock.close()
            assert ok and len(snaps) == 6
            times.append(took)
        print(f"start -> READY=1 (warm snapshots published), {args.starts} starts: "
              f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms", flush=True)

        # Steady state.
        sim.reset_counts()
        proc, sock = start(cfg, notify)
        assert wait_ready(sock)
        t0 = time.monotonic()
        samples: list[tuple[float, int, float]] = []
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(10.0, args.duration / 10))
            sock.settimeout(0.01)
            try:  # drain the notify socket so the daemon never blocks on it
                while sock.recv(65536):
                    pass
            except (TimeoutError, BlockingIOError):
                pass
            samples.append((time.monotonic() - t0, rss_kib(proc.pid), cpu_s(proc.pid)))
        stop(proc)
        sock.close()
        requests = sum(sim.request_count(e) for e in ("vietcombank", "open-meteo", "met-no"))
        warm = next((s for s in samples if s[0] >= min(60.0, args.duration / 5)), samples[0])
        last = samples[-1]
        cpu_pct = 100 * (last[2] - samples[0][2]) / (last[0] - samples[0][0])
        print(f"steady state, 6 feeds at 1 s for {last[0]:.0f} s: {requests} upstream requests; "
              f"RSS {warm[1] / 1024:.1f} MiB at {warm[0]:.0f} s -> {last[1] / 1024:.1f} MiB at end "
              f"(growth {(last[1] - warm[1]) / 1024:+.1f} MiB); max RSS {max(s[1] for s in samples) / 1024:.1f} MiB; "
              f"CPU {cpu_pct:.1f}% of one core", flush=True)
        for t, rss, cpu in samples:
            print(f"  t={t:6.0f}s rss={rss / 1024:6.1f} MiB cpu={cpu:7.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
