"""Issue 10 §1: every configuration passes check-config and then runs, or exits 78 naming the key.

Each case below made ``fetch``/``run`` (or ``check-config`` itself) die with a traceback
before, i.e. a restart loop under systemd.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds.cli import main
from feeds.config import ConfigError, load_config
from tests.conftest import write_config

RATES = '[feeds.rates]\nkind = "vietcombank"\nurl = "http://127.0.0.1:9/x"\n'


def _load(tmp_path: Path, body: str) -> object:
    return load_config(write_config(tmp_path, body))


def _refused(tmp_path: Path, body: str, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        _load(tmp_path, body)
    assert ei.value.key == key, str(ei.value)
    assert "\n" not in str(ei.value) and len(str(ei.value)) < 400
    return ei.value


DURATION_KEYS = [
    ("feeds.rates.every", RATES + "every = {v}\n"),
    ("feeds.rates.max_stale", RATES + "max_stale = {v}\n"),
    ("feeds.rates.deadline", RATES + "deadline = {v}\n"),
    ("feeds.rates.timeout", RATES + "timeout = {v}\n"),
    ("feeds.rates.min_interval", RATES + "min_interval = {v}\n"),
    ("http.breaker_cooldown", "[http]\nbreaker_cooldown = {v}\n" + RATES),
    ("dns.stale_max", "[dns]\nstale_max = {v}\n" + RATES),
    ("dns.timeout", "[dns]\ntimeout = {v}\n" + RATES),
]
BAD_DURATIONS = ["inf", "nan", "-inf", "1e308", '"1000000000d"', '"１５m"', '"١٥m"', '"nan"', '"inf"',
                 "1" + "0" * 400, '"' + "9" * 400 + 's"']


@pytest.mark.parametrize(("key", "template"), DURATION_KEYS, ids=[k for k, _ in DURATION_KEYS])
@pytest.mark.parametrize("value", BAD_DURATIONS)
def test_durations_are_finite_bounded_and_ascii(tmp_path: Path, key: str, template: str, value: str) -> None:
    _refused(tmp_path, template.format(v=value), key)


@pytest.mark.parametrize("value", ['"0"', "0", '"0.4"', '"0B"', "inf", '"' + "9" * 400 + 'MB"', '"２MB"', "10" + "0" * 30])
def test_max_body_positive_bounded(tmp_path: Path, value: str) -> None:
    _refused(tmp_path, f"[http]\nmax_body = {value}\n" + RATES, "http.max_body")


def test_vietnamese_user_agent_is_transliterated(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[http]\nuser_agent = "Cổng thông tin điện tử Đà Nẵng (+https://danang.gov.vn; ☎ webmaster@danang.gov.vn)"\n' + RATES)
    ua = cfg.user_agent  # type: ignore[attr-defined]
    assert ua == "Cong thong tin dien tu Da Nang (+https://danang.gov.vn; %E2%98%8E webmaster@danang.gov.vn)"
    ua.encode("ascii")


@pytest.mark.parametrize("value", ['"a\\r\\nX-Evil: 1"', '"tab\\there"', '"' + "x" * 600 + '"'])
def test_user_agent_refused(tmp_path: Path, value: str) -> None:
    _refused(tmp_path, f"[http]\nuser_agent = {value}\n" + RATES, "http.user_agent")


@pytest.mark.parametrize("ns", ["1.1.1.1:abc", "1.1.1.1:99999", "dns.google", "[::1]:x", "", "1.1.1.1:0", "1.1.1.1 "])
def test_nameservers_are_addresses(tmp_path: Path, ns: str) -> None:
    _refused(tmp_path, f'[dns]\nnameservers = ["{ns}"]\n' + RATES, "dns.nameservers")


@pytest.mark.parametrize("ns", ["1.1.1.1", "127.0.0.1:5353", "::1", "[::1]:5353", "2001:4860:4860::8888"])
def test_nameservers_accepted(tmp_path: Path, ns: str) -> None:
    cfg = _load(tmp_path, f'[dns]\nnameservers = ["{ns}"]\n' + RATES)
    assert cfg.dns.nameservers == (ns,)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    ["http://[::1:8766/x", "http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x", "http://☃.net/",
     "http://h/x\\r\\nX: y", "http:///x", "http://h .net/", "http://h:0/", "ftp://h/", "http://h/a b",
     "https://xn--n3h.net/", "http://h/\\u0000"],
)
def test_urls_httpx_refuses_are_refused(tmp_path: Path, url: str) -> None:
    _refused(tmp_path, f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\n', "feeds.rates.url")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8766/x?b=10", "https://[::1]:443/v1/forecast", "https://hà-nội.vn/x"])
def test_urls_accepted(tmp_path: Path, url: str) -> None:
    _load(tmp_path, f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\n')


@pytest.mark.parametrize("name", ['"rates\\n"', '"a' + "b" * 250 + '"', '"a' + "b" * 64 + '"', '"-x"', '"tỷ-giá"'])
def test_feed_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as ei:
        _load(tmp_path, f'[feeds.{name}]\nkind = "vietcombank"\n')
    assert ei.value.key.startswith("feeds.")


def test_feed_name_of_64_characters_is_fine(tmp_path: Path) -> None:
    _load(tmp_path, f'[feeds.{"a" * 64}]\nkind = "vietcombank"\n')


@pytest.mark.parametrize("key", ["cache_dir", "snapshot_dir"])
def test_nul_in_path(tmp_path: Path, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[paths]\n{key} = "a\\u0000b"\n' + RATES)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert ei.value.key == f"paths.{key}"


def test_every_shorter_than_min_interval(tmp_path: Path) -> None:
    err = _refused(tmp_path, RATES + 'every = "1m"\nmin_interval = "5m"\n', "feeds.rates.every")
    assert "min_interval" in str(err)


def test_at_and_every_both_set(tmp_path: Path) -> None:
    _refused(tmp_path, RATES + 'every = "15m"\nat = "*/15 7-18 * * 1-6"\n', "feeds.rates.at")
    _load(tmp_path, RATES + 'at = "*/15 7-18 * * 1-6"\n')


@pytest.mark.parametrize("value", ["inf", "nan", "1e308"])
def test_deadline_and_numbers_finite(tmp_path: Path, value: str) -> None:
    _refused(tmp_path, RATES + f"max_change = {value}\n", "feeds.rates.max_change")
    _refused(tmp_path, f"[monitoring]\ncheck_missed_intervals = {value}\n" + RATES, "monitoring.check_missed_intervals")


def test_deep_nesting_and_huge_integer_are_78_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 2000 + "]" * 2000 + "\n" + RATES)
    huge = tmp_path / "huge.toml"
    huge.write_text("[http]\nbreaker_failures = " + "9" * 5000 + "\n" + RATES)
    big = tmp_path / "big.toml"  # parses, but must not be echoed whole
    big.write_text("[http]\nbreaker_failures = " + "9" * 4000 + "\n" + RATES)
    for path in (deep, huge, big):
        assert main(["check-config", "--config", str(path)]) == 78
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1 and len(err) < 400, err


# -- folders -------------------------------------------------------------------------------
def _paths_config(tmp_path: Path, cache: str, snaps: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[paths]\ncache_dir = "{cache}"\nsnapshot_dir = "{snaps}"\n' + RATES)
    return path


@pytest.mark.parametrize("command", ["check-config", "fetch", "run", "status"])
def test_a_folder_that_is_a_file_is_78_naming_the_key(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    cfg = _paths_config(tmp_path, "afile", "snaps")
    code = main([command, "--config", str(cfg)])
    out = capsys.readouterr()
    assert code == (3 if command == "status" else 78), out
    assert "paths.cache_dir" in out.err and "not a folder" in out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize("command", ["check-config", "fetch", "run"])
def test_dev_null_cache_is_78(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _paths_config(tmp_path, "/dev/null", "snaps")
    assert main([command, "--config", str(cfg)]) == 78
    assert "paths.cache_dir" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder_is_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    cfg = _paths_config(tmp_path, "cache", "ro/snaps")
    assert main(["check-config", "--config", str(cfg)]) == 78
    assert "paths.snapshot_dir" in capsys.readouterr().err


def test_unwritable_folder_as_another_user(tmp_path: Path) -> None:
    """As root (the CI case), check as ``nobody`` in a forked child: os.access answers for it."""
    import pwd

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody; covered by test_unwritable_folder_is_78")
    from feeds.folders import check_folder

    (tmp_path / "ro").mkdir(mode=0o755)
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, check, report through the pipe
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            c = check_folder("paths.cache_dir", tmp_path / "ro" / "cache")
            os.write(w, f"{c.ok}|{c.state}".encode())
        finally:
            os._exit(0)
    os.close(w)
    answer = os.read(r, 4096).decode()
    os.waitpid(pid, 0)
    ok, state = answer.split("|", 1)
    assert ok == "False" and "nobody" in state, answer


def test_check_config_reports_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "snaps").mkdir()
    cfg = _paths_config(tmp_path, "cache", "snaps")
    assert main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"cache_dir {tmp_path / 'cache'}: will be created" in out
    assert f"snapshot_dir {tmp_path / 'snaps'}: exists, writable" in out
    assert not (tmp_path / "cache").exists()  # check-config creates nothing
