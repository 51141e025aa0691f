"""Benchmark process start -> READY=1 with warm snapshots (issue 20, item 3).

    .venv/bin/python bench/ready.py [--runs 10] [--entry module|script]

What it does, all on loopback:

1. Starts the upstream simulator on 127.0.0.1 and writes a configuration of 6 feeds
   (2 rates, 2 Open-Meteo with the 63 provinces, 2 MET Norway) with temporary cache and
   snapshot folders.
2. Warms them: one daemon run until every feed has been fetched and published, then SIGTERM.
3. ``--runs`` times: spawns ``python -m feeds run --config ...`` (or the ``portal-feeds``
   console script, ``--entry script``) with ``NOTIFY_SOCKET`` naming a unix datagram socket
   this process listens on, and times spawn -> ``READY=1`` received. The daemon sends READY
   only after every feed was republished from the store; each run checks that all 6
   snapshots were rewritten by it (``generated_at`` later than the spawn).
4. One more start under ``-X importtime``, its ``Notifier.ready`` wrapped to write a mark on
   stderr first: the modules imported before READY (the lines before the mark), their summed
   time against that start's spawn -> READY, and which of httpx, httpcore, h11, anyio,
   apscheduler, tenacity, lxml, dnspython, jinja2, markupsafe, jsonschema, prometheus_client
   and asyncio (the warm start runs before the event loop) were among them.

The bare interpreter's start (``python -c pass``, median of the same number of runs) is
printed as the floor nothing of ours can go under.

Bytecode: the daemon runs as installed, with compiled bytecode cached: the warming run
writes it into a temporary ``PYTHONPYCACHEPREFIX`` (the source tree is not touched, and
``PYTHONDONTWRITEBYTECODE`` in the caller's environment is ignored), so every start reads
the same cache whatever ``__pycache__`` folders the checkout happens to have.
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds.testing.upstream import UpstreamSimulator  # noqa: E402

FEEDS = 6
#: Modules that must not be needed before READY (the first fetch imports them).
HEAVY = ("httpx", "httpcore", "h11", "anyio", "apscheduler", "tenacity", "lxml", "dns", "jinja2", "markupsafe",
         "jsonschema", "prometheus_client", "asyncio")


def write_config(folder: Path, sim: UpstreamSimulator) -> Path:
    feeds = []
    for i in range(FEEDS // 3):
        feeds.append(f'[feeds.rates-{i}]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}"\n'
                     'every = "1h"\nmin_interval = "0s"\ntimeout = "2s"\ndeadline = "3s"\n')
        feeds.append(f'[feeds.weather-{i}]\nkind = "open-meteo"\nurl = "{sim.url("open-meteo")}"\n'
                     'every = "1h"\ntimeout = "2s"\ndeadline = "3s"\nlocations = "vietnam-provinces"\n')
        feeds.append(f'[feeds.metno-{i}]\nkind = "met-no"\nurl = "{sim.base_url}/weatherapi/locationforecast/2.0/compact"\n'
                     'every = "1h"\ntimeout = "2s"\ndeadline = "3s"\n'
                     'locations = [{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 },'
                     ' { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },'
                     ' { id = "ho-chi-minh", name = "Hồ Chí Minh", lat = 10.78, lon = 106.70 }]\n')
    path = folder / "bench.toml"
    path.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + "\n".join(feeds),
                    encoding="utf-8")
    return path


#: ``python -c MARKED <entry> run --config ...``: the command, with a mark on stderr at READY.
MARKED = """
import runpy, sys
import feeds.notify
ready = feeds.notify.Notifier.ready
def marked(self):
    print("READY-MARK", file=sys.stderr, flush=True)
    return ready(self)
feeds.notify.Notifier.ready = marked
entry, sys.argv = sys.argv[1], ["portal-feeds", *sys.argv[2:]]
if entry == "module":
    runpy.run_module("feeds", run_name="__main__", alter_sys=True)
else:
    runpy.run_path(entry, run_name="__main__")
"""


def command(entry: str, cfg: Path, *, importtime: bool = False) -> list[str]:
    script = str(Path(sys.executable).parent / "portal-feeds")
    if importtime:
        return [sys.executable, "-X", "importtime", "-c", MARKED, "module" if entry == "module" else script,
                "run", "--config", str(cfg)]
    if entry == "script":
        return [sys.executable, script, "run", "--config", str(cfg)]  # its own interpreter line
    return [sys.executable, "-m", "feeds", "run", "--config", str(cfg)]


def listen(path: Path) -> socket.socket:
    if path.exists():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def wait_ready(sock: socket.socket, timeout: float = 30) -> float | None:
    """The perf_counter time READY=1 arrived, or None."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536).decode()
        except TimeoutError:
            return None
        if "READY=1" in data.split("\n"):
            return time.perf_counter()
    return None


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def snapshots(folder: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "snapshots").glob("*.json"))
            if p.name.count(".") == 1]


