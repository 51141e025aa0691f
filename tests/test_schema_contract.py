"""The shipped snapshot schema is open (fields may be added within version 1); ours is held strict."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from feeds.publish import build_snapshot, dumps
from tests.conftest import shipped_schema, strict_schema

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _rates_snapshot() -> dict[str, Any]:
    import json

    snap = build_snapshot(
        feed="exchange-rates", kind="exchange_rates", status="fresh", generated_at=NOW,
        fetched_at=NOW, as_of=NOW, stale_since=None, next_update_at=NOW,
        source_name="Vietcombank", source_url="https://portal.vietcombank.com.vn/x",
        data={"base": "VND", "rates": [{"code": "USD", "name": "US DOLLAR", "name_vi": "Đô la Mỹ",
                                        "buy_cash": Decimal("25850"), "buy_transfer": Decimal("25880"),
                                        "sell": Decimal("26240")}]},
    )
    doc: dict[str, Any] = json.loads(dumps(snap))
    return doc


def _weather_snapshot() -> dict[str, Any]:
    import json

    day = {"date": "2026-11-24", "temperature_min_c": 20, "temperature_max_c": 28, "precipitation_mm": 0,
           "weather_code": 1, "condition": "mainly_clear", "condition_vi": "Ít mây"}
    current = {"time": "2026-11-24T08:00:00+00:00", "temperature_c": 25, "apparent_temperature_c": 26,
               "humidity_pct": 80, "wind_speed_kmh": 5, "wind_direction_deg": 90, "precipitation_mm": 0,
               "weather_code": 1, "condition": "mainly_clear", "condition_vi": "Ít mây"}
    loc = {"id": "ha-noi", "name": "Hà Nội", "lat": 21.0, "lon": 105.8,
           "fetched_at": "2026-11-24T08:00:00+00:00", "current": current, "daily": [day]}
    snap = build_snapshot(
        feed="weather", kind="weather", status="stale", generated_at=NOW, fetched_at=NOW, as_of=None,
        stale_since=NOW, next_update_at=None, source_name="Open-Meteo",
        source_url="https://api.open-meteo.com/v1/forecast", data={"locations": [loc]},
    )
    doc: dict[str, Any] = json.loads(dumps(snap))
    return doc


def _objects(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of every JSON object inside ``doc`` (the root included)."""
    if isinstance(doc, dict):
        yield path
        for k, v in doc.items():
            yield from _objects(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _objects(v, (*path, i))


def _with_extra(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for k in path:
        target = target[k]
    target["added_in_a_later_minor_version"] = {"any": ["shape"]}
    return out


@pytest.mark.parametrize("make", [_rates_snapshot, _weather_snapshot], ids=["rates", "weather"])
def test_a_field_added_anywhere_keeps_the_shipped_schema_valid(make: Any) -> None:
    doc = make()
    open_v = jsonschema.Draft202012Validator(shipped_schema())
    strict_v = jsonschema.Draft202012Validator(strict_schema(shipped_schema()))
    assert not list(open_v.iter_errors(doc)) and not list(strict_v.iter_errors(doc))
    paths = list(_objects(doc))
    assert len(paths) >= 4  # root, source, data and the rows below it
    for path in paths:
        extended = _with_extra(doc, path)
        assert not list(open_v.iter_errors(extended)), path  # a consumer does not break
        assert list(strict_v.iter_errors(extended)), path  # our own output stays checked


def test_the_shipped_schema_has_no_closed_object() -> None:
    text = dumps(shipped_schema()).decode()
    assert '"additionalProperties": false' not in text


def test_the_strict_variant_leaves_conditional_branches_open() -> None:
    strict = strict_schema(shipped_schema())
    for branch in strict["allOf"]:
        assert "additionalProperties" not in branch["then"] and "additionalProperties" not in branch["else"]


@pytest.mark.parametrize("name", ["rates\n", "rates\nx", "-rates", "a" * 65, "ti-giá"])
def test_feed_name_pattern_is_anchored_at_the_very_end(name: str) -> None:
    doc = _rates_snapshot()
    doc["feed"] = name
    assert list(jsonschema.Draft202012Validator(shipped_schema()).iter_errors(doc))
