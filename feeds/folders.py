"""Are the configured folders usable by the user running us?  Asked before anything is opened.

``check-config``, ``fetch`` and ``run`` check each folder: it exists and is a writable
folder, or it can be created (its nearest existing parent is a writable folder).  Nothing is
created here: ``check-config`` must not leave folders behind.

Two kinds of problem (issue 16 §7):

- a **configuration error** (exit 78, naming the key, not restarted by systemd): the path is
  not a folder (a file, ``/dev/null``), or it does not exist and cannot be created (its
  nearest existing parent is not a folder or not writable, or a folder on the way may not
  be looked into).  An admin must change the file or the folders; retrying cannot help.
- a **local fault** (``FolderCheck.local``): the folder exists but cannot be written now (a
  read-only mount, rights, an I/O error).  Disks get fixed and remounted: ``run`` starts
  anyway, republishes what it can and retries, ``fetch`` still makes its attempt (and exits
  1), ``check-config`` prints a warning and exits 0 (so ``systemctl reload`` is not refused
  for a disk fault).

``os.access`` answers for the real user and honours read-only mounts (``EROFS``), so under
the unit's ``ProtectSystem=strict`` the check run by ``ExecReload`` sees what the daemon
would see.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from feeds.config import Config, ConfigError

__all__ = [
    "FOLDER_MODE",
    "FolderCheck",
    "check_folder",
    "check_folders",
    "current_user",
    "ensure_folder",
    "ensure_published_folders",
    "folder_faults",
    "require_folders",
]

#: Every folder the daemon makes for published files: the web server's group (nginx's
#: www-data is a member of the service's group, systemd/portal-feeds.sysusers) reads and
#: traverses it, others see nothing.  Set explicitly: the unit's UMask=0077 would give 0700.
FOLDER_MODE = 0o750

#: Folders the shipped unit lets the service write (ProtectSystem=strict makes the rest
#: read-only); a path elsewhere is worth a note when checked outside the unit.
UNIT_WRITABLE = (Path("/var/lib/portal-feeds"), Path("/var/lib/prometheus/node-exporter"))


@dataclass(frozen=True)
class FolderCheck:
    """The answer for one configured folder."""

    key: str
    path: Path
    ok: bool
    state: str  # "exists, writable", "will be created", or what is wrong
    #: Not ok because the folder exists but cannot be written now -- a local fault, not a
    #: configuration error: ``read_only``, ``permission`` or ``io``.
    reason: str | None = None

    def line(self) -> str:
        return f"{self.key.split('.')[-1]} {self.path}: {self.state}"

    def note(self) -> str:
        """A short note for the daemon's heartbeat record: ``cache_dir /var/...: read_only``."""
        return f"{self.key.split('.')[-1]} {self.path}: {self.reason or 'fault'}"

    @property
    def local(self) -> bool:
        """A local fault (the folder exists but cannot be written now)."""
        return self.reason is not None


def current_user() -> str:
    """The name of the user running us (or its uid)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def check_folder(key: str, path: Path) -> FolderCheck:
    """Whether ``path`` is (or can become) a folder the current user writes."""
    user = current_user()
    try:
        st = _stat(path)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                return FolderCheck(key, path, False, "exists and is not a folder")
            if not os.access(path, os.W_OK | os.X_OK):
                if _read_only(path):
                    return FolderCheck(key, path, False, "is a folder on a read-only file system", reason="read_only")
                return FolderCheck(key, path, False, f"is a folder {user} cannot write", reason="permission")
            return FolderCheck(key, path, True, "exists, writable")
        parent = path.parent
        while _stat(parent) is None and parent != parent.parent:
            parent = parent.parent
        pst = _stat(parent)
        if pst is None or not stat.S_ISDIR(pst.st_mode):
            return FolderCheck(key, path, False, f"cannot be created: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            return FolderCheck(key, path, False, f"does not exist and {user} cannot create it in {parent}")
        return FolderCheck(key, path, True, "will be created")
    except PermissionError:
        return FolderCheck(key, path, False, f"{user} may not look inside a folder on the way")
    except OSError as exc:
        return FolderCheck(key, path, False, f"cannot be checked ({exc.strerror or type(exc).__name__})", reason="io")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_folders(config: Config) -> list[FolderCheck]:
    """Check the cache, the snapshot folder and the metrics file's folder."""
    checks = [
        check_folder("paths.cache_dir", config.cache_dir),
        check_folder("paths.snapshot_dir", config.snapshot_dir),
    ]
    if config.metrics_file is not None:
        checks.append(check_folder("monitoring.metrics_file", config.metrics_file.parent))
    return checks


def require_folders(config: Config) -> list[FolderCheck]:
    """Raise ``ConfigError`` for the first folder that is a configuration error; return the
    checks otherwise (local faults among them: ``not c.ok and c.local``)."""
    checks = check_folders(config)
    for c in checks:
        if not c.ok and not c.local:
            raise ConfigError(c.key, f"{c.path} {c.state}")
    return checks


def folder_faults(config: Config) -> list[str]:
    """The local faults of the configured folders, as the current user sees them (notes for
    the daemon's heartbeat record, ``FolderCheck.note``)."""
    return [c.note() for c in check_folders(config) if not c.ok and c.local]


def outside_unit(path: Path) -> bool:
    """True when the shipped unit would not let the service write ``path``."""
    return not any(path == p or p in path.parents for p in UNIT_WRITABLE)


def ensure_folder(path: Path) -> list[Path]:
    """Make ``path`` (and missing parents) a folder the web server's group can read, whatever
    the umask; mend the mode of one we own that lacks it.  Returns the folders made.

    A parent's setgid bit is kept (a folder made setgid by an admin keeps handing its group
    down).  Raises ``OSError`` when it cannot be made (the caller reports a local fault).
    """
    made: list[Path] = []
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            pass
        else:
            made.append(folder)
        _mend(folder)
    if not missing:
        _mend(path)
    return made


def _mend(folder: Path) -> None:
    st = folder.stat()
    if st.st_uid != os.geteuid() or not stat.S_ISDIR(st.st_mode):
        return
    want = FOLDER_MODE | (folder.parent.stat().st_mode & stat.S_ISGID)
    if stat.S_IMODE(st.st_mode) & (FOLDER_MODE | stat.S_ISGID) != want:
        os.chmod(folder, stat.S_IMODE(st.st_mode) | want)


def ensure_published_folders(config: Config) -> list[Path]:
    """The snapshot folder and each per-location subfolder (``<snapshot_dir>/<feed>/``),
    made or mended with ``FOLDER_MODE``: run before publishing, so a folder deleted while the
    daemon runs comes back readable by nginx (``write_atomic`` would make it under the
    umask).  Returns the folders made."""
    made = ensure_folder(config.snapshot_dir)
    for feed in config.feeds.values():
        if feed.per_location_files and feed.data_kind == "weather":
            made += ensure_folder(config.snapshot_dir / feed.name)
    return made
