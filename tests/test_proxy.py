"""``[http] proxy``: fetching through an outbound HTTP proxy (loopback test proxy).

The upstream's host name is resolved by the proxy, not by us: every test here uses a
resolver that resolves nothing, so a fetch that succeeds went through the proxy."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from feeds.app import open_runtime
from feeds.config import Config, ConfigError, load_config
from feeds.coordinator import AttemptResult
from feeds.errors import ConnectError, classify
from feeds.models import RequestSpec
from feeds.resolver import StaticResolver
from feeds.store import Health
from feeds.testing.proxy import TestProxy
from feeds.testing.upstream import UpstreamSimulator
from tests.conftest import write_config
from tests.test_tls import HOST, _server

BANK = "www.vietcombank.com.vn"


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    with UpstreamSimulator() as s:
        yield s


def config(tmp_path: Path, sim: UpstreamSimulator, proxy: str) -> Config:
    path = write_config(
        tmp_path,
        f"""
[http]
proxy = "{proxy}"

[feeds.rates]
kind = "vietcombank"
url = "http://{BANK}:{sim.port}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
min_interval = "0s"
timeout = "1s"
deadline = "3s"
""",
    )
    return load_config(path)


def refresh(cfg: Config) -> tuple[AttemptResult, Health]:
    async def go() -> tuple[AttemptResult, Health]:
        async with open_runtime(cfg, primary_resolver=StaticResolver({})) as rt:
            r = await rt.coordinator.refresh(cfg.feeds["rates"])
            return r, rt.store.get("health/rates")

    return asyncio.run(go())


def snapshot(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "snapshots" / "rates.json").read_text(encoding="utf-8"))


def test_http_upstream_forwarded_through_the_proxy(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with TestProxy() as proxy:
        cfg = config(tmp_path, sim, proxy.url)
        r, health = refresh(cfg)
        assert r.status == "fresh" and health.consecutive_failures == 0
        assert snapshot(tmp_path)["data"]["rates"][0]["code"]
        # The proxy got the absolute URL with the upstream's name, which we never resolved.
        assert [q.method for q in proxy.requests] == ["GET"]
        assert proxy.requests[0].target.startswith(f"http://{BANK}:{sim.port}/Usercontrols/")
        assert sim.request_count("vietcombank") == 1


def test_proxy_credentials_from_the_url(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with TestProxy(require_auth=("portal", "p@ss")) as proxy:
        cfg = config(tmp_path, sim, f"http://portal:p%40ss@127.0.0.1:{proxy.port}")
        assert refresh(cfg)[0].status == "fresh"
        assert proxy.requests[0].proxy_authorization == "Basic cG9ydGFsOnBAc3M="


def test_proxy_refusing_keeps_the_last_good_data(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with TestProxy() as proxy:
        cfg = config(tmp_path, sim, proxy.url)
        assert refresh(cfg)[0].status == "fresh"
        good = snapshot(tmp_path)["data"]
        proxy.refuse = True  # the proxy answers 502: it cannot reach the upstream
        r, health = refresh(cfg)
        assert r.status == "stale" and snapshot(tmp_path)["data"] == good
        assert (health.outcome, health.detail) == ("http_status", "502")
        text = (tmp_path / "snapshots" / "rates.json").read_text(encoding="utf-8")
        assert "127.0.0.1" not in text and "proxy" not in text.lower()


def test_proxy_down_is_connect_refused(tmp_path: Path, sim: UpstreamSimulator) -> None:
    with TestProxy() as proxy:
        port = proxy.port
    cfg = config(tmp_path, sim, f"http://127.0.0.1:{port}")
    r, health = refresh(cfg)
    assert r.status == "unavailable"
    assert (health.outcome, health.detail) == ("connect", "refused")
    assert sim.request_count("vietcombank") == 0


@pytest.fixture(scope="module")
def ca():  # type: ignore[no-untyped-def]
    return trustme.CA()


def _get_via(ca, port: int, proxy_url: str) -> bytes:  # type: ignore[no-untyped-def]
    from feeds.transport import build_client, fetch

    trust = ssl.create_default_context()
    ca.configure_trust(trust)

    async def go() -> bytes:
        async with build_client(user_agent="t", resolver=StaticResolver({}), trust=trust, proxy=proxy_url) as c:
            return (await fetch(c, RequestSpec(f"https://{HOST}:{port}/x"), timeout=3, max_body=1000)).body

    return asyncio.run(go())


def test_https_tunnelled_certificate_verified_end_to_end(ca) -> None:  # type: ignore[no-untyped-def]
    for port, sni in _server(ca, [HOST]):
        with TestProxy() as proxy:
            assert _get_via(ca, port, proxy.url) == b"<ExrateList/>"
        assert [(q.method, q.target) for q in proxy.requests] == [("CONNECT", f"{HOST}:{port}")]
        assert sni == [HOST]


def test_https_tunnel_to_a_wrong_certificate_is_tls(ca) -> None:  # type: ignore[no-untyped-def]
    from feeds.errors import TlsError

    for port, _ in _server(ca, ["evil.example"]):
        with TestProxy() as proxy, pytest.raises(TlsError):
            _get_via(ca, port, proxy.url)


def test_https_tunnel_refused_is_connect_proxy(ca) -> None:  # type: ignore[no-untyped-def]
    for port, _ in _server(ca, [HOST]):
        with TestProxy(refuse=True) as proxy, pytest.raises(ConnectError) as ei:
            _get_via(ca, port, proxy.url)
        assert ei.value.detail == "proxy"
    with TestProxy(require_auth=("a", "b")) as proxy, pytest.raises(ConnectError) as ei:
        _get_via(ca, 1, proxy.url)
    assert ei.value.detail == "proxy"


def test_classify_proxy_error() -> None:
    err = classify(httpx.ProxyError("502 Bad Gateway"))
    assert (err.kind, err.detail) == ("connect", "proxy")


@pytest.mark.parametrize(
    "value",
    ["socks5://127.0.0.1:1080", "https://127.0.0.1:3128", "proxy:3128", "http://u:secret@host:x"],
)
def test_bad_proxy_url_names_the_key_and_hides_passwords(tmp_path: Path, value: str) -> None:
    path = write_config(tmp_path, f'[http]\nproxy = "{value}"\n[feeds.x]\nkind = "vietcombank"\n')
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert ei.value.key == "http.proxy"
    assert "secret" not in str(ei.value)
