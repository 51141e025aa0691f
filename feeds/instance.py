"""One process at a time per cache: an exclusive ``flock`` on a lock file outside the cache.

``run`` holds the lock for its whole life and ``fetch`` for one round: a second ``run``, or
a ``fetch`` while the daemon runs, would double the requests to the upstreams and race the
daemon's politeness and health records.  Either exits 75 (EX_TEMPFAIL) with one sentence
naming the holder.  The kernel drops an ``flock`` when its holder dies, however it dies, so a
killed daemon never leaves a stale lock behind.

**Where the lock lives** (issue 16): not in the cache folder, since ``rm -rf`` of the cache
would remove it and let a second daemon run beside the first.  It is
``portal-feeds-<key>.lock``, ``<key>`` the first 16 hex digits of the SHA-256 of the cache
folder's resolved path, in the first usable folder of:

1. ``$RUNTIME_DIRECTORY`` (systemd's ``RuntimeDirectory=portal-feeds``: ``/run/portal-feeds``);
2. ``/run/portal-feeds`` when it exists (so an admin's ``fetch`` or ``status`` outside the
   unit, as root or as ``portal-feeds``, meets the daemon's lock);
3. ``$XDG_RUNTIME_DIR`` (a login session's ``/run/user/<uid>``);
4. ``/tmp/portal-feeds-<uid>`` (created 0755, used only if it is ours and not a symlink).

Whoever takes the lock also looks at every other place (each folder above, every
``/tmp/portal-feeds-<uid>`` and ``/run/user/<uid>``, and the former
``<cache_dir>/daemon.lock`` of older versions): a
live holder anywhere means ``AlreadyRunning``.  Processes started with different
environments (a unit's ``RUNTIME_DIRECTORY``, a root shell's ``XDG_RUNTIME_DIR``) therefore
still exclude each other.  The former lock in the cache folder is also taken when it can be
(best effort): it keeps excluding an older version and a unit without ``RuntimeDirectory=``.

The lock file also carries who holds it and, for the daemon, a heartbeat written from
inside its event loop (a fixed-size JSON record rewritten in place): ``status`` and
``check`` find it in the same places (``daemon_state``) to say whether the daemon runs and
when it was last alive, without taking the lock.  The daemon also writes there the local
faults it sees at each heartbeat (``notes``): the runtime folder stays writable when the
cache or the snapshot folder is not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feeds.clock import AHEAD_SLACK

__all__ = [
    "EX_TEMPFAIL",
    "LEGACY_LOCK_NAME",
    "LOCK_NAME",
    "SYSTEM_RUNTIME_DIR",
    "AlreadyRunning",
    "DaemonState",
    "InstanceLock",
    "LockUnavailable",
    "daemon_state",
    "lock_dirs",
    "lock_name",
]

EX_TEMPFAIL = 75
#: The lock of versions before issue 16, inside the cache folder (still looked at and taken).
LEGACY_LOCK_NAME = "daemon.lock"
#: Kept for callers of the former name.
LOCK_NAME = LEGACY_LOCK_NAME
#: systemd's ``RuntimeDirectory=portal-feeds`` (systemd/portal-feeds.service).
SYSTEM_RUNTIME_DIR = Path("/run/portal-feeds")
#: The last resort, one folder per user: ``/tmp/portal-feeds-<uid>``.
TMP_PREFIX = "portal-feeds-"
TMP_ROOT = Path("/tmp")
#: Where login sessions' ``XDG_RUNTIME_DIR`` are (``/run/user/<uid>``): looked at for every uid.
XDG_ROOT = Path("/run/user")
#: Fixed size of the lock file's record: rewritten in place, never truncated under a reader.
RECORD_SIZE = 512
#: A starting daemon may meet a ``status`` reading the lock for an instant: try for this long.
ACQUIRE_PATIENCE = 1.0


def lock_name(cache_dir: Path) -> str:
    """``portal-feeds-<sha256(resolved cache path)[:16]>.lock``."""
    key = hashlib.sha256(str(Path(cache_dir).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"portal-feeds-{key}.lock"


def _own_tmp() -> Path:
    return TMP_ROOT / f"{TMP_PREFIX}{os.geteuid()}"


def lock_dirs(environ: Any = None) -> list[Path]:
    """The folders where this process would take the lock, in order (see the module docstring)."""
    env = os.environ if environ is None else environ
    dirs: list[Path] = []
    rd = env.get("RUNTIME_DIRECTORY", "")
    if rd:
        dirs.append(Path(rd.split(":")[0]))
    if SYSTEM_RUNTIME_DIR.is_dir():
        dirs.append(SYSTEM_RUNTIME_DIR)
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and Path(xdg).is_absolute():
        dirs.append(Path(xdg))
    dirs.append(_own_tmp())
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _all_places(cache_dir: Path, environ: Any = None) -> list[Path]:
    """Every lock file of this cache that may exist: the folders above, every user's /tmp
    folder, and the legacy file in the cache folder."""
    name = lock_name(cache_dir)
    places = [d / name for d in lock_dirs(environ)]
    with contextlib.suppress(OSError):
        for entry in sorted(TMP_ROOT.glob(f"{TMP_PREFIX}[0-9]*")):
            p = entry / name
            if entry.name[len(TMP_PREFIX):].isdigit() and p not in places:
                places.append(p)
    with contextlib.suppress(OSError):
        # Another user's session (the daemon started by hand as portal-feeds, status as root).
        for entry in sorted(XDG_ROOT.glob("[0-9]*")):
            p = entry / name
            if entry.name.isdigit() and p not in places:
                places.append(p)
    places.append(Path(cache_dir) / LEGACY_LOCK_NAME)
    return places


class AlreadyRunning(Exception):
    """Another process holds the cache; the message is one sentence for the admin."""


class LockUnavailable(Exception):
    """No folder could hold the lock file (a local fault: retried, never a config error)."""


#: A heartbeat (written every 10 s by the daemon) older than this means a wedged daemon.
HEARTBEAT_LATE = 90.0
#: A time this far ahead of now is "in the future" (the clock was stepped back since).
FUTURE_SKEW = AHEAD_SLACK.total_seconds()


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
    #: Where the record was read (None when no lock file was found).
    path: Path | None = None
    #: Local faults the running daemon itself sees (``paths.cache_dir:read_only``, ...).
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def daemon(self) -> bool:
        """True when the holder is the daemon (``run``), not a ``fetch``."""
        return bool(self.running) and self.command == "run"

    def heartbeat_problem(self, now: datetime) -> str | None:
        """Why the running daemon's heartbeat cannot be trusted, or None."""
        if not self.daemon or self.heartbeat_at is None:
            return None
        age = (now - self.heartbeat_at).total_seconds()
        if age < -FUTURE_SKEW:
            return "last heartbeat in the future (clock stepped?)"
        if age > HEARTBEAT_LATE:
            return f"last heartbeat {_ago(now, self.heartbeat_at)}: wedged"
        return None

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
            "lock": None if self.path is None else str(self.path),
            "local_faults": list(self.notes),
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds")


