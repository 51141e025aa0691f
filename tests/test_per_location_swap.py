"""Per-location files through the coordinator when the folders are exchanged (issue 20): every
refresh's files whole and valid, each with its own data, whether they all changed (one
exchange of the folders) or some did not; the spares' folder never served."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from feeds import publish
from feeds.sources.provinces import VIETNAM_PROVINCES
from feeds.testing.upstream import Fault, UpstreamSimulator
from tests.helpers import config_file, make_coordinator
from tests.test_per_location import weather

pytestmark = pytest.mark.skipif(not publish._exchange_supported(), reason="no renameat2(RENAME_EXCHANGE) here")


def test_refreshes_exchange_the_folders_and_every_file_stays_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validate_snapshot  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(publish, "SPARE_QUIET", 0.0)
    monkeypatch.setattr(publish, "FOLDER_SWAP_FILES", 10)
    exchanges: list[tuple[str, str]] = []
    real = publish._exchange

    def exchange(a: str, b: str) -> bool:
        exchanges.append((a, b))
        return real(a, b)

    monkeypatch.setattr(publish, "_exchange", exchange)
    ids = sorted(f"{loc.id}.json" for loc in VIETNAM_PROVINCES)
    with UpstreamSimulator() as sim:
        cfg = config_file(tmp_path, weather(sim.url("open-meteo")))
        coord, clock, _, _ = make_coordinator(cfg, lambda r: httpx.Response(500))
        sim.now = lambda: clock.now().timestamp()
        folder = tmp_path / "snapshots" / "weather"
        spares = tmp_path / "snapshots" / ".spare" / "weather"
        seen: list[str] = []

        async def refresh() -> None:
            async with httpx.AsyncClient() as client:  # one per event loop
                coord.client = client
                await coord.refresh(cfg.feeds["weather"])

        for n in range(4):
            exchanges.clear()
            asyncio.run(refresh())
            whole = validate_snapshot(tmp_path / "snapshots" / "weather.json")
            assert sorted(os.listdir(folder)) == ids
            for loc in whole["data"]["locations"]:
                one = validate_snapshot(folder / f"{loc['id']}.json")
                assert one["data"] == {"locations": [loc]} and one["status"] == whole["status"]
            at = whole["data"]["locations"][0]["fetched_at"]
            assert at not in seen  # each refresh new data, every file with it
            seen.append(at)
            if n >= 1:  # the spares exist from the second refresh on: one exchange of folders
                assert (str(spares), str(folder)) in exchanges, n
                previous = json.loads((spares / "hue.json").read_text(encoding="utf-8"))
                assert previous["data"]["locations"][0]["fetched_at"] == seen[-2]
            assert oct(spares.stat().st_mode & 0o777) == "0o700"
            assert all(oct((folder / i).stat().st_mode & 0o777) == "0o644" for i in ids)
            clock.advance(1800)
        # The upstream fails: the files turn stale with the feed (status and times change in
        # every file: the folders are exchanged again), data kept.
        sim.set_faults("open-meteo", [Fault.status(503)], repeat_last=True)
        exchanges.clear()
        asyncio.run(refresh())
        hue = validate_snapshot(folder / "hue.json")
        assert hue["status"] == "stale" and hue["data"]["locations"][0]["fetched_at"] == seen[-1]
        assert (str(spares), str(folder)) in exchanges


def test_an_attempt_that_writes_nothing_leaves_no_thread_making_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from feeds import coordinator

    stopped = threading.Event()
    real_open = os.open

    def slow_open(path: object, flags: int, *a: object, **k: object) -> int:
        if threading.current_thread().name == "feeds-spares" and flags & os.O_CREAT:
            with publish._PREPARING_LOCK:
                job = next(iter(publish._PREPARING.values()), None)
            if job is not None and job[1].wait(30):  # until the attempt says stop
                stopped.set()
        return real_open(path, flags, *a, **k)  # type: ignore[arg-type]

    def disk_full(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "open", slow_open)
    monkeypatch.setattr(coordinator, "write_snapshot", disk_full)
    with UpstreamSimulator() as sim:
        cfg = config_file(tmp_path, weather(sim.url("open-meteo")))
        coord, clock, _, _ = make_coordinator(cfg, lambda r: httpx.Response(500))
        sim.now = lambda: clock.now().timestamp()

        async def refresh() -> str:
            async with httpx.AsyncClient() as client:
                coord.client = client
                return (await coord.refresh(cfg.feeds["weather"])).status

        assert asyncio.run(refresh()) == "not_written"
    assert stopped.is_set() and publish._PREPARING == {}
