"""Schedule drift: the mean interval between runs over 100 runs, grid trigger vs interval+jitter.

1. Computed: the fire times APScheduler gets from each trigger over 100 runs, for
   ``every = "30s"`` and ``"15m"`` (jitter: a tenth of the interval, at most 2 minutes).
2. Measured: a real ``AsyncIOScheduler`` running both triggers side by side with a job that
   takes ``--work`` seconds, ``--runs`` runs at ``--every`` seconds (wall clock).

    .venv/bin/python bench/schedule.py [--every 2] [--runs 100] [--work 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402
from apscheduler.triggers.interval import IntervalTrigger  # noqa: E402

from feeds.schedule import GridTrigger  # noqa: E402


def jitter_of(every: float) -> float:
    return min(every * 0.1, 120.0)


def computed(trigger: object, runs: int) -> list[float]:
    now = datetime(2026, 11, 24, 8, 0, 7, tzinfo=UTC)
    prev = None
    times = []
    for _ in range(runs + 1):
        nxt = trigger.get_next_fire_time(prev, now)  # type: ignore[attr-defined]
        times.append(nxt)
        prev, now = nxt, nxt
    return [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]


def summary(gaps: list[float]) -> str:
    return f"{statistics.mean(gaps):.2f} s ({min(gaps):.2f}-{max(gaps):.2f})"


async def measured(every: float, runs: int, work: float) -> dict[str, list[float]]:
    seen: dict[str, list[float]] = {"grid": [], "interval": []}
    done = asyncio.Event()

    async def job(name: str) -> None:
        seen[name].append(time.time())
        await asyncio.sleep(work)  # the attempt's own time must not push the next run
        if all(len(v) > runs for v in seen.values()):
            done.set()

    sched = AsyncIOScheduler(timezone=UTC)
    start = datetime.now(UTC) + timedelta(seconds=1)
    sched.add_job(job, GridTrigger(every, jitter_of(every), seed="bench"), args=["grid"], coalesce=True,
                  max_instances=1, misfire_grace_time=300)
    sched.add_job(job, IntervalTrigger(seconds=every, jitter=jitter_of(every), start_date=start), args=["interval"],
                  coalesce=True, max_instances=1, misfire_grace_time=300)
    sched.start()
    await done.wait()
    sched.shutdown(wait=False)
    return {k: [b - a for a, b in zip(v, v[1:], strict=False)][:runs] for k, v in seen.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--every", type=float, default=2.0)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--work", type=float, default=0.3)
    p.add_argument("--no-measure", action="store_true", help="only the computed table")
    args = p.parse_args(argv)
    print("| every | trigger | mean interval over 100 runs (min-max) | runs a day at 15m |")
    print("|---|---|---|---|")
    for every in (30.0, 900.0):
        for name, trig in (
            ("grid (feeds.schedule)", GridTrigger(every, jitter_of(every), seed="weather")),
            ("IntervalTrigger + jitter (before)", IntervalTrigger(seconds=every, jitter=jitter_of(every))),
        ):
            gaps = computed(trig, 100)
            per_day = 86400 / statistics.mean(gaps) if every == 900 else float("nan")
            print(f"| {every:g} s | {name} | {summary(gaps)} | {per_day:.1f} |" if every == 900
                  else f"| {every:g} s | {name} | {summary(gaps)} | - |")
    if not args.no_measure:
        res = asyncio.run(measured(args.every, args.runs, args.work))
        print()
        print(f"Measured with a real AsyncIOScheduler, every = {args.every:g} s, {args.runs} runs, job {args.work:g} s:")
        for name, gaps in res.items():
            print(f"- {name}: {summary(gaps)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