def _ago(now: datetime, then: datetime) -> str:
    """``5s ago``; never a negative age: a time ahead of now says so."""
    s = int((now - then).total_seconds())
    if s < -FUTURE_SKEW:
        return "in the future (clock stepped?)"
    s = max(s, 0)
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    if s < 172800:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _usable_dir(folder: Path) -> bool:
    """Whether ``folder`` may hold the lock: a folder; our /tmp one must be ours, no symlink."""
    try:
        if folder == _own_tmp():
            try:
                os.mkdir(folder, 0o755)
                os.chmod(folder, 0o755)  # whatever the umask: status as another user reads it
            except FileExistsError:
                pass
            st = os.lstat(folder)
            return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
        return folder.is_dir()
    except OSError:
        return False


def _open_lock(folder: Path, name: str) -> int:
    """Open (or create, 0644, owned like its folder) the lock file; raises OSError."""
    path = folder / name
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except PermissionError:
        # Another user's file (root's fetch, say): flock needs no write access.
        return os.open(path, os.O_RDONLY | flags)
    with contextlib.suppress(OSError):
        st, dst = os.fstat(fd), os.stat(folder)
        if stat.S_IMODE(st.st_mode) != 0o644 and st.st_uid == os.geteuid():
            os.fchmod(fd, 0o644)  # the unit's UMask=0077 would hide it from status
        if os.geteuid() == 0 and st.st_uid == 0 and dst.st_uid != 0:
            # root's fetch in /run/portal-feeds: the daemon's user must still open it.
            os.fchown(fd, dst.st_uid, dst.st_gid)
    return fd


def _flock(fd: int, patience: float) -> bool:
    """Take an exclusive flock, polling for ``patience`` seconds; False if someone holds it."""
    end = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)


