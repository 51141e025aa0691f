"""Weather entries are checked once, while their batch is parsed (issue 20): the publish step
does not check them again, still drops a hostile location, and checks everything again when
the wall clock was stepped back between the parse and the merge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from feeds import bounds
from feeds.clock import FakeClock, SteppableClock
from feeds.coordinator import Coordinator
from feeds.store import MemoryStore
from tests.test_batching import open_meteo_answer, weather_config

N = 300  # 3 batches of 100


class Calls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.check = 0
        self.ok = 0
        real_check, real_ok = bounds.check_location, bounds.location_ok

        def check(*a: Any) -> None:
            self.check += 1
            real_check(*a)

        def ok(loc: Any) -> bool:
            self.ok += 1
            return real_ok(loc)

        monkeypatch.setattr(bounds, "check_location", check)
        monkeypatch.setattr(bounds, "location_ok", ok)


def refresh(tmp_path: Path, clock: Any, answer: Callable[[httpx.Request], httpx.Response], extra: str = "") -> Any:
    cfg, feed = weather_config(tmp_path, N, fallback=False, extra=extra)

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return await Coordinator(cfg, MemoryStore(), client, clock).refresh(feed)

    return asyncio.run(go())


def test_each_location_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    r = refresh(tmp_path, FakeClock(), open_meteo_answer)
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert len(r.snapshot["data"]["locations"]) == N
    # Once each while parsed; the publish step checks none of them again (it did, 3x and 2x).
    assert (calls.check, calls.ok) == (N, N)


def test_a_hostile_location_is_still_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hostile(request: httpx.Request) -> httpx.Response:
        res = open_meteo_answer(request)
        doc = json.loads(res.content)
        doc[7]["current"]["time"] = "2031-01-01T00:00"  # years ahead: the parser takes it, the publish step not
        return httpx.Response(200, content=json.dumps(doc).encode())

    calls = Calls(monkeypatch)
    r = refresh(tmp_path, FakeClock(), hostile)
    assert (r.outcome, r.detail) == ("invalid_payload", "partial")
    locs = r.snapshot["data"]["locations"]
    assert len(locs) == N - 3  # the 8th location of each batch, never fetched before: dropped
    assert not any(loc["current"]["time"].startswith("2031") for loc in locs)
    assert calls.check == N + 3  # the three refused while parsed are checked again, and dropped


def test_a_clock_stepped_back_after_the_parse_has_everything_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SteppableClock(FakeClock())
    calls = Calls(monkeypatch)
    counted_ok = bounds.location_ok

    def ok_then_step(loc: Any) -> bool:
        # The last entry made while parsed (by either reading of an answer: the one-pass
        # ``fast_entries`` or ``batching._entry``) is checked here, before its batch is done.
        result = counted_ok(loc)
        if calls.ok == N:
            clock.step(-3600)  # every batch parsed; the merge comes after an hour's step back
        return result

    monkeypatch.setattr(bounds, "location_ok", ok_then_step)
    r = refresh(tmp_path, clock, open_meteo_answer)
    assert r.status == "fresh" and len(r.snapshot["data"]["locations"]) == N
    # Checked against a later fetched_at than the one the merge gives them: not vouched
    # for, every entry is checked again in the publish step.
    assert (calls.check, calls.ok) == (2 * N, 2 * N)
