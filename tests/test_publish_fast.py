"""The fast path of snapshot serialization writes exactly the bytes of the reference encoder."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.publish import dumps

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
)
trees = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5), st.lists(kids, min_size=51, max_size=60),
        st.dictionaries(st.text(max_size=6), kids, max_size=5),
    ),
    max_leaves=120,
)

SAMPLE = Path(__file__).parent.parent / "feeds/testing/payloads/open-meteo-bangkok-2024-12-13.json"


@settings(max_examples=80, deadline=None, derandomize=True)
@given(trees)
def test_fast_path_bytes_equal_reference(doc: object) -> None:
    assert dumps(doc) == dumps(doc, fast=False)


def test_real_weather_sample_equal_and_readable() -> None:
    one = json.loads(SAMPLE.read_text(encoding="utf-8"))
    doc = {"feed": "weather", "data": {"locations": [one] * 120}, "rate": Decimal("26081.50")}
    fast = dumps(doc)
    assert fast == dumps(doc, fast=False)
    assert json.loads(fast)["data"] == doc["data"]
    text = fast.decode()
    assert text.count("\n") < 150  # one line per location, not hundreds
    assert '"rate": 26081.5' in text


#: ``publish._joined`` encodes a long list in one call with a mark between its items: values
#: equal to the mark, or holding it, anywhere in the list.
MARK = "\x00portal-feeds item\x00"
marked_scalars = st.one_of(scalars, st.just(MARK), st.sampled_from([MARK + "x", ",", '"', "\x00", "\\u0000"]))
marked_trees = st.recursive(
    marked_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(["a", MARK, ","]), kids, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(marked_trees, min_size=51, max_size=56), st.integers(min_value=0, max_value=55), st.booleans())
def test_a_long_list_holding_the_mark_is_written_exactly(items: list[object], at: int, mark_item: bool) -> None:
    if mark_item:
        items[at % len(items)] = MARK  # an item that is the mark itself
    doc = {"data": {"locations": items}}
    assert dumps(doc) == dumps(doc, fast=False)


def test_an_item_holding_the_mark_between_two_values_is_written_exactly() -> None:
    """Inside an item, the mark between two values reads as a separator: the one-call join
    must see it (one replacement too many) and let each item be encoded alone."""
    for inner in (["a", MARK, "b"], [1, MARK, 2, MARK, 3], {"k": ["x", MARK, "y"]}):
        items: list[object] = [inner] + list(range(55))
        doc = {"data": {"locations": items}}
        assert dumps(doc) == dumps(doc, fast=False)
        assert json.loads(dumps(doc))["data"]["locations"][0] == inner
