"""Issue 8 §1: HTTP semantics with bounds -- the upstream decides nothing unbounded.

Stacked and single-layer compression bombs (bounded decoding, memory measured with
tracemalloc), Retry-After caps in both forms, Expires honoured only for MET Norway and
capped, the redirect policy, and leading whitespace classed by what follows it.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from feeds.decoding import decode_body, parse_encodings
from feeds.errors import HttpStatusError, InvalidPayloadError
from feeds.models import RequestSpec
from feeds.pipeline import honoured_expires
from feeds.testing.upstream import gzip_bomb
from feeds.transport import fetch, parse_retry_after, redirect_allowed
from feeds.xml import parse_xml
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture

BOMB = 64 * 1024 * 1024  # enough to tell bounded from unbounded decoding
CAP = 2_000_000


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def raw(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    """An answer streamed as over a wire (bytes content would be read and decoded by httpx)."""

    async def stream() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    return httpx.Response(status, headers=headers or {}, content=stream())


def _fetch(handler: Any, url: str = "https://example.org/x", **kw: Any) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await fetch(client, RequestSpec(url), timeout=2, max_body=kw.pop("max_body", CAP), **kw)

    return run(go())


# -- Content-Encoding ---------------------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_compression_bomb_refused_with_bounded_memory(layers: int) -> None:
    body = gzip_bomb(BOMB, layers)
    enc = ", ".join(["gzip"] * layers)

    def handler(req: httpx.Request) -> httpx.Response:
        return raw(body, headers={"Content-Encoding": enc})

    tracemalloc.start()
    try:
        with pytest.raises(InvalidPayloadError) as ei:
            _fetch(handler)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ei.value.detail == "too_large"
    # Unbounded decoding holds at least one whole 64 MiB layer; ours a few max_body.
    assert peak < 8 * CAP, peak


def test_decoder_undoes_gzip_deflate_and_stacks() -> None:
    doc = vcb_fixture()
    assert decode_body(gzip.compress(doc), "gzip", CAP) == doc
    assert decode_body(gzip.compress(doc), "x-gzip", CAP) == doc
    assert decode_body(zlib.compress(doc), "deflate", CAP) == doc
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode_body(raw.compress(doc) + raw.flush(), "deflate", CAP) == doc
    stacked = gzip.compress(zlib.compress(doc))
    assert decode_body(stacked, "deflate, gzip", CAP) == doc
    assert decode_body(doc, "identity", CAP) == doc
    assert decode_body(doc, None, CAP) == doc
    assert parse_encodings("GZIP , identity,, gzip") == ["gzip", "gzip"]


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(b"<ExrateList/>" * 100)[:-20], "gzip"),  # truncated
        (b"whatever", "br"),
        (b"whatever", "zstd"),
        (gzip.compress(b"x"), "gzip, gzip, gzip, gzip"),  # more layers than MAX_LAYERS
    ],
    ids=["corrupt", "truncated", "br", "zstd", "four-layers"],
)
def test_undecodable_encodings_are_invalid_payload(body: bytes, encoding: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        decode_body(body, encoding, CAP)
    assert ei.value.detail == "encoding"


def test_gzip_answer_through_fetch_is_decoded() -> None:
    doc = vcb_fixture()

    def handler(req: httpx.Request) -> httpx.Response:
        return raw(gzip.compress(doc), headers={"Content-Encoding": "gzip"})

    assert _fetch(handler).body == doc


# -- Retry-After --------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
        ("9" * 20, 3600.0),
        ("9" * 5000, 3600.0),
        ("Tue, 24 Nov 2026 08:02:00 GMT", 120.0),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("１２", None),  # full-width digits
        ("Fri, 31 Dec 99999999999 23:59:59 GMT", None),
    ],
)
def test_retry_after_is_parsed_defensively_and_capped(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW, cap=3600.0) == expected


RATES = """
[http]
retry_after_max = "30m"

