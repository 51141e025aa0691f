"""The never-older check's shortcut (issue 20): ``publishing._none_newer`` says "nothing on
disk is newer" only where the location-by-location rule (issue 16) says so too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.models import Location
from feeds.publishing import _none_newer, _parse_time
from feeds.store import GoodData

BASE = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
IDS = [f"p{i}" for i in range(6)]
LOCS = tuple(Location(id=i, name=i, lat=10.0, lon=106.0) for i in IDS[:4])  # p4, p5: not wanted


def _reference(on_disk: dict[str, datetime], locations: list[Any], limit: datetime) -> bool:
    """issue 16's rule, as ``newer_on_disk`` applies it: True when no location is newer."""
    ours = {loc.get("id"): _parse_time(loc.get("fetched_at")) for loc in locations if isinstance(loc, dict)}
    wanted = {loc.id for loc in LOCS}

    def newer(at: datetime, mine: datetime | None) -> bool:
        return at <= limit and (mine is None or at > mine.replace(microsecond=0))

    return not any(newer(at, ours.get(lid)) for lid, at in on_disk.items() if lid in wanted)


def _good(locations: list[Any]) -> GoodData:
    return GoodData(data={"locations": locations}, fetched_at=BASE, as_of=None, source_name="s", source_url="u")


offsets = st.integers(min_value=-7200, max_value=7200)
micro = st.integers(min_value=0, max_value=999_999)
stamp = st.builds(lambda s, us: BASE + timedelta(seconds=s, microseconds=us), offsets, micro)
fetched = st.one_of(
    stamp.map(lambda t: t.isoformat()),
    stamp.map(lambda t: t.astimezone(datetime.now().astimezone().tzinfo).isoformat()),
    st.sampled_from([None, "", "not a time", "2026-12-06T08:00:00", 5, ["x"]]),
)
location = st.one_of(
    st.builds(lambda i, f: {"id": i, "fetched_at": f}, st.sampled_from(IDS), fetched),
    st.builds(lambda i: {"id": i}, st.one_of(st.sampled_from(IDS), st.none())),
    st.just("not a location"),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    on_disk=st.dictionaries(st.sampled_from(IDS), stamp, max_size=6),
    locations=st.lists(location, max_size=8),
    ahead=st.integers(min_value=-3600, max_value=3600),
)
def test_the_shortcut_never_hides_a_newer_location(on_disk: dict[str, datetime], locations: list[Any], ahead: int) -> None:
    limit = BASE + timedelta(seconds=ahead)
    feed: Any = SimpleNamespace(locations=LOCS)
    if _none_newer(on_disk, _good(locations), feed, limit):
        assert _reference(on_disk, locations, limit)


def test_the_shortcut_answers_the_common_case() -> None:
    """The file we wrote last, the data fetched after it: no location-by-location walk."""
    feed: Any = SimpleNamespace(locations=LOCS)
    on_disk = {loc.id: BASE for loc in LOCS}
    later = [{"id": loc.id, "fetched_at": (BASE + timedelta(minutes=15, microseconds=5)).isoformat()} for loc in LOCS]
    assert _none_newer(on_disk, _good(later), feed, BASE + timedelta(hours=1))
    same = [{"id": loc.id, "fetched_at": BASE.isoformat()} for loc in LOCS]
    assert _none_newer(on_disk, _good(same), feed, BASE + timedelta(hours=1))
    older = [{"id": loc.id, "fetched_at": (BASE - timedelta(seconds=1)).isoformat()} for loc in LOCS]
    assert not _none_newer(on_disk, _good(older), feed, BASE + timedelta(hours=1))
    assert not _none_newer(on_disk, _good(same[1:]), feed, BASE + timedelta(hours=1))  # one missing
