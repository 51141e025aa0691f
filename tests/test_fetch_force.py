"""Issue 10 §3: ``fetch`` says when the next request is allowed; ``fetch --force NAME`` asks now, once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feeds.cli import main
from feeds.config import load_config
from feeds.politeness import HostGuard
from feeds.store import open_store
from feeds.testing.upstream import Fault, UpstreamSimulator


def _config(tmp_path: Path, url: str, extra_http: str = "") -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        f'[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n[http]\n{extra_http}\n'
        f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\ntimeout = "2s"\ndeadline = "4s"\n',
        encoding="utf-8",
    )
    return path


def _allowed_in(out: str, reason: str) -> int:
    m = re.search(rf"\(held_back: {reason}\); next request allowed in (\d+)m(\d\d)s, at ", out)
    assert m, out
    return int(m.group(1)) * 60 + int(m.group(2))


def test_held_back_says_when_and_force_asks_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with UpstreamSimulator() as sim:
        cfg = str(_config(tmp_path, sim.url("vietcombank")))
        assert main(["fetch", "--config", cfg]) == 0
        capsys.readouterr()
        assert sim.request_count("vietcombank") == 1
        # Inside Vietcombank's 5-minute window: nothing asked, and the admin is told when.
        assert main(["fetch", "--config", cfg]) == 0
        out = capsys.readouterr().out
        assert 0 < _allowed_in(out, "min_interval") <= 300, out
        assert re.search(r"at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \(portal-feeds fetch --force rates asks now\)", out)
        assert sim.request_count("vietcombank") == 1
        # --force: exactly one request now, and it says so.
        assert main(["fetch", "--force", "rates", "--config", cfg]) == 0
        out = capsys.readouterr().out
        assert re.match(r"rates\s+fresh\s+\d+ rates", out) and "[forced: one request now" in out, out
        assert sim.request_count("vietcombank") == 2
        # The window starts again from the forced request.
        assert main(["fetch", "--config", cfg]) == 0
        assert "held_back: min_interval" in capsys.readouterr().out
        assert sim.request_count("vietcombank") == 2


def test_force_overrides_an_open_circuit_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with UpstreamSimulator() as sim:
        path = _config(tmp_path, sim.url("vietcombank"), 'breaker_failures = 1\nbreaker_cooldown = "1h"\n')
        text = path.read_text().replace('timeout = "2s"', 'min_interval = "0s"\ntimeout = "2s"')
        path.write_text(text)
        cfg = str(path)
        sim.set_faults("vietcombank", [Fault.status(503)], repeat_last=True)
        assert main(["fetch", "--config", cfg]) == 1
        capsys.readouterr()
        asked = sim.request_count("vietcombank")
        assert main(["fetch", "--config", cfg]) == 1
        out = capsys.readouterr().out
        assert 3000 < _allowed_in(out, "circuit_open") <= 3600, out
        assert sim.request_count("vietcombank") == asked
        # The upstream is back; the admin checks it now instead of waiting an hour.
        sim.clear_faults("vietcombank")
        assert main(["fetch", "--force", "rates", "--config", cfg]) == 0
        assert "[forced: one request now" in capsys.readouterr().out
        assert sim.request_count("vietcombank") == asked + 1
    config = load_config(path)
    store = open_store(config.cache_dir)
    try:
        guard = HostGuard(store, breaker_threshold=1, breaker_cooldown=3600)
        assert guard.breaker("127.0.0.1").state == "closed"  # its success closed the circuit
    finally:
        store.close()


def test_a_forced_request_that_fails_is_one_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with UpstreamSimulator() as sim:
        cfg = str(_config(tmp_path, sim.url("vietcombank")))
        sim.set_faults("vietcombank", [Fault.status(503)], repeat_last=True)
        assert main(["fetch", "--force", "rates", "--config", cfg]) == 1
        assert "(http_status: 503)" in capsys.readouterr().out
        assert sim.request_count("vietcombank") == 1  # no retries on a forced attempt


def test_force_needs_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_config(tmp_path, "http://127.0.0.1:9/x"))
    assert main(["fetch", "--force", "--config", cfg]) == 2
    assert "fetch --force needs the feed NAMEs" in capsys.readouterr().err
