"""Issue 19 §2: folders that heal.  Under the unit's ``UMask=0077`` every folder and file the
daemon creates stays readable by the web server's group (per-location subfolders included),
and a snapshot folder or subfolder deleted while the daemon runs is made again."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds.folders import FOLDER_MODE, ensure_folder, ensure_published_folders

ROOT = Path(__file__).resolve().parent.parent
TWO = '[{id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85}, {id = "hue", name = "Huế", lat = 16.46, lon = 107.59}]'


@pytest.fixture
def umask_0077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _group_reads(p: Path) -> bool:
    m = _mode(p)
    return bool(m & stat.S_IRGRP) and (not p.is_dir() or bool(m & stat.S_IXGRP))


def test_ensure_folder_ignores_the_umask(tmp_path: Path, umask_0077: None) -> None:
    made = ensure_folder(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a" / "b") == FOLDER_MODE and _mode(tmp_path / "a") == FOLDER_MODE
    assert made == [tmp_path / "a", tmp_path / "a" / "b"]
    (tmp_path / "a" / "b").chmod(0o700)  # made by someone under the umask: mended
    ensure_folder(tmp_path / "a" / "b")
    assert _group_reads(tmp_path / "a" / "b")


def test_setgid_of_the_parent_is_kept(tmp_path: Path, umask_0077: None) -> None:
    tmp_path.chmod(0o2750)
    ensure_folder(tmp_path / "weather")
    assert _mode(tmp_path / "weather") == FOLDER_MODE | stat.S_ISGID


def test_published_folders_include_per_location_ones(tmp_path: Path, umask_0077: None) -> None:
    from tests.helpers import config_file

    cfg = config_file(tmp_path, f'[feeds.weather]\nkind = "open-meteo"\nlocations = {TWO}\nper_location_files = true\n'
                                '\n[feeds.rates]\nkind = "vietcombank"\n')
    ensure_published_folders(cfg)
    assert _group_reads(cfg.snapshot_dir) and _group_reads(cfg.snapshot_dir / "weather")
    assert not (cfg.snapshot_dir / "rates").exists()


def test_the_daemon_heals_deleted_folders_readable_by_the_group(tmp_path: Path, umask_0077: None) -> None:
    from feeds.daemon import Daemon
    from feeds.notify import Notifier
    from feeds.testing.upstream import UpstreamSimulator
    from tests.helpers import config_file

    with UpstreamSimulator() as sim:
        cfg = config_file(
            tmp_path,
            f'[feeds.weather]\nkind = "open-meteo"\nurl = "{sim.url("open-meteo")}"\nlocations = {TWO}\n'
            'per_location_files = true\nevery = "1h"\ntimeout = "2s"\ndeadline = "4s"\n',
        )
        snaps = cfg.snapshot_dir
        hue = snaps / "weather" / "hue.json"
        d = Daemon(None, cfg, notifier=Notifier(None))
        d.watch_every = 0.2

        def fetched(path: Path) -> bool:
            try:
                return json.loads(path.read_text(encoding="utf-8")).get("fetched_at") is not None
            except (OSError, ValueError):
                return False

        async def wait(pred: object) -> bool:
            for _ in range(150):
                if callable(pred) and pred():
                    return True
                await asyncio.sleep(0.05)
            return False

        seen: list[tuple[str, list[Path]]] = []

        async def go() -> None:
            run = asyncio.create_task(d.run())
            try:
                assert await wait(lambda: fetched(hue)), "the first attempt did not publish"
                seen.append(("first", [snaps, snaps / "weather", hue, snaps / "weather.json"]))
                shutil.rmtree(snaps / "weather")
                assert await wait(lambda: fetched(hue)), "the per-location folder was not made again"
                seen.append(("subfolder", [snaps / "weather", hue]))
                shutil.rmtree(snaps)
                assert await wait(lambda: fetched(hue) and fetched(snaps / "weather.json")), "not made again"
                seen.append(("folder", [snaps, snaps / "weather", hue, snaps / "weather.json"]))
            finally:
                d.stop_event.set()
                assert await asyncio.wait_for(run, 20) == 0

        asyncio.run(go())
    for step, paths in seen:
        for p in paths:
            assert _group_reads(p), (step, p, oct(_mode(p)))


def test_unit_gets_its_folders_from_systemd() -> None:
    unit = (ROOT / "systemd" / "portal-feeds.service").read_text()
    settings = [ln for ln in unit.splitlines() if ln and not ln.startswith("#")]
    # The whole state folder is systemd's: deleting it (or anything in it) is repaired by the
    # next start, and under ProtectSystem=strict the daemon may re-create what is inside.
    assert "StateDirectory=portal-feeds" in settings
    assert "StateDirectoryMode=0750" in settings
    assert "RuntimeDirectory=portal-feeds" in settings
    # A ReadWritePaths= on a folder that may be missing is a 226/NAMESPACE loop.
    assert not [ln for ln in settings if ln.startswith("ReadWritePaths=") and not ln.startswith("ReadWritePaths=-")]
    sysusers = (ROOT / "systemd" / "portal-feeds.sysusers").read_text()
    assert re.search(r"^m www-data portal-feeds$", sysusers, re.M), "nginx's user must read the group's folders"
    tmpfiles = (ROOT / "systemd" / "portal-feeds.tmpfiles").read_text()
    # Made by systemd-tmpfiles --create at install: check-config as the service user passes
    # before the first start (the cache exists and is the user's).
    for line in ("d /var/lib/portal-feeds 0750 portal-feeds portal-feeds",
                 "d /var/lib/portal-feeds/cache 0700 portal-feeds portal-feeds",
                 "d /var/lib/portal-feeds/snapshots 0750 portal-feeds portal-feeds"):
        assert re.search("^" + r"\s+".join(map(re.escape, line.split())) + r"\s", tmpfiles, re.M), line
