"""Issue 10 §3: held back is not fresh forever -- the status follows the data's age."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds.config import load_config
from feeds.freshness import decide
from tests.conftest import write_config
from tests.helpers import make_coordinator, ok, vcb_fixture

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("age", "max_stale", "was_fresh", "expected"),
    [
        (M, 48 * 60 * M, True, "fresh"),  # held back within two intervals: still fresh
        (30 * M, 48 * 60 * M, True, "fresh"),  # exactly fresh_for
        (31 * M, 48 * 60 * M, True, "stale"),  # past it: stale, whatever the reason
        (31 * M, 48 * 60 * M, False, "stale"),
        (M, 48 * 60 * M, False, "stale"),  # was not fresh: a hold-back does not make it so
        (60 * M, 20 * M, True, "expired"),  # the case: age 60 > max_stale 20
        (25 * M, 20 * M, True, "expired"),  # max_stale wins over fresh_for
        (20 * M, 20 * M, True, "fresh"),
    ],
)
def test_status_is_a_function_of_age_when_no_request_was_made(
    age: timedelta, max_stale: timedelta, was_fresh: bool, expected: str
) -> None:
    got = decide(succeeded=False, last_good_at=NOW - age, max_stale=max_stale, now=NOW,
                 was_fresh=was_fresh, fresh_for=30 * M)
    assert got == expected


def test_held_back_rates_go_stale_then_expired(tmp_path: Path) -> None:
    """A feed held back by politeness at every attempt ages like a failing one."""
    cfg = load_config(write_config(
        tmp_path, '[feeds.rates]\nkind = "vietcombank"\nurl = "http://bank.test/x"\nevery = "5m"\nmax_stale = "20m"\n'
    ))
    coord, clock, store, client = make_coordinator(cfg, ok(vcb_fixture()))
    feed = cfg.feeds["rates"]

    t0 = clock.now()

    async def go() -> list[tuple[str, str]]:
        seen = []
        r = await coord.refresh(feed)
        seen.append((r.status, r.outcome))
        # Another process holds the host's politeness slot from now on (e.g. a second
        # portal-feeds on the same cache): every later attempt is held back.
        for minutes in (4, 11, 21):
            clock.advance((t0 + minutes * M - clock.now()).total_seconds())
            store.set("polite/bank.test", {"last_request_at": clock.now(), "not_before": None})
            r = await coord.refresh(feed)
            seen.append((r.status, r.outcome))
        await client.aclose()
        return seen

    assert asyncio.run(go()) == [
        ("fresh", "ok"),
        ("fresh", "held_back"),  # 4 min: within two intervals (10 min)
        ("stale", "held_back"),  # 11 min: older than two intervals
        ("expired", "held_back"),  # 21 min: older than max_stale (20 min)
    ]


def test_warm_start_of_old_fresh_data_respects_max_stale(tmp_path: Path) -> None:
    cfg = load_config(write_config(
        tmp_path, '[feeds.rates]\nkind = "vietcombank"\nurl = "http://bank.test/x"\nevery = "1h"\nmin_interval = "0s"\nmax_stale = "20m"\n'
    ))
    feed = replace(cfg.feeds["rates"])
    coord, clock, store, client = make_coordinator(cfg, ok(vcb_fixture()))
    assert asyncio.run(coord.refresh(feed)).status == "fresh"
    clock.advance(30 * 60)  # within two intervals (2 h) but past max_stale
    assert coord.republish(feed).status == "expired"
    asyncio.run(client.aclose())
