"""Issue 16 §6: one instance whatever happens to the cache.

The lock lives in a runtime folder keyed by the cache folder's resolved path, so deleting
the cache cannot remove it; ``status``/``check`` find the live daemon in the same places,
whatever the environment of the process that asks.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds import instance
from feeds.cli import main
from feeds.config import load_config
from feeds.health import run_check
from feeds.instance import AlreadyRunning, InstanceLock, daemon_state, lock_dirs, lock_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Runtime folders of this test only (no /run/portal-feeds, no real /tmp folder)."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    system = tmp_path / "run-portal-feeds"
    tmp_root = tmp_path / "tmproot"
    tmp_root.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setattr(instance, "SYSTEM_RUNTIME_DIR", system)
    monkeypatch.setattr(instance, "TMP_ROOT", tmp_root)
    users = tmp_path / "run-user"
    users.mkdir()
    monkeypatch.setattr(instance, "XDG_ROOT", users)
    return {"xdg": xdg, "system": system, "tmp": tmp_root, "users": users}


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n[feeds.rates]\nkind = "vietcombank"\n'
        'url = "http://127.0.0.1:9/x"\nevery = "1s"\nmin_interval = "0s"\ntimeout = "1s"\ndeadline = "2s"\n',
        encoding="utf-8",
    )
    return path


def test_deleting_the_cache_does_not_let_a_second_instance_in(tmp_path: Path) -> None:
    """Reproduction 5: rm -rf of the cache let a second daemon run beside the first."""
    cache = tmp_path / "cache"
    first = InstanceLock(cache, "run", None).acquire()
    try:
        shutil.rmtree(cache, ignore_errors=True)
        with pytest.raises(AlreadyRunning, match=r"the daemon \(pid \d+\) is using the cache"):
            InstanceLock(cache, "run", None).acquire(patience=0)
        state = daemon_state(cache)
        assert state.running is True and state.command == "run" and state.pid == os.getpid()
    finally:
        first.release()
    assert daemon_state(cache).running is False
    InstanceLock(cache, "run", None).acquire(patience=0).release()


def test_the_lock_is_not_in_the_cache_and_is_keyed_by_its_path(tmp_path: Path, places: dict[str, Path]) -> None:
    a, b = tmp_path / "a" / "cache", tmp_path / "b" / "cache"
    with InstanceLock(a, "run", None) as la, InstanceLock(b, "run", None) as lb:
        assert la.path is not None and lb.path is not None
        assert la.path.parent == places["xdg"] and la.path != lb.path
        assert la.path.name == lock_name(a) and len(la.path.name) == len("portal-feeds-0123456789abcdef.lock")
        assert a not in la.path.parents
    # The same folder spelt differently (a symlink, "..") is the same cache.
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert lock_name(tmp_path / "link" / "cache") == lock_name(tmp_path / "b" / ".." / "a" / "cache")


def test_runtime_directory_comes_first_and_others_are_seen(tmp_path: Path, places: dict[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit's RUNTIME_DIRECTORY wins; a process with another environment (a root shell
    with its own XDG_RUNTIME_DIR) still meets the daemon's lock."""
    runtime = tmp_path / "unit-runtime"
    runtime.mkdir()
    cache = tmp_path / "cache"
    daemon_env = {"RUNTIME_DIRECTORY": str(runtime)}
    assert lock_dirs(daemon_env)[0] == runtime
    with InstanceLock(cache, "run", None, environ=daemon_env) as held:
        assert held.path == runtime / lock_name(cache)
        other = {"XDG_RUNTIME_DIR": str(places["xdg"])}
    # RUNTIME_DIRECTORY is /run/portal-feeds under the unit, which every process looks at.
    monkeypatch.setattr(instance, "SYSTEM_RUNTIME_DIR", runtime)
    with InstanceLock(cache, "run", None, environ=daemon_env):
        state = daemon_state(cache, other)
        assert state.running is True and state.path == runtime / lock_name(cache)
        with pytest.raises(AlreadyRunning):
            InstanceLock(cache, "fetch", None, environ=other).acquire(patience=0)
    # A root shell's fetch took the lock in its XDG folder: the unit's daemon still sees it
    # (every place is looked at, not only the first).
    with InstanceLock(cache, "fetch", None, environ={"XDG_RUNTIME_DIR": str(places["xdg"])}) as f:
        assert f.path == runtime / lock_name(cache)  # the system folder comes before XDG
    # Without /run/portal-feeds, a shell's XDG folder is unknown to the unit's daemon: the
    # lock also taken in the cache folder (when it exists) still keeps them apart.
    monkeypatch.setattr(instance, "SYSTEM_RUNTIME_DIR", tmp_path / "absent")
    cache.mkdir()
    with InstanceLock(cache, "fetch", None, environ={"XDG_RUNTIME_DIR": str(places["xdg"])}) as f:
        assert f.path == places["xdg"] / lock_name(cache)
        with pytest.raises(AlreadyRunning, match="another portal-feeds fetch"):
            InstanceLock(cache, "run", None, environ=daemon_env).acquire(patience=0)


