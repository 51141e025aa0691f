"""Issue 16 §7: a local fault at start is not a configuration error.

A cache or snapshot folder that exists but cannot be written when ``run`` starts (a
read-only mount, rights): the daemon starts, republishes what it can, retries, and says so
(one ERROR line; ``status``/``check`` show the fault) -- it used to exit 78, which systemd
never restarts, so the service stayed down after the disk was fixed.  ``fetch`` makes its
attempt and exits 1 with one sentence; ``check-config`` warns and exits 0.  A path that is
not a folder stays a configuration error (78).

Real read-only file systems are small tmpfs mounts remounted ``ro`` (root only, like
tests/test_damage.py); without root the same answers are checked through ``os.access``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feeds import folders
from feeds.cli import main
from feeds.testing.upstream import UpstreamSimulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    with UpstreamSimulator() as s:
        yield s


def _config(tmp_path: Path, sim: UpstreamSimulator) -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[monitoring]
check_require_daemon = false

[feeds.rates]
kind = "vietcombank"
url = "{sim.url('vietcombank')}"
every = "1s"
min_interval = "0s"
timeout = "1s"
deadline = "2s"
""", encoding="utf-8")
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONPATH"] = str(ROOT)
    env["XDG_RUNTIME_DIR"] = str(tmp_path)  # the instance lock stays inside the test
    return env


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "feeds", *args, "--config", str(tmp_path / "portal-feeds.toml")],
                       capture_output=True, text=True, timeout=60, env=_env(tmp_path), cwd=tmp_path)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    return p


def _can_mount(tmp_path: Path) -> str | None:
    if os.geteuid() != 0:
        return "needs root for a read-only tmpfs (the os.access seam covers it without root)"
    probe = tmp_path / "probe"
    probe.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True, text=True)
    if p.returncode != 0:
        return f"cannot mount a tmpfs here: {p.stderr.strip()}"
    subprocess.run(["umount", "-l", str(probe)], capture_output=True)
    return None


@contextlib.contextmanager
def tmpfs(path: Path) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


def wait(cond: Callable[[], bool], seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _snapshot(tmp_path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((tmp_path / "snapshots" / "rates.json").read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("where", ["cache", "snapshots"])
def test_run_starts_with_a_read_only_folder_and_recovers(tmp_path: Path, sim: UpstreamSimulator, where: str) -> None:
    """Reproduction 5: a read-only folder at start exited 78 and the service stayed down."""
    reason = _can_mount(tmp_path)
    if reason:
        pytest.skip(reason)
    _config(tmp_path, sim)
    with tmpfs(tmp_path / where) as mnt:
        assert _cli(tmp_path, "fetch").returncode == 0
        before = _snapshot(tmp_path)
        remount(mnt, "ro")
        proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(tmp_path / "portal-feeds.toml")],
                                cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def running() -> bool:
                st = _cli(tmp_path, "status", "--json")
                if st.returncode == 3:
                    return False
                doc = json.loads(st.stdout)
                return bool(doc["daemon"]["running"]) and bool(doc["daemon"]["local_faults"])

            wait(running, 30, "the daemon to run and report its fault")
            assert proc.poll() is None, "the daemon exited"
            st = _cli(tmp_path, "status")
            assert st.returncode == 1 and "local fault:" in st.stdout, st.stdout
            assert f"{'cache_dir' if where == 'cache' else 'snapshot_dir'} {mnt}: read_only (seen by the daemon)" in st.stdout
            ck = _cli(tmp_path, "check")
            assert ck.returncode == 2 and "local fault" in ck.stdout, ck.stdout
            if where == "snapshots":
                assert _snapshot(tmp_path)["fetched_at"] == before["fetched_at"]  # the old file stays
            remount(mnt, "rw")
            first = _snapshot(tmp_path)["generated_at"]

            def rewritten() -> bool:
                doc = _snapshot(tmp_path)
                return doc["status"] == "fresh" and doc["generated_at"] != first

            wait(rewritten, 30, "a fresh snapshot once the disk is writable")
            wait(lambda: _cli(tmp_path, "check").returncode == 0, 30, "check OK again")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert any("start with a local fault" in line for line in errors), out
    assert "configuration error:" not in out


def test_fetch_with_a_read_only_snapshot_folder_is_1_and_one_sentence(tmp_path: Path, sim: UpstreamSimulator) -> None:
    reason = _can_mount(tmp_path)
    if reason:
        pytest.skip(reason)
    _config(tmp_path, sim)
    with tmpfs(tmp_path / "snapshots") as mnt:
        assert _cli(tmp_path, "fetch").returncode == 0
        remount(mnt, "ro")
        p = _cli(tmp_path, "fetch")
        assert p.returncode == 1, p.stdout + p.stderr
        first = p.stderr.splitlines()[0]
        assert first.startswith("portal-feeds: paths.snapshot_dir ") and "read-only" in first
        assert "not a configuration error" in first
        assert "(local: publish:read_only)" in p.stdout
        c = _cli(tmp_path, "check-config")
        assert c.returncode == 0 and "warning: snapshot_dir" in c.stdout, c.stdout
        remount(mnt, "rw")
        assert _cli(tmp_path, "fetch").returncode == 0


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Make ``os.access`` say a folder cannot be written (root bypasses permission bits)."""
    blocked: set[Path] = set()
    real = os.access

    def access(path: object, mode: int, *a: object, **k: object) -> bool:
        if Path(str(path)) in blocked and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(folders.os, "access", access)
    return blocked.add


def test_check_config_warns_and_exits_0_for_an_unwritable_folder(tmp_path: Path, sim: UpstreamSimulator,
                                                                unwritable: Callable[[Path], None],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, sim)
    (tmp_path / "cache").mkdir()
    unwritable(tmp_path / "cache")
    assert main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"warning: cache_dir {tmp_path / 'cache'}: is a folder" in out and "cannot write" in out


def test_fetch_with_an_unwritable_cache_folder_is_1_not_78(tmp_path: Path, sim: UpstreamSimulator,
                                                          unwritable: Callable[[Path], None],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    cfg = _config(tmp_path, sim)
    (tmp_path / "cache").mkdir()
    unwritable(tmp_path / "cache")
    code = main(["fetch", "--config", str(cfg)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "configuration error:" not in err and "Traceback" not in err
    assert err.startswith(f"portal-feeds: paths.cache_dir {tmp_path / 'cache'} is a folder")
    assert "fresh" in out  # the snapshot was still published


@pytest.mark.parametrize("command", ["fetch", "run", "check-config"])
def test_a_path_that_is_not_a_folder_stays_78(tmp_path: Path, sim: UpstreamSimulator, command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, sim)
    (tmp_path / "snapshots").write_text("a file")
    assert main([command, "--config", str(cfg)]) == 78
    assert "paths.snapshot_dir" in capsys.readouterr().err