#: The child processes' bytecode cache (set by ``main``).
BYTECODE: dict[str, str] = {}


def env(notify: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    return dict(out, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="10000000", **BYTECODE)


def one_start(entry: str, cfg: Path, notify: Path) -> float:
    sock = listen(notify)
    wall = datetime.now().astimezone()
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(entry, cfg), env=env(notify), cwd=cfg.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    at = wait_ready(sock)
    snaps = snapshots(cfg.parent)
    stop(proc)
    sock.close()
    if at is None:
        raise SystemExit("bench: the daemon did not send READY=1 within 30 s")
    fresh = [s for s in snaps if datetime.fromisoformat(str(s["generated_at"])) >= wall.replace(microsecond=0)]
    if len(snaps) != FEEDS or len(fresh) != FEEDS:
        raise SystemExit(f"bench: {len(fresh)} of {len(snaps)} snapshots republished before READY (want {FEEDS})")
    return at - t0


def import_share(entry: str, cfg: Path, notify: Path) -> tuple[float, float, list[str], list[tuple[int, str]]]:
    """Under -X importtime: (spawn -> READY s, summed top-level import s before READY,
    heavy modules imported before READY, the 8 slowest top-level imports)."""
    sock = listen(notify)
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(entry, cfg, importtime=True), env=env(notify), cwd=cfg.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    at = wait_ready(sock)
    lines: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:  # logs and importtime lines in the order they were written
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line == "READY-MARK":
            break
        lines.append(line)
    stop(proc)
    sock.close()
    if at is None:
        raise SystemExit("bench: the daemon did not send READY=1 under -X importtime")
    top: list[tuple[int, str]] = []
    names: set[str] = set()
    for line in lines:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part for part in line[len("import time:"):].split("|"))
        names.add(name.strip())
        if not name.startswith("  "):  # a top-level import (its time includes its children)
            top.append((int(cumulative), name.strip()))
    heavy = sorted({n.split(".")[0] for n in names if n.split(".")[0] in HEAVY})
    return at - t0, sum(us for us, _ in top) / 1e6, heavy, sorted(top, reverse=True)[:8]


def bare_python(runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env(Path("/nonexistent")))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class Ready:
    """One measurement: ``times`` (s) of the timed starts and what the marked start showed."""

    times: list[float]
    floor: float  # the bare interpreter's start, median (s)
    ready_importtime: float  # spawn -> READY of the start under -X importtime (s)
    imports: float  # top-level import time before READY in that start (s)
    heavy: list[str]  # packages of HEAVY loaded before READY
    slowest: list[tuple[int, str]]  # the slowest top-level imports (us, name)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def measure(runs: int = 10, entry: str = "module") -> Ready:
    """Warm a cache and snapshots from the simulator, then time ``runs`` starts (bench/scale.py
    may call this too)."""
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "pycache").mkdir()
        BYTECODE["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        cfg = write_config(folder, sim)
        notify = folder / "notify.sock"

        # Warm: one run until every feed was fetched and published.
        sock = listen(notify)
        proc = subprocess.Popen(command(entry, cfg), env=env(notify), cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_ready(sock) is None:
            raise SystemExit("bench: the warming run did not send READY=1")
        end = time.monotonic() + 60
        while time.monotonic() < end:
            snaps = snapshots(folder)
            if len(snaps) == FEEDS and all(s.get("status") == "fresh" for s in snaps):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("bench: the warming run did not publish every feed fresh within 60 s")
        stop(proc)
        sock.close()

        times = [one_start(entry, cfg, notify) for _ in range(runs)]
        ready_it, imports, heavy, slowest = import_share(entry, cfg, notify)
        floor = bare_python(runs)
        BYTECODE.clear()
    return Ready(times, floor, ready_it, imports, heavy, slowest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="timed starts (default 10)")
    ap.add_argument("--entry", choices=("module", "script"), default="module",
                    help="python -m feeds (default) or the portal-feeds console script")
    args = ap.parse_args()
    r = measure(args.runs, args.entry)
    ms = 1000
    entry = "python -m feeds run" if args.entry == "module" else "portal-feeds run"
    print(f"start -> READY=1 ({entry}, bytecode cached, {FEEDS} feeds, warm snapshots republished), "
          f"{args.runs} starts: median {r.median * ms:.0f} ms, min {min(r.times) * ms:.0f} ms, "
          f"max {max(r.times) * ms:.0f} ms")
    print(f"bare interpreter (python -c pass): median {r.floor * ms:.0f} ms")
    print(f"under -X importtime: start -> READY {r.ready_importtime * ms:.0f} ms, of which imports before "
          f"READY {r.imports * ms:.0f} ms ({100 * r.imports / r.ready_importtime:.0f}%)")
    print("  slowest top-level imports: " + ", ".join(f"{n} {us / 1000:.0f} ms" for us, n in r.slowest))
    print("  heavy modules imported before READY: " + (", ".join(r.heavy) if r.heavy else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
