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