[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""


@pytest.mark.parametrize("value", ["9" * 20, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_huge_retry_after_holds_the_host_back_at_most_the_cap(tmp_path: Path, value: str, caplog: Any) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(b"", status=429, headers={"Retry-After": value}))
    coord, clock, store, _ = make_coordinator(cfg, up)
    with caplog.at_level("INFO", logger="feeds.transport"):
        r = run(coord.refresh(feed))
    assert (r.outcome, r.detail) == ("http_status", "429")
    assert "Retry-After capped" in caplog.text
    assert not [rec for rec in caplog.records if rec.exc_info]  # no traceback
    # 31 minutes later the host may be asked again (the cap is 30 minutes).
    clock.advance(31 * 60)
    up.default = ok(vcb_fixture())
    r = run(coord.refresh(feed))
    assert r.outcome == "ok", r


def test_retry_after_max_is_validated(tmp_path: Path) -> None:
    from feeds.config import ConfigError

    with pytest.raises(ConfigError, match="http.retry_after_max"):
        config_file(tmp_path, RATES.replace('"30m"', '"30d"'))


# -- Expires ------------------------------------------------------------------------------


def test_honoured_expires_is_capped() -> None:
    assert honoured_expires("Fri, 31 Dec 9999 23:59:59 GMT", NOW, 1800) == NOW + timedelta(seconds=1800)
    assert honoured_expires("Fri, 31 Dec 9999 23:59:59 GMT", NOW, 86400) == NOW + timedelta(hours=1)
    assert honoured_expires("Tue, 24 Nov 2026 08:10:00 GMT", NOW, 1800) == NOW + timedelta(minutes=10)
    assert honoured_expires("Tue, 24 Nov 2026 07:10:00 GMT", NOW, 1800) is None
    assert honoured_expires("not a date", NOW, 1800) is None
    assert honoured_expires(None, NOW, 1800) is None


MET_ONLY = """
[feeds.weather]
kind = "met-no"
url = "https://api.met.no/weatherapi/locationforecast/2.0/compact"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "new-york", name = "New York", lat = 40.7, lon = -74.0 }]
"""

OPEN_METEO_ONLY = """
[feeds.weather]
kind = "open-meteo"
url = "https://api.open-meteo.com/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "ha-noi", name = "Ha Noi", lat = 21.03, lon = 105.85 }]
"""


def _met_body() -> bytes:
    return (Path(__file__).parent / "fixtures" / "weather" / "metno-compact-2020-07-20-newyork-trimmed.json").read_bytes()


def test_expires_in_9999_does_not_stop_requests_for_ever(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, MET_ONLY)
    feed = cfg.feeds["weather"]
    up = Upstream(default=ok(_met_body(), headers={"Expires": "Fri, 31 Dec 9999 23:59:59 GMT"}))
    coord, clock, _, _ = make_coordinator(cfg, up)
    assert run(coord.refresh(feed)).outcome == "ok"
    assert len(up.requests) == 1
    clock.advance(60)
    run(coord.refresh(feed))
    assert len(up.requests) == 1  # honoured (MET Norway's terms) within the cap
    clock.advance(30 * 60)
    assert run(coord.refresh(feed)).outcome == "ok"
    assert len(up.requests) == 2  # past min(every, 1 h): asked again
    clock.advance(24 * 3600)
    run(coord.refresh(feed))
    assert len(up.requests) == 3


def test_expires_is_ignored_for_sources_whose_terms_do_not_ask(tmp_path: Path) -> None:
    from feeds.testing.upstream import UpstreamSimulator

    sim = UpstreamSimulator()
    sim.now = lambda: datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp()  # the FakeClock start
    status, body = sim._open_meteo({"latitude": "21.03", "longitude": "105.85"})
    assert status == 200
    cfg = config_file(tmp_path, OPEN_METEO_ONLY)
    feed = cfg.feeds["weather"]
    up = Upstream(default=ok(body, headers={"Expires": "Fri, 31 Dec 9999 23:59:59 GMT"}))
    coord, clock, _, _ = make_coordinator(cfg, up)
    assert run(coord.refresh(feed)).outcome == "ok"
    clock.advance(60)
    assert run(coord.refresh(feed)).outcome == "ok"
    assert len(up.requests) == 2


# -- Redirects ----------------------------------------------------------------------------


def _redirecting(location: str | None, status: int = 302) -> Any:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/x":
            return httpx.Response(status, headers={"Location": location} if location is not None else {})
        return httpx.Response(200, content=b"ok")

    return handler


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.net/y",  # another host
        "https://example.org:8443/y",  # another port
        "http://example.org/y",  # another scheme
        None,  # no Location
        "https://[::1/y",  # unreadable Location
    ],
    ids=["host", "port", "scheme", "missing", "invalid"],
)
def test_redirects_outside_the_origin_are_http_status_redirect(location: str | None) -> None:
    with pytest.raises(HttpStatusError) as ei:
        _fetch(_redirecting(location))
    assert ei.value.detail == "redirect"
    assert not ei.value.retryable


def test_redirects_within_the_origin_or_to_listed_hosts_are_followed() -> None:
    assert _fetch(_redirecting("/y")).url == "https://example.org/y"
    assert _fetch(_redirecting("https://example.org/y", 301)).url == "https://example.org/y"
    got = _fetch(_redirecting("https://cdn.example.net/y"), follow_redirects_to=["cdn.example.net"])
    assert got.url == "https://cdn.example.net/y"
    with pytest.raises(HttpStatusError):  # a listed host, but not a downgrade
        _fetch(_redirecting("http://cdn.example.net/y"), follow_redirects_to=["cdn.example.net"])


def test_redirect_policy_function() -> None:
    o = httpx.URL("https://a.example/x")
    assert redirect_allowed(o, httpx.URL("https://a.example:443/z"))
    assert not redirect_allowed(o, httpx.URL("https://b.example/z"))
    assert redirect_allowed(o, httpx.URL("https://b.example:8443/z"), ["b.example:8443"])
    assert not redirect_allowed(o, httpx.URL("https://b.example:8443/z"), ["b.example:9000"])


def test_invalid_location_is_not_retried(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=lambda req: httpx.Response(302, headers={"Location": "https://[::1/y"}))
    coord, _, _, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(feed))
    assert (r.outcome, r.detail) == ("http_status", "redirect")
    assert len(up.requests) == 1


# -- Leading whitespace -------------------------------------------------------------------


def test_long_leading_whitespace_is_judged_by_the_document() -> None:
    doc = vcb_fixture()
    body = doc[doc.index(b"<ExrateList") :]  # no XML declaration: whitespace may precede it
    assert parse_xml(b" " * 70_000 + body).tag == "ExrateList"
    assert parse_xml(b"\r\n" * 40_000 + doc).tag == "ExrateList"
    with pytest.raises(InvalidPayloadError) as ei:
        parse_xml(b" " * 70_000 + b"<html><body>error</body></html>")
    assert ei.value.detail == "html"
    with pytest.raises(InvalidPayloadError) as ei:
        parse_xml(b" " * 70_000 + b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
    assert ei.value.detail == "doctype"
    with pytest.raises(InvalidPayloadError) as ei:
        parse_xml(b" \r\n" * 70_000)
    assert ei.value.detail == "empty"
