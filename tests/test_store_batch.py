"""Updates made under the store's lock are written in one transaction when it is let go
(issue 20: a request's politeness claim wrote two records, two SQLite transactions on the
event loop), and are visible to other processes before the lock is theirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feeds.store import ReadOnlyStore, open_store


def test_updates_under_the_lock_are_one_write_made_before_it_is_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    writes: list[list[str]] = []
    real = type(store)._run

    def run(self: Any, op: Any, *, write: bool) -> Any:
        if write:
            writes.append(sorted(self._pending))
        return real(self, op, write=write)

    monkeypatch.setattr(type(store), "_run", run)
    try:
        with store.lock():
            store.set("polite/a", {"n": 1})
            store.set("turns/a", {"n": 2})
            assert store.get("polite/a") == {"n": 1}  # this process reads its own updates at once
        assert writes == [["polite/a", "turns/a"]]
        other = ReadOnlyStore(tmp_path)
        assert other.get("polite/a") == {"n": 1} and other.get("turns/a") == {"n": 2}
        store.set("alone", 3)  # outside the lock: written at once, as before
        assert writes[-1] == ["alone"]
    finally:
        store.close()
