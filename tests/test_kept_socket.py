"""The connections' streams answer httpcore's "did the server close it?" from the socket they
kept (feeds.resolver.KeptSocketStream), not by asking anyio for every attribute with a
``getpeername`` each time (issue 20: ~400 system calls on the event loop per weather attempt),
and still notice a connection the server closed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from feeds.resolver import StaticResolver
from feeds.transport import build_client

BODY = b'{"ok": true}'


class Server:
    """HTTP/1.1 on loopback; answers keep the connection open unless ``close_after`` says
    to close it, silently (no ``Connection: close``), after that many answers."""

    def __init__(self, close_after: int | None = None) -> None:
        self.close_after = close_after
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        answered = 0
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                _, buf = buf.split(b"\r\n\r\n", 1)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
                )
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _get_many(port: int, n: int, pause: float = 0.0) -> list[int]:
    async def go() -> list[int]:
        client = build_client(user_agent="test", resolver=StaticResolver({"up.example": ["127.0.0.1"]}))
        codes = []
        async with client:
            for _ in range(n):
                codes.append((await client.get(f"http://up.example:{port}/x")).status_code)
                if pause:
                    await asyncio.sleep(pause)
        return codes

    return asyncio.run(go())


def test_a_reused_connection_makes_no_getpeername_per_request(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = socket.socket.getpeername

    def counted(self: socket.socket) -> object:
        nonlocal calls
        calls += 1
        return real(self)

    monkeypatch.setattr(socket.socket, "getpeername", counted)
    assert _get_many(server.port, 20) == [200] * 20
    assert server.connections == 1
    # A few when the connection is made (3 here); before: two more per request (41 here).
    assert calls <= 3, calls


def test_a_connection_the_server_closed_is_not_reused() -> None:
    s = Server(close_after=1)
    try:
        # Each answer's connection is closed by the server, quietly: the next request must
        # see it (readable: the end of the stream) and open another, not fail on it.
        assert _get_many(s.port, 3, pause=0.05) == [200, 200, 200]
        assert s.connections == 3
    finally:
        s.close()
