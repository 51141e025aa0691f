"""The parsing thread is nicer than the event loop's (issue 20): when an answer comes in, the
kernel runs the loop (the next request of the batch goes out) before the parse under way."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from feeds import pipeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_big_bodies_are_parsed_in_a_nicer_thread() -> None:
    main = _nice()
    tid, nice = pipeline._parser().submit(lambda: (threading.get_native_id(), _nice())).result(10)
    assert tid != threading.get_native_id()
    assert nice == min(19, main + pipeline.PARSER_NICE)
    assert _nice() == main  # the loop's own thread keeps its priority


def test_a_thread_already_at_the_bottom_stays_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never an error: at nice 19 already (a unit's ``Nice=19``) the thread stays at 19."""
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "getpriority", lambda which, who: 19)
    monkeypatch.setattr(os, "setpriority", lambda which, who, value: seen.append((who, value)))
    pipeline._lower_priority()
    assert seen == [(threading.get_native_id(), 19)]


def test_a_refused_renice_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    pipeline._lower_priority()  # no exception: the thread keeps the process's priority
