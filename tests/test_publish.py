"""Snapshot serialization and atomic writes."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.publish import build_snapshot, dumps, write_atomic, write_snapshot

VN = timezone(timedelta(hours=7))


def test_decimals_are_exact_and_vietnamese_unescaped() -> None:
    doc = {"a": Decimal("26081.50"), "b": Decimal("25850"), "c": Decimal("0.000001"), "n": "Đô la Mỹ"}
    text = dumps(doc).decode("utf-8")
    assert '"a": 26081.5' in text
    assert '"b": 25850' in text
    assert '"c": 0.000001' in text
    assert "Đô la Mỹ" in text
    back = json.loads(text, parse_float=Decimal)
    assert back["a"] == Decimal("26081.5")


def test_non_finite_refused() -> None:
    with pytest.raises(ValueError):
        dumps({"x": Decimal("NaN")})
    with pytest.raises(ValueError):
        dumps({"x": float("inf")})


def test_key_order_is_stable() -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    snap = build_snapshot(
        feed="f", kind="exchange_rates", status="unavailable", generated_at=now, fetched_at=None,
        as_of=None, stale_since=now, next_update_at=now.astimezone(VN), source_name=None,
        source_url=None, data=None,
    )
    assert list(snap) == [
        "schema_version", "feed", "kind", "status", "generated_at", "fetched_at", "as_of",
        "stale_since", "upstream_stale_since", "next_update_at", "expires_at", "source", "data", "widget",
    ]
    assert snap["next_update_at"] == "2026-11-24T15:00:00+07:00"
    assert dumps(snap) == dumps(json.loads(dumps(snap)))


def test_write_atomic_mode_and_no_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "snap" / "x.json"
    write_atomic(path, b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.json"
    write_atomic(path, b'{"old": true}\n')

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(path, b'{"new": true}\n')
    assert path.read_bytes() == b'{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # temp file cleaned up


def test_write_snapshot_names_file_after_feed(tmp_path: Path) -> None:
    p = write_snapshot(tmp_path, {"feed": "weather", "x": 1})
    assert p == tmp_path / "weather.json"
