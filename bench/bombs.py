"""Benchmark: peak RSS of a real ``portal-feeds fetch`` against compression bombs.

    .venv/bin/python bench/bombs.py [--size BYTES] [--runs 1] [--code DIR]

``--code DIR`` runs the ``feeds`` package found in DIR instead of this checkout's (e.g. a
``git archive`` of an older commit, to compare before/after).

The upstream simulator (127.0.0.1) serves, in turn: the normal Vietcombank table, a
single-layer gzip bomb (``--size`` zeros, default 1 GiB: ~1 MB on the wire) and a stacked
``Content-Encoding: gzip, gzip`` bomb (~2 KB on the wire).  Each case runs
``portal-feeds fetch`` in its own process under ``/usr/bin/time -v`` and reports its
"Maximum resident set size" and the outcome line.  Goal (issue 8): every case under 60 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.testing.upstream import Fault, UpstreamSimulator, gzip_bomb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES: list[tuple[str, Fault | None]] = [
    ("normal table", None),
    ("gzip bomb, 1 layer", Fault.bomb(0, 1)),
    ("gzip bomb, gzip, gzip", Fault.bomb(0, 2)),
]


def _config(folder: Path, port: int) -> Path:
    path = folder / "bench.toml"
    path.write_text(
        f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[feeds.rates]
kind = "vietcombank"
url = "http://127.0.0.1:{port}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
timeout = "20s"
deadline = "60s"
min_interval = "0s"
""",
        encoding="utf-8",
    )
    return path


def measure(cfg: Path, code: Path = ROOT) -> tuple[float, str]:
    """Run one fetch under /usr/bin/time -v; return (peak RSS in MB, the fetch's output line)."""
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", "from feeds.cli import main; raise SystemExit(main())",
         "fetch", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=cfg.parent,
        env={**os.environ, "PYTHONPATH": str(code)},
        check=False,
    )
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m is None:
        raise SystemExit(f"no RSS figure from /usr/bin/time:\n{proc.stderr[-2000:]}")
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
    return int(m.group(1)) / 1024, line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1 << 30, help="bytes of zeros inside the bomb")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--code", type=Path, default=ROOT, help="folder holding the feeds package to run")
    args = p.parse_args(argv)
    if not Path("/usr/bin/time").exists():
        raise SystemExit("/usr/bin/time is needed (apt-get install time)")
    print(f"building the bombs ({args.size} bytes of zeros)...", flush=True)
    for layers in (1, 2):
        size = len(gzip_bomb(args.size, layers))
        print(f"  {layers} layer(s): {size} bytes on the wire", flush=True)
    print(f"{'case':24} {'peak RSS':>10}  outcome")
    worst = 0.0
    with UpstreamSimulator() as sim, tempfile.TemporaryDirectory() as tmp:
        cfg = _config(Path(tmp), sim.port)
        for name, fault in CASES:
            peaks = []
            line = ""
            for _ in range(args.runs):
                if fault is not None:
                    sim.set_faults("vietcombank", [Fault.bomb(args.size, int(fault.fraction))], repeat_last=True)
                else:
                    sim.clear_faults("vietcombank")
                peak, line = measure(cfg, args.code.resolve())
                peaks.append(peak)
            worst = max(worst, max(peaks))
            print(f"{name:24} {max(peaks):8.1f}MB  {line}", flush=True)
    print(f"worst peak RSS: {worst:.1f} MB (goal < 60 MB)")
    return 0 if worst < 60 else 1


if __name__ == "__main__":
    raise SystemExit(main())