def test_without_any_runtime_folder_a_private_tmp_folder_is_used(tmp_path: Path, places: dict[str, Path]) -> None:
    cache = tmp_path / "cache"
    with InstanceLock(cache, "run", None, environ={}) as held:
        mine = places["tmp"] / f"portal-feeds-{os.geteuid()}"
        assert held.path == mine / lock_name(cache)
        assert (os.lstat(mine).st_mode & 0o777) == 0o755
        # Another user's /tmp folder is looked at too (status as root, daemon as portal-feeds).
        assert daemon_state(cache, {"XDG_RUNTIME_DIR": str(places["xdg"])}).running is True


def test_a_symlinked_tmp_folder_is_not_used(tmp_path: Path, places: dict[str, Path]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (places["tmp"] / f"portal-feeds-{os.geteuid()}").symlink_to(elsewhere)
    with pytest.raises(instance.LockUnavailable, match="could not be created"):
        InstanceLock(tmp_path / "cache", "run", None, environ={}).acquire()
    assert list(elsewhere.iterdir()) == []


def test_a_former_version_holding_the_cache_lock_is_seen(tmp_path: Path) -> None:
    """An older daemon holds <cache>/daemon.lock (during an upgrade): still one instance."""
    cache = tmp_path / "cache"
    cache.mkdir()
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
        "os.write(fd, b'{\"command\": \"run\", \"pid\": 4242}'); fcntl.flock(fd, fcntl.LOCK_EX);"
        "print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(cache / "daemon.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        with pytest.raises(AlreadyRunning, match=r"the daemon \(pid 4242\)"):
            InstanceLock(cache, "run", None).acquire(patience=0)
        assert daemon_state(cache).running is True
    finally:
        proc.kill()
        proc.wait()
    with InstanceLock(cache, "run", None) as held:
        assert held.legacy_fd is not None  # taken too, for older versions' status


def test_real_daemon_survives_cache_deletion_as_the_only_instance(tmp_path: Path) -> None:
    """rm -rf of the cache under a running daemon: run and fetch are still refused (75),
    status and check still report the live daemon."""
    cfg = _config(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import time

        for _ in range(300):
            if daemon_state(tmp_path / "cache").running and (tmp_path / "cache").exists():
                break
            time.sleep(0.05)
        shutil.rmtree(tmp_path / "cache")
        for cmd in ("run", "fetch"):
            p = subprocess.run([sys.executable, "-m", "feeds", cmd, "--config", str(cfg)], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=60)
            assert p.returncode == 75, (cmd, p.stdout, p.stderr)
            assert f"the daemon (pid {proc.pid}) is using the cache" in p.stderr
        state = daemon_state(tmp_path / "cache")
        assert state.running is True and state.pid == proc.pid
        out = io.StringIO()
        run_check(load_config(cfg), ["rates"], out=out)
        assert f"daemon running (pid {proc.pid}" in out.getvalue()
        assert "daemon not running" not in out.getvalue()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_no_negative_heartbeat_age(tmp_path: Path) -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    with InstanceLock(tmp_path / "cache", "run", None) as lock:
        lock.beat(now + timedelta(hours=1))
        state = daemon_state(tmp_path / "cache")
        text = state.describe(now)
        assert "in the future (clock stepped?)" in text and "-" not in text.split("pid")[1]
        assert state.heartbeat_problem(now) == "last heartbeat in the future (clock stepped?)"
        lock.beat(now - timedelta(minutes=5))
        assert "wedged" in (daemon_state(tmp_path / "cache").heartbeat_problem(now) or "")


def test_lock_unavailable_is_75_and_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)

    def nowhere(environ: object = None) -> list[Path]:
        return [tmp_path / "no" / "such"]

    monkeypatch.setattr(instance, "lock_dirs", nowhere)
    assert main(["fetch", "--config", str(cfg)]) == 75
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not be created" in err and "Traceback" not in err


def test_the_unit_gives_the_lock_a_runtime_folder_kept_across_restarts() -> None:
    unit = (ROOT / "systemd" / "portal-feeds.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if line and line[0].isalpha() and "=" in line)
    assert settings["RuntimeDirectory"] == "portal-feeds"  # feeds.instance.SYSTEM_RUNTIME_DIR
    assert settings["RuntimeDirectoryPreserve"] == "yes" and settings["RuntimeDirectoryMode"] == "0755"
    # Local faults at start are no longer 78: only configuration errors are not restarted.
    assert settings["RestartPreventExitStatus"] == "78" and settings["Restart"] == "on-failure"
    tmpfiles = (ROOT / "systemd" / "portal-feeds.tmpfiles").read_text()
    assert "d /run/portal-feeds                0755 portal-feeds portal-feeds -" in tmpfiles


def test_a_daemon_in_another_users_session_is_found(tmp_path: Path, places: dict[str, Path]) -> None:
    """The daemon started by hand in portal-feeds' session (XDG_RUNTIME_DIR=/run/user/998),
    status and fetch as root (XDG_RUNTIME_DIR=/run/user/0): still one instance."""
    theirs, mine = places["users"] / "998", places["users"] / "0"
    theirs.mkdir()
    mine.mkdir()
    cache = tmp_path / "cache"
    with InstanceLock(cache, "run", None, environ={"XDG_RUNTIME_DIR": str(theirs)}) as held:
        assert held.path == theirs / lock_name(cache)
        root_env = {"XDG_RUNTIME_DIR": str(mine)}
        assert daemon_state(cache, root_env).running is True
        with pytest.raises(AlreadyRunning, match="the daemon"):
            InstanceLock(cache, "fetch", None, environ=root_env).acquire(patience=0)
