"""Open-Meteo's one-pass reading of a common answer (issue 20): ``fast_entries`` gives exactly
what ``parse`` + the source's ``check`` + ``feeds.batching._entry`` give together, or None
(and then those three read the answer, with their exact errors).

Seeded from the real recorded answers (tests/fixtures/weather, provenance there) and the
simulator's 100-location answer, damaged at random (hypothesis, fixed budget).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.batching import _entry
from feeds.errors import InvalidPayloadError, RejectedError
from feeds.models import Location
from feeds.sources import open_meteo
from feeds.testing.upstream import _open_meteo_answer

FIXTURES = Path(__file__).parent / "fixtures" / "weather"


def _seeds() -> list[list[dict[str, Any]]]:
    """Multi-location answers: the built one, each recorded single answer as one item of a
    list (the form a batch gets), and the simulator's answer for 100 places."""
    out: list[list[dict[str, Any]]] = [json.loads((FIXTURES / "open-meteo-multi-3-built.json").read_text())]
    for name in ("open-meteo-bangkok-2024-12-13.json", "open-meteo-current-single.json",
                 "open-meteo-daily-nulls-2022-12-29.json"):
        doc = json.loads((FIXTURES / name).read_text())
        out.append([doc, copy.deepcopy(doc)])
    lats = ",".join(str(10 + i * 0.1) for i in range(100))
    lons = ",".join(str(105 + i * 0.05) for i in range(100))
    out.append(json.loads(_open_meteo_answer(lats, lons, 490_000)[1]))
    return out


SEEDS = _seeds()
NAMES = ("Tỉnh Lào Cai", "Thành phố Huế", "Hà Nội", "Thành phố ")


def _locations(items: list[Any]) -> list[Location]:
    locs = []
    for i, it in enumerate(items):
        lat = it.get("latitude") if isinstance(it, dict) else None
        lon = it.get("longitude") if isinstance(it, dict) else None
        lat = lat if type(lat) in (int, float) and abs(lat) <= 90 else 10.0
        lon = lon if type(lon) in (int, float) and abs(lon) <= 180 else 106.0
        locs.append(Location(f"p{i}", NAMES[i % len(NAMES)], float(lat), float(lon)))
    return locs


def _slow(body: bytes, locs: list[Location], at: datetime) -> Any:
    try:
        parsed = open_meteo.read(body, locs)
        open_meteo.check(parsed, previous=None, max_change=None, asked=[loc.id for loc in locs])
    except (InvalidPayloadError, RejectedError) as exc:
        return ("refused", exc.detail)
    return [(lw.location.id, lw.as_of, *_entry(lw, at)) for lw in parsed]


def _same(fast: Any, slow: Any) -> bool:
    # repr, not ==: 85 and 85.0 are equal in Python but not in a snapshot.
    return repr(fast) == repr(slow) and json.dumps(fast, default=str) == json.dumps(slow, default=str)


