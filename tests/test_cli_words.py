"""Issue 19 §5: the admin's small cuts -- a BOM, words instead of Python reprs, usage errors
exit 2, paths that resolve into /etc refused, `status` in one zone, and exit-code tables that
agree with the code."""

from __future__ import annotations

import json
import os
import re
from io import StringIO
from pathlib import Path

import pytest

from feeds import cli
from feeds.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
FEED = '[feeds.exchange-rates]\nkind = "vietcombank"\n'
PATHS = '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n'


def _write(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    p = tmp_path / "portal-feeds.toml"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


def test_a_config_saved_with_a_bom_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, PATHS + FEED, bom=True))
    assert list(cfg.feeds) == ["exchange-rates"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        (PATHS + FEED + "every = true\n", "got true"),
        (PATHS + FEED + "per_location_files = false\nevery = false\n", "got false"),
    ],
)
def test_messages_use_toml_words_not_python_reprs(tmp_path: Path, body: str, word: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, body))
    assert word in str(e.value)
    assert "True" not in str(e.value) and "False" not in str(e.value) and "None" not in str(e.value)


def test_missing_value_is_said_in_words() -> None:
    from feeds.config import _show

    assert _show(None) == "nothing"
    assert _show(True) == "true"


def test_os_errors_in_words() -> None:
    from feeds.config import _os_words

    assert _os_words(PermissionError(13, "Permission denied")) == "permission denied"
    assert _os_words(OSError(5, "Input/output error")) == "input/output error"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_says_why_in_words(tmp_path: Path) -> None:
    p = _write(tmp_path, PATHS + FEED)
    p.chmod(0)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "PermissionError" not in str(e.value) and "permission denied" in str(e.value)


def test_a_folder_as_config_says_why_in_words(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert "Error)" not in str(e.value)
    assert "is a folder" in str(e.value)


def test_not_utf8_says_why_in_words(tmp_path: Path) -> None:
    p = tmp_path / "portal-feeds.toml"
    p.write_bytes(b"# C\xf4ng\n" + (PATHS + FEED).encode())
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "UnicodeDecodeError" not in str(e.value) and "UTF-8" in str(e.value)


@pytest.mark.parametrize("key", ["cache_dir", "snapshot_dir"])
def test_a_path_resolving_into_etc_is_refused_naming_the_key(key: str) -> None:
    from feeds.config import parse_config

    other = "snapshot_dir" if key == "cache_dir" else "cache_dir"
    data = {"paths": {key: "../cache", other: "/var/lib/portal-feeds/x"}, "feeds": {"x": {"kind": "vietcombank"}}}
    cfg = parse_config(data, Path("/etc/portal-feeds"), Path("/etc/portal-feeds/portal-feeds.toml"))
    from feeds.config import refuse_system_paths

    with pytest.raises(ConfigError) as e:
        refuse_system_paths(cfg)
    msg = str(e.value)
    assert f"paths.{key}" in msg and "/etc" in msg
    assert msg.count(".") <= 4 and "\n" not in msg


@pytest.mark.parametrize("path", ["/etc/portal-feeds/cache", "/etc", "/opt/portal-feeds/venv/cache",
                                  "/usr/share/portal-feeds/snapshots", "/usr/lib/x"])
def test_system_and_package_folders_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, f'[paths]\ncache_dir = "{path}"\nsnapshot_dir = "s"\n\n' + FEED))
    assert "paths.cache_dir" in str(e.value)


def test_var_lib_paths_are_fine(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[paths]\ncache_dir = "/var/lib/portal-feeds/cache"\n'
                                       'snapshot_dir = "/var/lib/portal-feeds/snapshots"\n\n' + FEED))
    assert cfg.cache_dir == Path("/var/lib/portal-feeds/cache")


def test_fetch_of_an_unknown_feed_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, PATHS + FEED)
    assert cli.main(["fetch", "--config", str(p), "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "exchange-rates" in err and "'" not in err


def test_status_without_daemon_shows_no_next_run_and_one_zone(tmp_path: Path) -> None:
    from feeds.health import print_status
    from feeds.testing.upstream import UpstreamSimulator

    with UpstreamSimulator() as sim:
        body = (f'[feeds.exchange-rates]\nkind = "vietcombank"\n'
                f'url = "http://127.0.0.1:{sim.port}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"\n')
        p = _write(tmp_path, PATHS + body)
        assert cli.main(["fetch", "--config", str(p)]) == 0
    cfg = load_config(p)
    out = StringIO()
    print_status(cfg, out=out)
    text = out.getvalue()
    assert "daemon not running" in text
    header, row = text.splitlines()[2:4]
    cols = dict(zip(re.split(r"\s{2,}", header), re.split(r"\s{2,}", row), strict=False))
    assert cols["NEXT RUN"] == "no daemon", cols
    out = StringIO()
    print_status(cfg, as_json=True, out=out)
    doc = json.loads(out.getvalue())
    offsets = set(re.findall(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?([+-]\d\d:\d\d|Z)"', json.dumps(doc)))
    assert offsets == {"+07:00"}, offsets


def _table_rows(text: str, heading: str) -> list[list[str]]:
    part = text.split(heading, 1)[1]
    rows = []
    for line in part.splitlines()[1:]:
        if not line.strip():
            if rows:
                break
            continue
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        rows.append(cells)
    return rows[1:]


def test_cli_md_exit_code_table_matches_the_code() -> None:
    rows = _table_rows((ROOT / "docs" / "cli.md").read_text(), "## Exit codes")
    assert {int(r[0]) for r in rows} == set(cli.EXIT_CODES)


def test_readme_exit_codes_per_command_match_the_code() -> None:
    rows = _table_rows((ROOT / "README.md").read_text(), "## Commands")
    seen = {}
    for r in rows:
        name = re.match(r"`portal-feeds ([a-z-]+)", r[0])
        assert name, r
        seen[name.group(1)] = {int(n) for n in re.findall(r"\b(\d+)\b", r[2])}
    assert seen == {k: set(v) for k, v in cli.COMMAND_EXITS.items()}


def test_every_exit_code_constant_is_documented() -> None:
    consts = {v for k, v in vars(cli).items() if k.startswith("EX_") and isinstance(v, int)}
    assert consts <= set(cli.EXIT_CODES)


def test_unit_prometheus_comment_has_the_dash() -> None:
    unit = (ROOT / "systemd" / "portal-feeds.service").read_text()
    lines = [ln for ln in unit.splitlines() if "node-exporter" in ln and "ReadWritePaths" in ln]
    assert lines and all(ln.lstrip("# ").startswith("ReadWritePaths=-") for ln in lines), lines