class InstanceLock:
    """The exclusive lock of one cache folder, held by ``run`` or ``fetch``."""

    def __init__(self, cache_dir: Path, command: str, config: Path | None, *, environ: Any = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.name = lock_name(self.cache_dir)
        #: Where the lock was taken (after ``acquire``).
        self.path: Path | None = None
        self.command = command
        self.config = str(config) if config else "built-in defaults"
        self.environ = environ
        self.fd: int | None = None
        self.legacy_fd: int | None = None
        self.started_at = datetime.now(UTC)
        #: Called at each heartbeat: the local faults the daemon sees, written in the record.
        self.notes: Callable[[], list[str]] | None = None

    def acquire(self, patience: float = ACQUIRE_PATIENCE) -> InstanceLock:
        """Take the lock or raise ``AlreadyRunning`` (or ``LockUnavailable``)."""
        tried: list[str] = []
        fd: int | None = None
        for folder in lock_dirs(self.environ):
            if not _usable_dir(folder):
                tried.append(f"{folder} (not a usable folder)")
                continue
            try:
                fd = _open_lock(folder, self.name)
            except OSError as exc:
                tried.append(f"{folder} ({exc.strerror or type(exc).__name__})")
                continue
            self.path = folder / self.name
            break
        if fd is None:
            raise LockUnavailable(
                f"the one-instance lock of the cache {self.cache_dir} could not be created in any of "
                + ", ".join(tried)
            )
        try:
            if not _flock(fd, patience):
                raise AlreadyRunning(_holder_sentence(self.cache_dir, _read_record(fd)))
            self.fd = fd
            self._look_elsewhere(patience)
        except BaseException:
            os.close(fd)
            self.fd = None
            self._close_legacy()
            raise
        self.beat()
        return self

    def _look_elsewhere(self, patience: float) -> None:
        """A live holder in any other place is another instance; the legacy lock is taken."""
        assert self.fd is not None
        legacy = self.cache_dir / LEGACY_LOCK_NAME
        for place in _all_places(self.cache_dir, self.environ):
            if _same_file(self.fd, place):
                continue
            if place == legacy:
                self._take_legacy(patience)
                continue
            try:
                other = os.open(place, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue  # absent, or not ours to read: nothing held there we could see
            try:
                if _held(other):
                    raise AlreadyRunning(_holder_sentence(self.cache_dir, _read_record(other)))
            finally:
                os.close(other)

    def _take_legacy(self, patience: float) -> None:
        """Hold ``<cache_dir>/daemon.lock`` too when possible (older versions look there)."""
        path = self.cache_dir / LEGACY_LOCK_NAME
        try:
            if not self.cache_dir.is_dir():
                return  # never create the cache folder here (a missing one is made by the store)
            fd = _open_lock(self.cache_dir, LEGACY_LOCK_NAME)
        except OSError:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    if _held(fd):
                        raise AlreadyRunning(_holder_sentence(self.cache_dir, _read_record(fd)))
                finally:
                    os.close(fd)
            return
        try:
            taken = _flock(fd, patience)
        except OSError:
            os.close(fd)
            return
        if not taken:
            holder = _read_record(fd)
            os.close(fd)
            raise AlreadyRunning(_holder_sentence(self.cache_dir, holder))
        self.legacy_fd = fd

    def _close_legacy(self) -> None:
        if self.legacy_fd is not None:
            os.close(self.legacy_fd)
            self.legacy_fd = None

    def beat(self, now: datetime | None = None) -> None:
        """Write who holds the lock and a heartbeat (in place, fixed size)."""
        if self.fd is None:
            return
        record: dict[str, Any] = {
            "command": self.command,
            "pid": os.getpid(),
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(now or datetime.now(UTC)),
            "config": self.config,
        }
        if self.notes is not None:
            try:
                notes = [str(n)[:120] for n in self.notes()]
            except Exception:  # a probe must never stop the heartbeat
                notes = []
            record["local_faults"] = notes
        data = json.dumps(record).encode()
        if len(data) > RECORD_SIZE - 1 and record.get("local_faults"):
            record["local_faults"] = [n.split(" ", 1)[0][:60] for n in record["local_faults"]][:4]
            data = json.dumps(record).encode()
        if len(data) > RECORD_SIZE - 1:
            record.pop("local_faults", None)
            record["config"] = record["config"][-200:]
            data = json.dumps(record).encode()
        data = data[: RECORD_SIZE - 1].ljust(RECORD_SIZE - 1) + b"\n"
        # A full disk must not stop the daemon: status then shows an old heartbeat.
        for fd in (self.fd, self.legacy_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.pwrite(fd, data, 0)

    def release(self) -> None:
        """Drop the lock (the kernel would at exit anyway)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._close_legacy()

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
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def _state(path: Path, fd: int, running: bool) -> DaemonState:
    record = _read_record(fd)
    pid = record.get("pid")
    notes = record.get("local_faults")
    return DaemonState(
        running,
        command=record.get("command") if isinstance(record.get("command"), str) else None,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        started_at=_dt(record.get("started_at")),
        heartbeat_at=_dt(record.get("heartbeat_at")),
        config=record.get("config") if isinstance(record.get("config"), str) else None,
        path=path,
        notes=tuple(str(n) for n in notes) if isinstance(notes, list) else (),
    )


def daemon_state(cache_dir: Path, environ: Any = None) -> DaemonState:
    """Whether a process holds the cache's lock, and what its record says; takes no lock.

    Looks in every place the lock may be (``_all_places``): the first one held wins; when
    none is held, the record with the newest heartbeat says when the daemon last ran.
    """
    found: list[DaemonState] = []
    problem: str | None = None
    mine = {d / lock_name(cache_dir) for d in lock_dirs(environ)}
    for path in _all_places(cache_dir, environ):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP) or path not in mine:
                # Another user's /tmp folder, the legacy file in a private cache: a daemon
                # there would also be in the runtime folders looked at first.
                continue
            problem = problem or f"cannot read {path}: {exc.strerror}"
            continue
        try:
            state = _state(path, fd, _held(fd))
        finally:
            os.close(fd)
        if state.running:
            return state
        found.append(state)
    if not found:
        return DaemonState(None, problem=problem) if problem else DaemonState(False)
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(found, key=lambda s: s.heartbeat_at or epoch)


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
