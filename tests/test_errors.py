"""classify(): every foreign failure maps to one of the seven kinds, by type, never by text."""

from __future__ import annotations

import socket
import ssl

import httpcore
import httpx
import pytest

from feeds.errors import (
    KINDS,
    ConnectError,
    DnsError,
    FeedError,
    HttpStatusError,
    InvalidPayloadError,
    classify,
)


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer from e
    except BaseException as got:
        return got


REQ = httpx.Request("GET", "https://www.vietcombank.com.vn/")


@pytest.mark.parametrize(
    ("exc", "kind", "detail"),
    [
        (_chained(httpx.ConnectError("x", request=REQ), socket.gaierror(socket.EAI_NONAME, "n")), "dns", "nxdomain"),
        (_chained(httpx.ConnectError("x", request=REQ), socket.gaierror(socket.EAI_AGAIN, "n")), "dns", "temporary"),
        (_chained(httpx.ConnectError("x", request=REQ), httpcore.ConnectError("y")), "connect", "refused"),
        (_chained(httpx.ConnectError("x", request=REQ), ConnectionRefusedError()), "connect", "refused"),
        (httpx.ReadError("x", request=REQ), "connect", "dropped"),
        (httpx.RemoteProtocolError("x", request=REQ), "connect", "dropped"),
        (ConnectionResetError(), "connect", "dropped"),
        (httpx.ConnectTimeout("x", request=REQ), "timeout", None),
        (httpx.ReadTimeout("x", request=REQ), "timeout", None),
        (TimeoutError(), "timeout", None),
        (_chained(httpx.ConnectError("x", request=REQ), ssl.SSLCertVerificationError("bad cert")), "tls", None),
        (httpx.DecodingError("x", request=REQ), "invalid_payload", None),
        (httpx.TooManyRedirects("x", request=REQ), "invalid_payload", None),
        (
            httpx.HTTPStatusError("x", request=REQ, response=httpx.Response(503, request=REQ)),
            "http_status",
            "503",
        ),
        (KeyError("bug"), "invalid_payload", "internal"),
    ],
)
def test_classify_table(exc: BaseException, kind: str, detail: str | None) -> None:
    got = classify(exc)
    assert got.kind == kind
    assert got.detail == detail
    assert "vietcombank" not in got.message  # never foreign text, never a host name


def test_every_httpx_error_is_classified_to_a_known_kind() -> None:
    """Completeness: no httpx exception class falls through as 'unknown'."""
    classes = [c for c in vars(httpx).values() if isinstance(c, type) and issubclass(c, httpx.HTTPError)]
    assert classes
    for cls in classes:
        if cls is httpx.HTTPStatusError:
            exc: Exception = cls("x", request=REQ, response=httpx.Response(500, request=REQ))
        elif issubclass(cls, httpx.RequestError) or cls is httpx.HTTPError:
            exc = cls("x")
        else:
            exc = cls("x")
        assert classify(exc).kind in KINDS, cls


def test_our_error_deep_in_chain_wins() -> None:
    err = DnsError("x", detail="timeout")
    assert classify(_chained(httpx.ConnectError("x"), err)) is err


def test_retryable_flags() -> None:
    assert DnsError("x", detail="temporary").retryable
    assert DnsError("x", detail="timeout").retryable
    assert not DnsError("x", detail="nxdomain").retryable
    assert ConnectError("x").retryable
    assert HttpStatusError("x", status_code=503).retryable
    assert HttpStatusError("x", status_code=429).retryable
    assert HttpStatusError("x", status_code=408).retryable
    assert not HttpStatusError("x", status_code=404).retryable
    assert not InvalidPayloadError("x").retryable
    assert all(issubclass(type(classify(e)), FeedError) for e in [OSError(), EOFError()])


def test_unresolvable_host_is_dns() -> None:
    """A real lookup of a *.invalid name (RFC 6761: never resolves) is classified dns."""
    with httpx.Client() as client, pytest.raises(httpx.ConnectError) as ei:
        client.get("http://portal-feeds-test.invalid/")
    got = classify(ei.value)
    assert got.kind == "dns"
    assert got.detail in ("nxdomain", "temporary", "no_answer")
