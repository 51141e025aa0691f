"""The fast path of the whole-snapshot schema check (``bounds.document_ok``, issue 20) never
vouches for a document the shipped schema refuses: random damage to real-shaped rates and
weather snapshots, each judged by jsonschema too."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import bounds
from tests.test_publish_total import _GOOD_LOCATION, _ODD, _paths

_AT = "2026-11-24T15:00:00+07:00"
_TOP = {
    "schema_version": 1, "feed": "rates", "kind": "exchange_rates", "status": "fresh",
    "generated_at": _AT, "fetched_at": _AT, "as_of": _AT, "stale_since": None,
    "upstream_stale_since": None, "next_update_at": _AT, "expires_at": _AT,
    "source": {"name": "Vietcombank", "url": "https://portal.vietcombank.com.vn/x"},
}
RATES: dict[str, Any] = {
    **_TOP,
    "data": {"base": "VND", "rates": [
        {"code": "USD", "name": "US DOLLAR", "name_vi": "Đô la Mỹ", "buy_cash": Decimal("25850"),
         "buy_transfer": Decimal("25880.5"), "sell": Decimal("26260"),
         "previous": {"as_of": _AT, "buy_cash": Decimal("25800"), "buy_transfer": None, "sell": Decimal("26200")},
         "change": {"sell": Decimal("60"), "sell_pct": Decimal("0.23"), "buy_cash": None}},
        {"code": "JPY", "name": "YEN", "name_vi": "Yên Nhật", "buy_cash": None, "buy_transfer": Decimal("165.2"),
         "sell": Decimal("175.11")},
    ]},
    "widget": {"title": None, "heading": 2, "currencies": ["USD"], "change": True, "columns": ["sell"]},
}
WEATHER: dict[str, Any] = {
    **_TOP, "feed": "weather", "kind": "weather",
    "source": {"name": "Open-Meteo", "url": "https://open-meteo.com/"},
    "data": {"locations": [copy.deepcopy(_GOOD_LOCATION), {**copy.deepcopy(_GOOD_LOCATION), "id": "hue"}]},
    "widget": {"title": "Thời tiết", "heading": 3, "locations": ["hn"], "columns": ["condition", "temperature"]},
}
_MORE_ODD = [*_ODD, "VND", "USD", "usd", "fresh", "stale", "unavailable", "expired", "weather", "exchange_rates",
             "ftp://x", "http://x", 1, 2, 4, 5, -1, 0.5, Decimal("0"), Decimal("-1"), Decimal("Infinity"),
             float("inf"), 10**20, "a" * 201, ["USD"] * 3, ["sell"] * 11]


def _valid(doc: Any) -> bool:
    try:
        return next(iter(bounds.snapshot_validator().iter_errors(doc)), None) is None
    except ArithmeticError:  # jsonschema compares Decimal("NaN") and raises: not valid
        return False


def test_the_real_shapes_take_the_fast_path() -> None:
    for doc in (RATES, WEATHER):
        assert bounds.document_ok(doc) and _valid(doc)
    unavailable = {**RATES, "status": "unavailable", "fetched_at": None, "data": None, "source": None,
                   "stale_since": _AT}
    assert bounds.document_ok(unavailable) and _valid(unavailable)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.data())
def test_the_fast_path_never_vouches_for_an_invalid_document(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from([RATES, WEATHER])))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(_MORE_ODD)))  # never the shared object
    if bounds.document_ok(doc):
        assert _valid(doc), doc
