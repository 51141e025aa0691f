"""The store's fast encoder (orjson, issue 20) writes what the exact one reads back the same:
tags, ``$`` keys, big ints, Decimals, datetimes, bytes and dataclasses included."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import store
from feeds.store import GoodData, Health, decode_value, encode_value


def exact(value: object) -> bytes:
    return store._dumps(store._plain(value)).encode("utf-8")


def exact_read(data: bytes) -> object:
    return json.loads(data.decode("utf-8"), object_hook=store._hook)


keys = st.one_of(st.text(max_size=6), st.sampled_from(["$datetime", "$decimal", "$$x", "$", "$GoodData", "a$"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),  # infinities kept exactly (the exact path)
    st.text(max_size=8),
    st.sampled_from(["$datetime", "$x", 'a"$b', "x$"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=7))])),
    st.binary(max_size=8),
)
trees = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(keys, kids, max_size=4)),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(trees)
def test_fast_encoding_reads_back_as_the_exact_one(value: object) -> None:
    assert decode_value(encode_value(value)) == exact_read(exact(value))
    # The fast reader reads what the exact writer wrote as the json module's reader does.
    assert decode_value(exact(value)) == exact_read(exact(value))


def test_weather_good_data_takes_the_fast_path_and_round_trips() -> None:
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    locs = [
        {"id": f"loc-{i}", "name": "Hà Nội", "lat": 21.03, "lon": 105.85, "fetched_at": at.isoformat(),
         "current": {"time": at.isoformat(), "temperature_c": 1e-05 * i, "weather_code": 3},
         "daily": [{"date": "2026-12-06", "temperature_min_c": -0.0, "temperature_max_c": 25.5}]}
        for i in range(200)
    ]
    good = GoodData(data={"locations": locs}, fetched_at=at, as_of=at, source_name="Open-Meteo", source_url="u")
    assert store._fast(good) is not None
    assert decode_value(encode_value(good)) == good
    rates = GoodData(data={"base": "VND", "rates": [{"code": "USD", "sell": Decimal("26081.50")}]},
                     fetched_at=at, as_of=None, source_name="Vietcombank", source_url="u")
    back = decode_value(encode_value(rates))
    assert back == rates and str(back.data["rates"][0]["sell"]) == "26081.50"  # exact decimals
    h = Health(feed="w", last_attempt_at=at, attempts={"ok": 2})
    assert decode_value(encode_value(h)) == h


def test_values_the_fast_path_cannot_vouch_for_take_the_exact_one() -> None:
    for value in ({"$datetime": "not a tag"}, {"k": "$5"}, {"big": 2**80}, ["a\"$b"], {"t": [1.0, float("inf")]}):
        assert store._fast(value) is None
        assert decode_value(encode_value(value)) == value
