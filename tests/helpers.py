"""Test helpers: build a coordinator over MockTransport, a fake clock and a memory store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from feeds.clock import FakeClock
from feeds.config import Config, load_config
from feeds.coordinator import Coordinator
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore, Store

FIXTURES = Path(__file__).parent / "fixtures"


def vcb_fixture(name: str = "vcb-2022-12-21-collapsed.xml") -> bytes:
    return (FIXTURES / "vietcombank" / name).read_bytes()


def vcb_dated(text: str) -> bytes:
    """The 2022 fixture with another ``<DateTime>`` (the bank's ``M/D/YYYY h:mm:ss AM``)."""
    return vcb_fixture().replace(b"12/21/2022 2:36:27 PM", text.encode())


def vcb_moved(body: bytes, amount: int, code: str = "USD") -> bytes:
    """A Vietcombank table with ``code``'s three rates moved by ``amount`` đồng."""
    import re
    from decimal import Decimal

    def move(row: re.Match[bytes]) -> bytes:
        out = row.group(0)
        for attr in (b"Buy", b"Transfer", b"Sell"):
            out = re.sub(attr + rb'="([\d,.]+)"',
                         lambda v, a=attr: a + b'="' + str(Decimal(v.group(1).decode().replace(",", "")) + amount).encode() + b'"',
                         out)
        return out

    return re.sub(rb'<Exrate CurrencyCode="' + code.encode() + rb'"[^>]*/>', move, body)


@dataclass
class Upstream:
    """A scripted MockTransport handler: a list of responses (or exceptions), then a default."""

    default: Callable[[httpx.Request], httpx.Response]
    script: list[Callable[[httpx.Request], httpx.Response]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            return self.script.pop(0)(request)
        return self.default(request)


def ok(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda req: httpx.Response(status, content=body, headers=headers or {})


def fail(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def raise_(req: httpx.Request) -> httpx.Response:
        raise exc

    return raise_


def make_coordinator(
    config: Config, handler: Callable[[httpx.Request], httpx.Response], *, clock: FakeClock | None = None,
    store: Store | None = None,
) -> tuple[Coordinator, FakeClock, Store, httpx.AsyncClient]:
    import random

    clock = clock or FakeClock()
    store = store or MemoryStore()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    coord = Coordinator(config, store, client, clock, retry=RetryPolicy(clock, rng=random.Random(7)))
    return coord, clock, store, client


def config_file(tmp_path: Path, body: str) -> Config:
    path = tmp_path / "portal-feeds.toml"
    path.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + body, encoding="utf-8")
    return load_config(path)
