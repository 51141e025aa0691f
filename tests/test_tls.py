"""TLS through the resolver seam: the socket goes to the address we chose, while SNI and
certificate verification use the real host name."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from feeds.errors import TlsError
from feeds.models import RequestSpec
from feeds.resolver import StaticResolver
from feeds.transport import build_client, fetch

HOST = "portal.vietcombank.com.vn"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<ExrateList/>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca():  # type: ignore[no-untyped-def]
    return trustme.CA()


def _server(ca, names: list[str]) -> Iterator[tuple[int, list[str]]]:  # type: ignore[no-untyped-def]
    cert = ca.issue_cert(*names)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    sni: list[str] = []
    ctx.sni_callback = lambda sock, name, c: sni.append(name)  # type: ignore[assignment]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield srv.server_address[1], sni
    finally:
        srv.shutdown()
        srv.server_close()


def _get(ca, port: int) -> bytes:  # type: ignore[no-untyped-def]
    trust = ssl.create_default_context()
    ca.configure_trust(trust)

    async def go() -> bytes:
        async with build_client(user_agent="t", resolver=StaticResolver({HOST: ["127.0.0.1"]}), trust=trust) as c:
            return (await fetch(c, RequestSpec(f"https://{HOST}:{port}/x"), timeout=3, max_body=1000)).body

    return asyncio.run(go())


def test_sni_and_certificate_use_the_host_name(ca) -> None:  # type: ignore[no-untyped-def]
    for port, sni in _server(ca, [HOST]):
        assert _get(ca, port) == b"<ExrateList/>"
        assert sni == [HOST]


def test_certificate_for_another_name_is_tls_error(ca) -> None:  # type: ignore[no-untyped-def]
    for port, _ in _server(ca, ["evil.example"]):
        with pytest.raises(TlsError):
            _get(ca, port)


def test_verification_cannot_be_switched_off() -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError):
        build_client(user_agent="t", trust=ctx)
