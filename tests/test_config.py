"""Configuration: durations, defaults, the shipped sample, errors naming the key (exit 78)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from feeds.cli import main
from feeds.config import (
    ConfigError,
    default_config_text,
    find_config,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)
from tests.conftest import write_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("48h", 172800), ("7d", 604800), ("1.5h", 5400), (30, 30), ("250ms", 0.25), ("45", 45)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "k") == seconds


@pytest.mark.parametrize("bad", ["soon", "", "5 minutes", "-3s", True, None, [1]])
def test_bad_durations_name_the_key(bad: object) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_duration(bad, "feeds.weather.every")
    assert str(ei.value).startswith("feeds.weather.every: expected")


def test_sizes() -> None:
    assert parse_size("2MB", "k") == 2_000_000
    assert parse_size("512KiB", "k") == 524288
    assert parse_size(1000, "k") == 1000
    with pytest.raises(ConfigError):
        parse_size("lots", "http.max_body")


def test_shipped_sample_is_the_embedded_default() -> None:
    sample = (REPO / "config" / "portal-feeds.toml").read_text(encoding="utf-8")
    assert sample == default_config_text()
    cfg = parse_config(tomllib.loads(sample), REPO / "config")
    assert list(cfg.feeds) == ["exchange-rates", "weather"]
    rates, weather = cfg.feeds["exchange-rates"], cfg.feeds["weather"]
    assert rates.kind == "vietcombank"
    assert rates.source.url == "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
    assert rates.every == 900 and rates.max_stale == 48 * 3600 and rates.min_interval == 300
    assert weather.kind == "open-meteo" and len(weather.locations) == 34
    assert [s.kind for s in weather.fallback] == ["met-no"]


def test_embedded_defaults_resolve_under_working_directory(tmp_path: Path) -> None:
    assert find_config(None, cwd=tmp_path) is None
    cfg = load_config(None, cwd=tmp_path)
    assert cfg.path is None
    assert cfg.cache_dir == tmp_path / "cache"
    assert cfg.snapshot_dir == tmp_path / "snapshots"


def test_repo_config_found_from_repo_root() -> None:
    cfg = load_config(None, cwd=REPO)
    assert cfg.path == REPO / "config" / "portal-feeds.toml"
    assert cfg.cache_dir == REPO / "cache"
    assert cfg.snapshot_dir == REPO / "snapshots"


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = write_config(sub, '[feeds.r]\nkind = "vietcombank"\nurl = "http://127.0.0.1:1/x"\n')
    cfg = load_config(path, cwd=Path("/"))
    assert cfg.cache_dir == sub / "cache"
    assert cfg.feeds["r"].min_interval == 300  # vietcombank's default politeness


def test_inline_locations(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[feeds.w]\nkind = "open-meteo"\nurl = "http://127.0.0.1:1/v1/forecast"\n'
        'locations = [{ id = "hn", name = "Hà Nội", lat = 21.03, lon = 105.85 }]\n',
    )
    cfg = load_config(path)
    assert cfg.feeds["w"].locations[0].name == "Hà Nội"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[feeds.weather]\nkind = "open-meteo"\nevery = "soon"\nlocations = "vietnam-provinces"\n', "feeds.weather.every"),
        ('[feeds.x]\nkind = "ftp"\n', "feeds.x.kind"),
        ('[feeds.x]\nkind = "vietcombank"\nurl = "nope"\n', "feeds.x.url"),
        ('[feeds.x]\nkind = "vietcombank"\ncolour = "red"\n', "feeds.x.colour"),
        ('[feeds.x]\nkind = "open-meteo"\n', "feeds.x.locations"),
        ('[feeds.x]\nkind = "open-meteo"\nlocations = [{ id = "a", name = "A", lat = 95, lon = 1 }]\n', "feeds.x.locations[0].lat"),
        ('[feeds.x]\nkind = "vietcombank"\nfallback = [{ kind = "met-no" }]\n', "feeds.x.fallback[0].kind"),
        ('[feeds.x]\nkind = "vietcombank"\ntimeout = "30s"\ndeadline = "10s"\n', "feeds.x.deadline"),
        ('[dns]\nnameservers = "1.1.1.1"\n[feeds.x]\nkind = "vietcombank"\n', "dns.nameservers"),
        ('[feeds.x]\nkind = "vietcombank"\nat = "*/15 7-25 * * 1-6"\n', "feeds.x.at"),
        ('[feeds.x]\nkind = "vietcombank"\nat = "daily"\n', "feeds.x.at"),
        ('[http]\nbreaker_failures = 0\n[feeds.x]\nkind = "vietcombank"\n', "http.breaker_failures"),
        ('[http]\nbreaker_cooldown = "a while"\n[feeds.x]\nkind = "vietcombank"\n', "http.breaker_cooldown"),
        ("", "feeds"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert ei.value.key == key
    assert str(ei.value).startswith(key + ":")


def test_cli_exit_78_with_message_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path, '[feeds.weather]\nkind = "open-meteo"\nevery = "soon"\nlocations = "vietnam-provinces"\n'
    )
    for cmd in ("check-config", "fetch"):
        assert main([cmd, "--config", str(path)]) == 78
        err = capsys.readouterr().err
        assert 'feeds.weather.every: expected a duration like "30m", got "soon"' in err
        assert "Traceback" not in err


def test_cli_missing_file_and_bad_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(tmp_path / "none.toml")]) == 78
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[feeds\n")
    assert main(["check-config", "--config", str(bad)]) == 78
    assert "not valid TOML" in capsys.readouterr().err


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(REPO / "config" / "portal-feeds.toml")]) == 0
    assert "configuration OK: 2 feeds" in capsys.readouterr().out
