"""RFC 8767 client response timer: a slow lookup answers from the last known addresses after
``stale_answer_after`` while the lookup goes on and refreshes the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from feeds.clock import FakeClock
from feeds.errors import DnsError
from feeds.resolver import ServeStaleResolver, resolution_log
from feeds.store import MemoryStore
from tests.helpers import config_file


class Gate:
    """A resolver whose answers wait for the test to open the gate."""

    def __init__(self, answer: list[str] | DnsError) -> None:
        self.answer = answer
        self.open = asyncio.Event()
        self.calls = 0

    async def resolve(self, host: str) -> list[str]:
        self.calls += 1
        await self.open.wait()
        if isinstance(self.answer, DnsError):
            raise self.answer
        return list(self.answer)


def test_slow_lookup_answers_stale_then_refreshes_in_background() -> None:
    clock = FakeClock()
    store = MemoryStore()
    store.set("dns/rates.example", {"addrs": ["10.0.0.1"], "resolved_at": clock.now()})

    async def go() -> tuple[list[str], list[str], list[str], int]:
        gate = Gate(["10.0.0.2"])
        r = ServeStaleResolver(store, clock.now, primary=gate, stale_answer_after=0.05)
        with resolution_log() as log:
            # Bounded here so the test fails (not hangs) if the timer is missing.
            first = await asyncio.wait_for(r.resolve("rates.example"), 5)
            second = await asyncio.wait_for(r.resolve("rates.example"), 5)  # joins the same lookup
        gate.open.set()
        for _ in range(100):
            if store.get("dns/rates.example")["addrs"] == ["10.0.0.2"]:
                break
            await asyncio.sleep(0.01)
        return first, second, log.stale_hosts, gate.calls

    first, second, stale, calls = asyncio.run(go())
    assert first == second == ["10.0.0.1"] and stale == ["rates.example", "rates.example"]
    assert calls == 1  # one background lookup per host
    assert store.get("dns/rates.example")["addrs"] == ["10.0.0.2"]  # refreshed when it came


def test_fast_lookup_is_used_and_no_history_waits_for_the_lookup() -> None:
    clock = FakeClock()
    store = MemoryStore()

    async def go() -> list[str]:
        gate = Gate(["10.0.0.3"])
        r = ServeStaleResolver(store, clock.now, primary=gate, stale_answer_after=0.01)
        task = asyncio.ensure_future(r.resolve("new.example"))
        await asyncio.sleep(0.1)  # far past the timer: nothing stale to answer with
        assert not task.done()
        gate.open.set()
        return await task

    assert asyncio.run(go()) == ["10.0.0.3"]


def test_failed_lookup_within_the_timer_still_serves_stale() -> None:
    clock = FakeClock()
    store = MemoryStore()
    store.set("dns/rates.example", {"addrs": ["10.0.0.1"], "resolved_at": clock.now()})

    async def go() -> list[str]:
        gate = Gate(DnsError("x", detail="temporary"))
        gate.open.set()
        return await ServeStaleResolver(store, clock.now, primary=gate, stale_answer_after=1.0).resolve(
            "rates.example"
        )

    assert asyncio.run(go()) == ["10.0.0.1"]


def test_config_key(tmp_path: Path) -> None:
    body = '[feeds.r]\nkind = "vietcombank"\n'
    assert config_file(tmp_path, body).dns.stale_answer_after == 1.8
    assert config_file(tmp_path, '[dns]\nstale_answer_after = "0s"\n' + body).dns.stale_answer_after == 0
