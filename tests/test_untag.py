"""Stored values are untagged where their tags are, not everywhere (issue 20): a weather feed's
good data has three tags at its top and 3,000 locations below them; untagging every object
took ~100 ms per read.  The result must be what applying the json module's ``object_hook``
(``feeds.store._hook``) to every object, innermost first, gives: that reference is here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.store import GoodData, _hook, decode_value, encode_value


def reference(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), object_hook=_hook)


_leaf = (
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=6)
    | st.sampled_from(["$", "$5", '"$x', "\\u0024", "a$"])
    | st.floats(allow_nan=False, allow_infinity=False) | st.binary(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | st.datetimes(timezones=st.just(UTC))
)
_keys = st.text(max_size=5) | st.sampled_from(["$", "$$", "$x", "$datetime", "$decimal", "$GoodData", "id"])
_values = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=14
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_values)
def test_untagged_as_the_object_hook_would(value: object) -> None:
    data = encode_value(value)
    assert decode_value(data) == reference(data) == value


def test_weather_good_data_and_forged_escapes() -> None:
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    locs = [{"id": f"l{i}", "fetched_at": "2026-12-06T19:00:00+07:00", "current": {"t": 1.5}, "daily": [{"d": i}]}
            for i in range(200)]
    good = GoodData({"locations": locs}, at, None, "Open-Meteo", "https://x")
    data = encode_value(good)
    assert data.count(b'"$') == 2
    assert decode_value(data) == reference(data) == good
    # A key spelling its "$" as an escape (never written by us): still untagged like the hook.
    forged = b'{"a":[{"b":{"\\u0024datetime":"2026-12-06T12:00:00+00:00"}}],"c":{"$decimal":"1.5"}}'
    assert decode_value(forged) == reference(forged) == {"a": [{"b": at}], "c": Decimal("1.5")}


def test_a_tag_over_a_value_of_the_wrong_shape_is_corrupt_not_a_crash() -> None:
    """A damaged or forged stored value is CorruptValue (the store heals it), never another
    exception: ``{"$GoodData": 5}`` raised AttributeError out of ``decode_value``."""
    import pytest

    from feeds.store import CorruptValue

    for forged in (b'{"$GoodData": 5}', b'{"$Health": []}', b'{"$GoodData": {"data": 1, "x": {"$decimal": "1"}}}',
                   b'[{"$GoodData": "text"}]'):
        with pytest.raises(CorruptValue):
            decode_value(forged)
