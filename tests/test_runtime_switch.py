"""While a runtime is open the event loop gets the GIL back quickly (issue 20): the switch
interval is lowered for the run and restored after it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from feeds.app import SWITCH_INTERVAL, open_runtime
from feeds.store import MemoryStore
from tests.helpers import config_file


def test_switch_interval_lowered_during_the_run_and_restored(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, '[feeds.r]\nkind = "vietcombank"\nurl = "http://127.0.0.1:9/x"\n')
    before = sys.getswitchinterval()
    seen: list[float] = []

    async def go() -> None:
        async with open_runtime(cfg, store=MemoryStore()):
            seen.append(sys.getswitchinterval())

    asyncio.run(go())
    assert seen == [min(before, SWITCH_INTERVAL)] and SWITCH_INTERVAL <= 0.001
    assert sys.getswitchinterval() == before


def test_collector_thresholds_raised_during_the_run_and_restored(tmp_path: Path) -> None:
    """A 3,000-location attempt allocates ~300,000 containers that live on: with the default
    thresholds (700, 10, 10) the collector ran ~100 young and one or two full collections per
    attempt, the full ones 20-70 ms with the event loop stopped (issue 20)."""
    import gc

    from feeds.app import GC_THRESHOLDS

    cfg = config_file(tmp_path, '[feeds.r]\nkind = "vietcombank"\nurl = "http://127.0.0.1:9/x"\n')
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    async def go() -> None:
        async with open_runtime(cfg, store=MemoryStore()):
            seen.append(gc.get_threshold())

    asyncio.run(go())
    assert seen == [tuple(max(a, b) for a, b in zip(before, GC_THRESHOLDS, strict=True))]
    assert GC_THRESHOLDS[0] >= 10 * 700 and gc.isenabled()
    assert gc.get_threshold() == before
