"""Per-location files under faults (issue 20): whatever filesystem call of ``write_files`` fails,
every file is whole afterwards -- its old bytes or its new ones, never a mix, never missing --
no temporary file is left, the error is raised (never swallowed into a wrong file), and the
next write puts everything right.  The calls are failed one at a time, at every position, with
the spares (rewritten in place) in play or not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import publish
from feeds.publish import write_files

CALLS = ("open", "write", "pwrite", "ftruncate", "fchmod", "replace", "rename", "link", "unlink")


class Injected(OSError):
    pass


def _content(gen: int, name: str) -> bytes:
    # Different lengths per generation: a rewrite in place that stopped midway shows.
    return (f'{{"gen": {gen}, "name": "{name}", "pad": "' + "x" * (gen * 37 % 101) + '"}\n').encode()


def _run(
    folder: Path, gen: int, names: list[str], fail_at: int | None, calls: tuple[str, ...] = CALLS
) -> tuple[int, BaseException | None]:
    """Write generation ``gen``; fail the ``fail_at``-th filesystem call (None: none) among
    ``calls`` (the ``os`` functions watched), the exchange and the flush.  Returns how many
    calls were made and what was raised."""
    count = 0
    real = {n: getattr(os, n) for n in calls}
    real_exchange, real_flush = publish._exchange, publish._flush_files

    def gate() -> None:
        nonlocal count
        count += 1
        if fail_at is not None and count == fail_at:
            raise Injected(28, "No space left on device (injected)")

    def wrap(fn: Any) -> Any:
        def inner(*a: Any, **k: Any) -> Any:
            gate()
            return fn(*a, **k)

        return inner

    patches = {n: wrap(real[n]) for n in calls}
    for n, f in patches.items():
        setattr(os, n, f)
    publish._exchange = wrap(real_exchange)  # type: ignore[assignment]
    publish._flush_files = wrap(real_flush)  # type: ignore[assignment]
    raised: BaseException | None = None
    try:
        write_files(folder, {n: _content(gen, n) for n in names})
    except Injected as exc:
        raised = exc
    finally:
        for n in calls:
            setattr(os, n, real[n])
        publish._exchange = real_exchange  # type: ignore[assignment]
        publish._flush_files = real_flush  # type: ignore[assignment]
    return count, raised


@settings(max_examples=60, deadline=None, derandomize=True)
@given(before=st.integers(0, 3), fail_at=st.integers(1, 60), quiet=st.booleans())
def test_any_failed_call_leaves_every_file_whole(
    tmp_path_factory: pytest.TempPathFactory, before: int, fail_at: int, quiet: bool
) -> None:
    folder = tmp_path_factory.mktemp("w") / "weather"
    names = ["a.json", "b.json", "c.json"]
    saved = publish.SPARE_QUIET
    publish.SPARE_QUIET = 0.0 if quiet else 3600.0
    try:
        for gen in range(1, before + 1):
            assert _run(folder, gen, names, None)[1] is None
        new = before + 1
        calls, raised = _run(folder, new, names, fail_at)
        for n in names:
            path = folder / n
            if before == 0 and not path.exists():
                continue  # a first write that failed: no file yet is a whole state too
            got = path.read_bytes()
            assert got in (_content(before, n), _content(new, n)), (n, got)
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        if fail_at > calls:
            assert raised is None  # nothing failed: everything new
            assert all((folder / n).read_bytes() == _content(new, n) for n in names)
        # The next write puts everything right, whatever the failure left behind.
        assert _run(folder, new + 1, names, None)[1] is None
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == {n: _content(new + 1, n) for n in names}
    finally:
        publish.SPARE_QUIET = saved
