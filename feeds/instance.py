"""One process at a time per cache: an exclusive ``flock`` on ``<cache_dir>/daemon.lock``.

``run`` holds the lock for its whole life and ``fetch`` for one round: a second ``run``, or
a ``fetch`` while the daemon runs, would double the requests to the upstreams and race the
daemon's politeness and health records.  Either exits 75 (EX_TEMPFAIL) with one sentence
naming the holder.  The kernel drops an ``flock`` when its holder dies, however it dies, so a
killed daemon never leaves a stale lock behind.

The lock file also carries who holds it and, for the daemon, a heartbeat written from
inside its event loop: ``status`` and ``check`` read it to say whether the daemon runs and
when it was last alive, without taking the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["EX_TEMPFAIL", "AlreadyRunning", "DaemonState", "InstanceLock", "LOCK_NAME", "daemon_state"]

EX_TEMPFAIL = 75
LOCK_NAME = "daemon.lock"
#: Fixed size of the lock file's record: rewritten in place, never truncated under a reader.
RECORD_SIZE = 512
#: A starting daemon may meet a ``status`` reading the lock for an instant: try for this long.
ACQUIRE_PATIENCE = 1.0


class AlreadyRunning(Exception):
    """Another process holds the cache; the message is one sentence for the admin."""


@dataclass(frozen=True)
class DaemonState:
    """What the lock file says: ``running`` is None when it could not be told."""

    running: bool | None
    command: str | None = None
    pid: int | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    config: str | None = None
    problem: str | None = None

    def describe(self, now: datetime) -> str:
        """``daemon running (pid 12, last heartbeat 5s ago)`` and the like."""
        beat = ""
        if self.heartbeat_at is not None:
            beat = f"last heartbeat {_ago(now, self.heartbeat_at)}"
        if self.running is None:
            return f"daemon state unknown ({self.problem})"
        if self.running:
            who = "daemon running" if self.command == "run" else f"a {self.command or 'portal-feeds'} command running"
            return f"{who} (pid {self.pid}{', ' + beat if beat else ''})"
        return "daemon not running" + (f" ({beat})" if beat else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "command": self.command,
            "pid": self.pid,
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "config": self.config,
            "problem": self.problem,
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds")


def _ago(now: datetime, then: datetime) -> str:
    s = int((now - then).total_seconds())
    if s < 0:
        return "just now"
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    if s < 172800:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


class InstanceLock:
    """The exclusive lock of one cache folder, held by ``run`` or ``fetch``."""

    def __init__(self, cache_dir: Path, command: str, config: Path | None) -> None:
        self.path = cache_dir / LOCK_NAME
        self.command = command
        self.config = str(config) if config else "built-in defaults"
        self.fd: int | None = None
        self.started_at = datetime.now(UTC)

    def acquire(self, patience: float = ACQUIRE_PATIENCE) -> InstanceLock:
        """Take the lock or raise ``AlreadyRunning``; creates the cache folder if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        end = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if time.monotonic() >= end:
                    holder = _read_record(fd)
                    os.close(fd)
                    raise AlreadyRunning(_holder_sentence(self.path.parent, holder)) from None
                time.sleep(0.05)
        self.fd = fd
        self.beat()
        return self

    def beat(self, now: datetime | None = None) -> None:
        """Write who holds the lock and a heartbeat (in place, fixed size)."""
        if self.fd is None:
            return
        record = {
            "command": self.command,
            "pid": os.getpid(),
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(now or datetime.now(UTC)),
            "config": self.config,
        }
        data = json.dumps(record).encode()[: RECORD_SIZE - 1].ljust(RECORD_SIZE - 1) + b"\n"
        # A full disk must not stop the daemon: status then shows an old heartbeat.
        with contextlib.suppress(OSError):
            os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Drop the lock (the kernel would at exit anyway)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_record(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, RECORD_SIZE, 0)
        doc = json.loads(raw.decode("utf-8", "replace").strip() or "{}")
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _holder_sentence(cache_dir: Path, holder: dict[str, Any]) -> str:
    pid = holder.get("pid")
    who = "the daemon" if holder.get("command") == "run" else f"another portal-feeds {holder.get('command') or 'process'}"
    return (
        f"{who}{f' (pid {pid})' if pid else ''} is using the cache {cache_dir}: "
        "only one process may fetch for a cache at a time"
    )


def _dt(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def daemon_state(cache_dir: Path) -> DaemonState:
    """Whether a process holds the cache's lock, and what its record says; takes no lock."""
    path = cache_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return DaemonState(False)
    except OSError as exc:
        return DaemonState(None, problem=f"cannot read {path}: {exc.strerror}")
    try:
        record = _read_record(fd)
        running = _held(fd)
    finally:
        os.close(fd)
    pid = record.get("pid")
    return DaemonState(
        running,
        command=record.get("command") if isinstance(record.get("command"), str) else None,
        pid=pid if isinstance(pid, int) else None,
        started_at=_dt(record.get("started_at")),
        heartbeat_at=_dt(record.get("heartbeat_at")),
        config=record.get("config") if isinstance(record.get("config"), str) else None,
    )


def _held(fd: int) -> bool:
    """Whether another process holds the lock: probe with a shared lock, released at once.

    A daemon starting at this very instant retries for ``ACQUIRE_PATIENCE``, so the probe
    never makes it give up.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
