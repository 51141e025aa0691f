"""Answers are read by orjson where it reads them as the json module does (issue 20), and by
the json module otherwise: the same values, the same refusals, whatever the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.errors import InvalidPayloadError
from feeds.sources.common import load_json

values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=5), kids, max_size=4)),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are not the same answer)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b) or (a != a and b != b)  # NaN is NaN


@settings(max_examples=300, deadline=None, derandomize=True)
@given(values)
def test_the_same_values_as_the_json_module(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert same(load_json(body), json.loads(body))


@pytest.mark.parametrize("body", [
    b"-9223372036854775809", b"18446744073709551616", b'{"weather_code": 123456789012345678901234567890}',
    b'{"t": 1e400}', b'{"t": NaN}', b'[1, 2.0, "x", null]',
])
def test_ints_past_64_bits_stay_ints(body: bytes) -> None:
    assert same(load_json(body), json.loads(body))


@pytest.mark.parametrize("body", [b"", b"  ", b"{", b"\xff\xfe{}", b"[" * 5000, b"1" * 5000])
def test_the_same_refusals(body: bytes) -> None:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(InvalidPayloadError):
            load_json(body)
    else:
        assert same(load_json(body), json.loads(body))
