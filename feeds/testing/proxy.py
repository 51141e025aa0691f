"""A small outbound HTTP proxy on loopback, for tests of ``[http] proxy``.

It speaks both forms an HTTP proxy sees: ``CONNECT host:port`` (an https upstream,
tunnelled) and absolute-form ``GET http://host:port/path`` (an http upstream, forwarded).
Whatever host name is asked for, it connects to **127.0.0.1** at the asked port -- test
traffic never leaves loopback -- and it records each request (method, target, the
``Proxy-Authorization`` it carried) so tests can assert what went through it.

Faults: ``require_auth=(user, password)`` answers 407 without it; ``refuse=True`` answers
502 as a proxy does when it cannot resolve or reach the upstream.
"""

from __future__ import annotations

import base64
import selectors
import socket
import socketserver
import threading
from dataclasses import dataclass

__all__ = ["ProxiedRequest", "TestProxy"]


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str
    proxy_authorization: str | None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: TestProxy


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        sock.settimeout(10)
        head, rest = _read_head(sock)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h)]
        auth = next((v for k, v in headers if k.lower() == "proxy-authorization"), None)
        with owner._lock:
            owner.requests.append(ProxiedRequest(method, target, auth))
        if owner.require_auth is not None:
            expected = "Basic " + base64.b64encode(":".join(owner.require_auth).encode()).decode()
            if auth != expected:
                sock.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
                )
                return
        if owner.refuse:
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            port = int(target.rsplit(":", 1)[1])
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            _pipe(sock, upstream)
            return
        # Absolute-form: http://host[:port]/path -> origin-form to 127.0.0.1:port.
        if not target.startswith("http://"):
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        authority, _, path = target[len("http://") :].partition("/")
        port = int(authority.rsplit(":", 1)[1]) if ":" in authority else 80
        kept = [(k, v) for k, v in headers if not k.lower().startswith("proxy-") and k.lower() != "connection"]
        out = f"{method} /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept)
        out += "Connection: close\r\n\r\n"
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        upstream.sendall(out.encode("latin-1") + rest)
        _pipe(sock, upstream)


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None, b""
        if not chunk:
            return None, b""
        buf += chunk
        if len(buf) > 65536:
            return None, b""
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select(timeout=30):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                dst: socket.socket = key.data
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                dst.sendall(data)
    finally:
        sel.close()
        b.close()


class TestProxy:
    """``with TestProxy() as p: ... p.url ... p.requests``"""

    __test__ = False  # not a pytest test class

    def __init__(self, *, require_auth: tuple[str, str] | None = None, refuse: bool = False) -> None:
        self.require_auth = require_auth
        self.refuse = refuse
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TestProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
