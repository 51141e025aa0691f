"""Issue 20: the freshness decision of an attempt is a pure function (feeds.decision), tested
without a store, a clock or a file."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import decision
from feeds.decision import Decision, Origin, Previous, Windows, decide

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
STARTED = NOW - timedelta(seconds=5)
H = timedelta(hours=1)
WINDOWS = Windows(max_stale=48 * H, fresh_for=timedelta(minutes=30))
NONE = Previous()


def run(**kw: object) -> Decision:
    args: dict[str, object] = {
        "requested": True, "failed": False, "last_good_at": NOW, "previous": NONE, "origin": None,
        "started": STARTED, "now": NOW, "windows": WINDOWS,
    }
    args.update(kw)
    return decide(**args)  # type: ignore[arg-type]


def test_a_successful_attempt_is_fresh_and_clears_stale_since() -> None:
    assert run(previous=Previous("stale", NOW - 3 * H)) == Decision("fresh", None)


def test_a_failed_attempt_follows_the_age_of_the_last_good_data() -> None:
    assert run(failed=True, last_good_at=None) == Decision("unavailable", STARTED)
    assert run(failed=True, last_good_at=NOW - H) == Decision("stale", STARTED)
    assert run(failed=True, last_good_at=NOW - 49 * H) == Decision("expired", STARTED)
    # Data published fresh does not stay fresh when the attempt failed.
    assert run(failed=True, last_good_at=NOW - timedelta(minutes=1), previous=Previous("fresh")).status == "stale"


def test_stale_since_is_the_first_failure_after_the_last_success() -> None:
    first = NOW - 3 * H
    assert run(failed=True, last_good_at=NOW - H, previous=Previous("stale", first)).stale_since == first


def test_held_back_keeps_fresh_data_fresh_within_its_window_only() -> None:
    fresh = Previous("fresh", None)
    assert run(requested=False, last_good_at=NOW - timedelta(minutes=30), previous=fresh) == Decision("fresh", None)
    assert run(requested=False, last_good_at=NOW - timedelta(minutes=31), previous=fresh) == Decision("stale", STARTED)
    # Data that was not published fresh is not made fresh by a held-back attempt.
    assert run(requested=False, last_good_at=NOW - timedelta(minutes=1), previous=Previous("stale", NOW - H)) == (
        Decision("stale", NOW - H)
    )
    assert run(requested=False, last_good_at=None, previous=fresh) == Decision("unavailable", STARTED)
    # Held back and failed (an error after all): decided as a failure.
    assert run(requested=False, failed=True, last_good_at=NOW - timedelta(minutes=1), previous=fresh).status == "stale"


def test_data_stamped_ahead_of_the_clock_is_never_fresh_without_a_request() -> None:
    ahead = NOW + timedelta(days=2)
    assert run(requested=False, last_good_at=ahead, previous=Previous("fresh")).status == "stale"


def test_a_peer_copy_is_never_fresher_than_its_origin() -> None:
    since = NOW - 2 * H
    assert run(origin=Origin("stale", since)) == Decision("stale", since)
    # stale_since: the earlier of ours and the origin's.
    assert run(failed=True, last_good_at=NOW - H, origin=Origin("stale", since)).stale_since == since
    assert run(failed=True, last_good_at=NOW - H, previous=Previous("stale", NOW - 5 * H),
               origin=Origin("stale", since)).stale_since == NOW - 5 * H
    # A fresh origin leaves a fresh copy fresh.
    assert run(origin=Origin("fresh", None)) == Decision("fresh", None)


def test_the_windows_of_a_feed() -> None:
    class Feed:
        every, min_interval, max_stale = 900.0, 300.0, 172800.0

    assert Windows.of(Feed()) == Windows(timedelta(hours=48), timedelta(minutes=30))  # type: ignore[arg-type]
    assert decision.fresh_for(Feed()) == timedelta(minutes=30)  # type: ignore[arg-type]


times = st.one_of(st.none(), st.integers(-3 * 24 * 3600, 3 * 24 * 3600).map(lambda s: NOW - timedelta(seconds=s)))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    requested=st.booleans(), failed=st.booleans(), last_good_at=times,
    previous=st.builds(Previous, st.sampled_from([None, "fresh", "stale", "expired", "unavailable"]), times),
    origin=st.one_of(st.none(), st.builds(Origin, st.sampled_from([None, "fresh", "stale"]), times)),
)
def test_decision_invariants(
    requested: bool, failed: bool, last_good_at: datetime | None, previous: Previous, origin: Origin | None
) -> None:
    d = run(requested=requested, failed=failed, last_good_at=last_good_at, previous=previous, origin=origin)
    assert (d.stale_since is None) == (d.status == "fresh")
    if failed:
        assert d.status != "fresh"
    if last_good_at is None and (failed or not requested):
        assert d.status == "unavailable"
    if origin is not None and origin.status == "stale":
        assert d.status != "fresh"
    if d.stale_since is not None:
        # Never later than the attempt's start, the previous stale_since or the origin's.
        bounds = [STARTED] + [t for t in (previous.stale_since,) if t is not None]
        assert d.stale_since <= max(bounds)
    # The same inputs, the same answer: no hidden state.
    assert d == run(requested=requested, failed=failed, last_good_at=last_good_at, previous=previous, origin=origin)


def test_the_decision_does_no_io() -> None:
    """feeds.decision imports nothing but the freshness table and the standard library's values."""
    tree = ast.parse(Path(decision.__file__).read_text(encoding="utf-8"))
    typing_only = {
        id(n) for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)
    }
    imported = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "dataclasses", "datetime", "typing", "feeds"}
    assert "from feeds import freshness" in Path(decision.__file__).read_text(encoding="utf-8")
