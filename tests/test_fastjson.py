"""feeds.fastjson.reads_exactly: orjson is used only where no run of 19 digits could be an int
past 64 bits (orjson reads one as a float, silently).  Its fast scan (a byte translation, issue
20) must find exactly what the regular expression ``[0-9]{19}`` finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.fastjson import reads_exactly

_REGEX = re.compile(rb"[0-9]{19}")

_pieces = st.lists(
    st.one_of(
        st.binary(max_size=8),
        st.text(alphabet="0123456789", min_size=1, max_size=25).map(str.encode),
        st.sampled_from([b"-", b".", b"e", b"\xd9", b"\x00", b'"', b"\xef\xbc\x91"]),  # "１" is no ASCII digit
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_pieces)
def test_the_scan_finds_what_the_regex_finds(data: bytes) -> None:
    assert reads_exactly(data) is (_REGEX.search(data) is None)


def test_examples() -> None:
    assert reads_exactly(b'{"a": 123456789012345678}')  # 18 digits: fits
    assert not reads_exactly(b'{"a": 1234567890123456789}')  # 19
    assert not reads_exactly('{"a": "x", "b": 99999999999999999999}')
    assert reads_exactly(b"12345678901234567890"[:18] + b"." + b"1" * 18)
    assert not reads_exactly(b"\xff" + b"7" * 19 + b"\xff")


def test_finite_skips_only_the_dicts_known_finite() -> None:
    from feeds.fastjson import finite, known_finite

    checked = {"t": 1.5}
    unchecked = {"t": float("nan")}
    doc = {"locations": [checked, unchecked]}
    assert not finite(doc)
    with known_finite({id(checked)}):
        assert not finite(doc)  # the NaN is in a dict nobody vouched for
        assert finite({"locations": [checked, {"t": 2.0}]})
    with known_finite({id(unchecked)}):
        assert finite(doc)  # what a caller vouches for is not looked at again
    assert not finite(doc)  # the block ended
