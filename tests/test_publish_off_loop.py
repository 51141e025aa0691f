"""Issue 20: the publish step runs off the event loop, one step at a time per feed.

Event-based (no timed assertions): a slow publish step waits for the loop to show it is alive;
two attempts of one feed never publish at once and the newer one's file is the one left.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
min_interval = "0s"
"""


def test_the_loop_runs_while_a_feed_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    import feeds.coordinator as coordinator

    real = coordinator.write_companions
    publishing = threading.Event()
    loop_ran = threading.Event()
    seen: list[bool] = []

    def slow(*args: Any) -> None:
        publishing.set()
        seen.append(loop_ran.wait(5))  # on the loop itself this could only time out
        real(*args)

    monkeypatch.setattr(coordinator, "write_companions", slow)

    async def main() -> str:
        async def watchdog() -> None:  # stands for the watchdog ping, other feeds, metrics
            while not publishing.is_set():
                await asyncio.sleep(0.001)
            loop_ran.set()

        ping = asyncio.create_task(watchdog())
        result = await coord.refresh(feed)
        await ping
        return result.status

    assert asyncio.run(main()) == "fresh"
    assert seen == [True]
    assert (tmp_path / "snapshots" / "exchange-rates.html").exists()


def test_one_publish_step_at_a_time_per_feed_newest_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, clock, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    import feeds.coordinator as coordinator

    real = coordinator.write_snapshot
    inside = 0
    most = 0
    order: list[str] = []
    first_in = threading.Event()
    second_waiting = threading.Event()
    lock = threading.Lock()

    def counted(snapshot_dir: Path, document: Any, companions: Any = None) -> Path:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            order.append(document["generated_at"])
            if len(order) == 1:
                first_in.set()
                second_waiting.wait(5)  # the second attempt is queued meanwhile
            return real(snapshot_dir, document, companions)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(coordinator, "write_snapshot", counted)

    async def main() -> None:
        first = asyncio.create_task(coord.refresh(feed))
        while not first_in.is_set():
            await asyncio.sleep(0.001)
        clock.advance(60)  # the second attempt is a minute newer
        second = asyncio.create_task(coord.refresh(feed))
        for _ in range(50):  # let the second attempt reach its publish step and queue there
            await asyncio.sleep(0)
        second_waiting.set()
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert most == 1 and len(order) == 2 and order[0] < order[1]
    import json

    on_disk = json.loads((tmp_path / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8"))
    assert on_disk["generated_at"] == order[1]


def test_a_stop_while_publishing_lets_the_step_end_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    import feeds.coordinator as coordinator

    real = coordinator.write_companions
    entered = threading.Event()
    go_on = threading.Event()
    done: list[bool] = []

    def held(*args: Any) -> None:
        entered.set()
        go_on.wait(5)
        real(*args)
        done.append(True)

    monkeypatch.setattr(coordinator, "write_companions", held)
    when_task_ended: list[bool] = []

    async def main() -> None:
        task = asyncio.create_task(coord.refresh(feed))
        task.add_done_callback(lambda _: when_task_ended.append(bool(done)))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        task.cancel()  # the daemon stopping
        await asyncio.sleep(0)
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert when_task_ended == [True]  # the files were whole and written before the stop went on
    assert (tmp_path / "snapshots" / "exchange-rates.html").exists()
