"""The invariant suite of tests/test_invariants.py for longer (issue 16, item 9).

    .venv/bin/python bench/invariants.py --seconds 600 --seed 16 [--keep DIR]

Prints each sequence and step as it runs, every violation with the steps before it, and a
last line ``invariants: seed=.. budget=..s sequences=N steps=N checks=N violations=N``.
Exit code 0 when no invariant was violated, 1 otherwise.  The same seed draws the same steps
(the budget only decides how many of them run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.invariants_support import parse_plan, run_suite  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--seed", default="16")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, snapshots, caches)")
    p.add_argument("--plan", help="one sequence of these steps instead of drawn ones, e.g. "
                   "\"reload_same;clock:offset=-3600\" (kinds: tests/invariants_support.py)")
    p.add_argument("--no-faketime", action="store_true", help="draw no wall-clock steps")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    plan = parse_plan(args.plan) if args.plan else None
    kw = {"plan": plan, "max_sequences": 1 if plan else None, "use_faketime": False if args.no_faketime else None}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        out = run_suite(args.keep, seed=args.seed, seconds=args.seconds, log=lambda s: print(s, flush=True), **kw)
    else:
        with tempfile.TemporaryDirectory(prefix="pf-invariants-") as d:
            out = run_suite(Path(d), seed=args.seed, seconds=args.seconds, log=lambda s: print(s, flush=True), **kw)
    print()
    for v in out.violations:
        print(f"- {v}")
    print(out.summary(), f"elapsed={time.monotonic() - t0:.0f}s")
    return 1 if out.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
