"""The store's encoding in steps (issue 20) writes exactly the bytes of one ``json.dumps``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.store import GoodData, _dumps, _plain, decode_value, encode_value, open_store

LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
TREE = st.recursive(
    LEAF, lambda c: st.lists(c, max_size=90) | st.dictionaries(st.text(), c, max_size=90), max_leaves=600
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(TREE)
def test_steps_write_the_bytes_of_one_call(value: Any) -> None:
    assert _dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _good(n: int) -> GoodData:
    at = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    locs = [{"id": f"loc-{i}", "fetched_at": at.isoformat(), "t": 21.5 + i / 10, "name": "Hà Nội"} for i in range(n)]
    return GoodData(data={"locations": locs, "rate": Decimal("26081.50")}, fetched_at=at, as_of=None,
                    source_name="Open-Meteo", source_url="https://api.open-meteo.com/v1/forecast")


def test_a_big_value_round_trips_through_the_disk_store(tmp_path: Path) -> None:
    good = _good(500)
    assert encode_value(good) == json.dumps(_plain(good), ensure_ascii=False, separators=(",", ":")).encode()
    store = open_store(tmp_path)
    store.set("good/weather", good)
    store.close()
    again = open_store(tmp_path)
    try:
        assert again.get("good/weather") == good
        assert decode_value(encode_value(good)) == good
    finally:
        again.close()


def test_big_good_data_written_here_is_not_decoded_again(tmp_path: Path, monkeypatch: Any) -> None:
    import feeds.store as store_mod

    good = _good(2000)
    store = open_store(tmp_path)
    try:
        store.set("good/weather", good)
        decoded: list[int] = []
        real = store_mod.decode_value

        def counting(data: bytes | str) -> Any:
            decoded.append(len(data))
            return real(data)

        monkeypatch.setattr(store_mod, "decode_value", counting)
        assert store.get("good/weather") == good
        assert not [n for n in decoded if n >= store_mod.MEMO_BYTES]  # the bytes we wrote: from memory
        # Another process writes other bytes under the key: those are decoded, never the memo.
        other = open_store(tmp_path)
        try:
            changed = _good(2001)
            other.set("good/weather", changed)
        finally:
            other.close()
        assert store.get("good/weather") == changed
        assert [n for n in decoded if n >= store_mod.MEMO_BYTES]
    finally:
        store.close()