AT = [
    datetime(2024, 12, 13, 16, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
    datetime(2026, 11, 22, 8, 0, tzinfo=UTC),  # before the built answer's times: entries refused
    datetime(2099, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("seed", range(len(SEEDS)))
@pytest.mark.parametrize("at", AT)
def test_common_answers_take_the_one_pass_and_read_the_same(seed: int, at: datetime) -> None:
    items = SEEDS[seed]
    body = json.dumps(items).encode()
    locs = _locations(items)
    fast = open_meteo.fast_entries(body, locs, at)
    assert fast is not None, "a common answer was not read in one pass"
    assert _same(fast, _slow(body, locs, at))


def test_an_answer_in_other_units_is_left_to_the_three_steps() -> None:
    items = copy.deepcopy(SEEDS[0])
    items[1]["current_units"]["temperature_2m"] = "°F"
    body = json.dumps(items).encode()
    assert open_meteo.fast_entries(body, _locations(items), AT[1]) is None
    assert isinstance(_slow(body, _locations(items), AT[1]), list)  # converted there


VALUES = st.sampled_from([
    None, 0, 1, -1, 2.5, 3.0, 61, 99, 100, 2.7, -0.0, 1e9, 1e10, -1e10, 1e300, True, False, "x", "12", [], {}, [1],
    "°F", "m/s", "kn", "mph", "inch", "°C", "km/h", "mm", "%", "°", "K",
    "2024-12-13T23:00", "2024-12-13T23:00+07:00", "2024-12-13T23:00:00+07:06:40", "2024-12-13T23:00:00.5",
    "1999-01-01", "2024-12-13", "2201-01-01", "20241213", "9999-12-31T23:59", "2026-11-24T15:00",
    25200, 25230, 3600 * 20, -43200, 0, 10**30, 13.75, 100.5, 95, 3, 61, 500.5, 60.5, -90.5, 2000.5, 360.5,
])


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*path, i))
    return out


@settings(max_examples=600, deadline=None, derandomize=True)
@given(data=st.data(), seed=st.integers(min_value=0, max_value=len(SEEDS) - 2), at=st.sampled_from(AT))
def test_a_damaged_answer_reads_the_same_or_is_left_to_the_three_steps(data: st.DataObject, seed: int, at: datetime) -> None:
    items = copy.deepcopy(SEEDS[seed])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(items)
        if not paths:
            break
        path = paths[data.draw(st.integers(min_value=0, max_value=len(paths) - 1))]
        parent: Any = items
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.integers(min_value=0, max_value=3)):
            parent[path[-1]] = data.draw(VALUES)
        else:
            del parent[path[-1]]
    body = json.dumps(items).encode()
    locs = _locations(items if isinstance(items, list) else [items])
    fast = open_meteo.fast_entries(body, locs, at)
    if fast is not None:
        assert _same(fast, _slow(body, locs, at))


#: Where the one pass decides something, per location: (block, key[, index]).
TARGETS = [
    *(("current", k) for k in ("time", "temperature_2m", "apparent_temperature", "relative_humidity_2m",
                               "wind_speed_10m", "wind_direction_10m", "precipitation", "rain", "weather_code")),
    *(("current_units", k) for k in ("temperature_2m", "apparent_temperature", "relative_humidity_2m",
                                     "wind_speed_10m", "wind_direction_10m", "precipitation", "rain")),
    *(("daily", k, i) for k in ("time", "weather_code", "temperature_2m_max", "temperature_2m_min",
                                "precipitation_sum") for i in range(3)),
    *(("daily_units", k) for k in ("temperature_2m_max", "temperature_2m_min", "precipitation_sum")),
    ("latitude",), ("longitude",), ("utc_offset_seconds",), ("current",), ("daily",), ("current_units",),
    ("daily_units",), ("current_weather",),
]


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(
    changes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2), st.sampled_from(TARGETS), VALUES, st.booleans()),
        min_size=1, max_size=3,
    ),
    seed=st.sampled_from([0, 1, 2, 3]),
    at=st.sampled_from(AT),
)
def test_a_value_changed_where_the_pass_decides_reads_the_same_or_is_left_to_the_three_steps(
    changes: list[tuple[int, tuple[Any, ...], Any, bool]], seed: int, at: datetime
) -> None:
    items = copy.deepcopy(SEEDS[seed])
    for n, target, value, remove in changes:
        obj: Any = items[n % len(items)]
        for key in target[:-1]:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(obj, dict) and target[-1] not in range(3):
            if remove:
                obj.pop(target[-1], None)
            else:
                obj[target[-1]] = value
        elif isinstance(obj, list) and isinstance(target[-1], int) and target[-1] < len(obj):
            obj[target[-1]] = value
    body = json.dumps(items).encode()
    locs = _locations(items)
    fast = open_meteo.fast_entries(body, locs, at)
    if fast is not None:
        assert _same(fast, _slow(body, locs, at))
