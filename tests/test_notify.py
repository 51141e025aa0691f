"""The notify protocol over a datagram socket the test owns."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from feeds.notify import Notifier


def _sock(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "n.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(1)
    return s, path


def test_datagrams_and_vietnamese_status(tmp_path: Path) -> None:
    s, path = _sock(tmp_path)
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.ready() and s.recv(4096) == b"READY=1"
    assert n.status("2 nguồn: 1 mới, 1 cũ (tỷ giá: dns)\nsecond line")
    assert s.recv(4096).decode("utf-8") == "STATUS=2 nguồn: 1 mới, 1 cũ (tỷ giá: dns) second line"
    assert n.watchdog() and s.recv(4096) == b"WATCHDOG=1"
    assert n.stopping() and s.recv(4096) == b"STOPPING=1"
    assert n.reloading()
    lines = s.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    s.close()


def test_abstract_socket() -> None:
    name = f"portal-feeds-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(1)
    assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).ready()
    assert s.recv(100) == b"READY=1"
    s.close()


def test_watchdog_interval() -> None:
    assert Notifier.from_env({"WATCHDOG_USEC": "60000000"}).watchdog_interval() == 30.0
    assert Notifier.from_env({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 30.0
    assert Notifier.from_env({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier.from_env({}).watchdog_interval() is None


def test_no_socket_is_a_noop_and_errors_never_raise(tmp_path: Path) -> None:
    assert Notifier.from_env({}).ready() is False
    assert Notifier(str(tmp_path / "missing.sock")).ready() is False


def test_full_socket_never_blocks(tmp_path: Path) -> None:
    """A receiver that never reads must not freeze the sender (the daemon's event loop)."""
    import time

    s, path = _sock(tmp_path)
    n = Notifier(path)
    t0 = time.monotonic()
    results = [n.status("x" * 1000) for _ in range(5000)]
    assert time.monotonic() - t0 < 5
    assert results[0] is True and results[-1] is False  # the queue filled; later ones dropped
    s.close()
