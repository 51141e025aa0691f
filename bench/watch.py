"""Benchmark: what watching the published files costs (``feeds.watch``, issue 16).

    .venv/bin/python bench/watch.py [--files 3400] [--size 1500] [--rounds 5]

Writes ``--files`` files of ``--size`` bytes through ``feeds.publish.write_atomic`` (which
records each write), then times: the recording alone (digest + stat per write), one
``check()`` of all files unchanged (a stat each), and one ``check()`` after 1% of the files
were rewritten in place with other bytes (those are read and hashed).  The daemon runs a
check every ``WATCH_EVERY`` (20) seconds.  Median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds import watch  # noqa: E402
from feeds.publish import write_atomic  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3400)
    ap.add_argument("--size", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    record, clean, damaged = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "snapshots"
        paths = [folder / f"feed{i // 34}" / f"loc{i}.json" for i in range(args.files)]
        body = b"x" * args.size
        for p in paths:
            write_atomic(p, body)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for p in paths:
                watch.record_written(p, body)
            record.append((time.perf_counter() - t0) / len(paths))
            t0 = time.perf_counter()
            assert watch.check(folder) == []
            clean.append(time.perf_counter() - t0)
            hit = paths[:: 100]
            for p in hit:
                p.write_bytes(b"y" * args.size)
            t0 = time.perf_counter()
            found = watch.check(folder)
            damaged.append(time.perf_counter() - t0)
            assert len(found) == len(hit)
            for p in hit:
                write_atomic(p, body)
    print(f"files={args.files} size={args.size}B rounds={args.rounds}")
    print(f"record per write: {statistics.median(record) * 1e6:.1f} us")
    print(f"check, nothing changed: {statistics.median(clean) * 1e3:.1f} ms")
    print(f"check, 1% rewritten in place: {statistics.median(damaged) * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
