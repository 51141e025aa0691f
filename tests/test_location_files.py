"""Per-location files made from the shared text (issue 20): ``portal.location_files`` gives, byte
for byte, ``publish.dumps`` of each of ``portal.location_documents``."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.portal import location_documents, location_files
from feeds.publish import dumps


def _loc(i: int, **over: Any) -> dict[str, Any]:
    loc = {
        "id": f"p{i}", "name": "Thành phố Huế", "short_name": "Huế", "lat": 16.46, "lon": 107.59,
        "fetched_at": f"2026-11-24T14:0{i % 10}:00+07:00",
        "current": {"time": "2026-11-24T14:00:00+07:00", "temperature_c": 24.1, "apparent_temperature_c": 25,
                    "humidity_pct": 71, "wind_speed_kmh": None, "wind_direction_deg": 120,
                    "precipitation_mm": 0.0, "weather_code": 61, "condition": "rain", "condition_vi": "Mưa"},
        "daily": [{"date": "2026-11-24", "temperature_min_c": 20.5, "temperature_max_c": 27.0, "precipitation_mm": 1.2,
                   "weather_code": 3, "condition": "overcast", "condition_vi": "Nhiều mây"}],
    }
    loc.update(over)
    return loc


DOC: dict[str, Any] = {
    "schema_version": 1, "feed": "weather", "kind": "weather", "status": "fresh",
    "generated_at": "2026-11-24T15:00:00+07:00", "fetched_at": "2026-11-24T14:00:00+07:00",
    "as_of": "2026-11-24T14:00:00+07:00", "stale_since": None, "next_update_at": "2026-11-24T15:15:00+07:00",
    "source": {"name": "Open-Meteo", "url": "https://api.open-meteo.com/v1/forecast"},
    "data": {"locations": [_loc(i) for i in range(4)]},
    "widget": {"title": "Thời tiết các vùng", "locations": ["p0", "p1"], "max_age_s": 3600},
}


def _reference(doc: dict[str, Any], ids: list[str]) -> dict[str, bytes]:
    return {f"{i}.json": dumps(d) for i, d in location_documents(doc, ids).items()}


def test_the_files_are_the_documents_bytes() -> None:
    ids = ["p0", "p1", "p2", "p3", "missing"]
    assert location_files(DOC, ids) == _reference(DOC, ids)


def test_documents_orjson_cannot_write_as_dumps_does_are_encoded_whole() -> None:
    doc = copy.deepcopy(DOC)
    doc["data"]["locations"][1]["lat"] = Decimal("16.4600")  # the Python path of dumps
    doc["data"]["locations"][2]["daily"] = [doc["data"]["locations"][2]["daily"][0]] * 60  # a long list
    doc["data"]["locations"][3]["current"]["temperature_c"] = 2**70  # past 64 bits
    ids = ["p0", "p1", "p2", "p3"]
    assert location_files(doc, ids) == _reference(doc, ids)
    doc["widget"] = {"title": "x", "ranks": list(range(60))}  # the shared text itself
    assert location_files(doc, ids) == _reference(doc, ids)


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                   text, st.sampled_from(["\n", "\x1a", '"', "\\", "\u2028", " portal-feeds data "]))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
                     max_leaves=12)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    top=st.dictionaries(text, value, max_size=4),
    own=st.lists(st.tuples(st.one_of(text, st.none()), value), min_size=1, max_size=3),
    widget=st.one_of(st.none(), st.dictionaries(text, value, max_size=3)),
    order=st.booleans(),
)
def test_any_document_gives_the_same_bytes(top: dict[str, Any], own: list[tuple[Any, Any]], widget: Any, order: bool) -> None:
    doc: dict[str, Any] = {"status": "fresh", "generated_at": "2026-11-24T15:00:00+07:00", "stale_since": None}
    doc.update(top)
    if order:  # data before fetched_at
        doc["data"] = {"locations": []}
        doc["fetched_at"] = "2026-11-24T14:00:00+07:00"
    else:
        doc["fetched_at"] = "2026-11-24T14:00:00+07:00"
        doc["data"] = {"locations": []}
    locs = [_loc(i, fetched_at=at, current=v) for i, (at, v) in enumerate(own)]
    doc["data"]["locations"] = locs
    if widget is not None:
        doc["widget"] = widget
    ids = [loc["id"] for loc in locs] + ["gone"]
    assert location_files(doc, ids) == _reference(doc, ids)
