"""A fault-injecting upstream simulator: a real HTTP/1.1 server on 127.0.0.1.

Used by the tests, the benchmarks and ``portal-feeds demo``.  It serves recorded real
payloads for the three upstreams and, per endpoint, follows a script of faults.

Endpoints (``UpstreamSimulator.url(name)``):

- ``vietcombank`` at ``/Usercontrols/TVPortal.TyGia/pXML.aspx``: the recorded XML
  (``payloads/vcb-2022-12-21-collapsed.xml``).
- ``open-meteo`` at ``/v1/forecast``: answers for whatever comma-separated
  ``latitude``/``longitude`` are asked (one object, or an array for several), in the
  recorded shape with ``current`` and 3 ``daily`` days, coordinates snapped to a 0.25° grid,
  values derived from the coordinates; a 400 ``{"error": true, ...}`` when they are missing.
- ``met-no`` at ``/weatherapi/locationforecast/2.0/compact``: the recorded compact JSON with
  the asked point in ``geometry``; 403 without a ``User-Agent`` (like the real API);
  ``Expires`` and ``Last-Modified`` headers.

API::

    sim = UpstreamSimulator().start()          # or: with UpstreamSimulator() as sim:
    sim.url("vietcombank")                     # http://127.0.0.1:PORT/Usercontrols/...
    sim.set_faults("vietcombank", [Fault.status(503), Fault.reset()], repeat_last=False)
    sim.set_payload("vietcombank", b"...", content_type="text/xml")
    sim.set_validators("vietcombank", etag='"v1"', last_modified="Mon, ...")
    sim.set_rewrite("vietcombank", lambda body: body.replace(b"...", b"..."))  # hostile variants
    sim.request_count("vietcombank"); sim.requests("vietcombank"); sim.reset_counts()
    sim.answers("vietcombank")                 # what each request was answered (status, kind, at)
    sim.stop()                                 # returns within ~1 s, even with hung clients

Faults (``Fault.<name>(...)``): ``latency(s)``, ``status(code, retry_after=None, body=b"")``,
``html_error()``, ``empty()``, ``truncated(fraction=0.5)``, ``trickle(bytes_per_second=1)``,
``reset()``, ``hang()``, ``huge(size_bytes)``, ``garbage()``, ``payload(body, status=200,
headers=None)``, ``bomb(size_bytes, layers=1)`` (zeros, gzip-compressed ``layers`` times and
sent with ``Content-Encoding: gzip[, gzip...]``: 1 GiB is ~1 MB on the wire for one layer,
~2 KB for two).  Each request takes the next fault of its endpoint's script; when the
script is used up, answers are normal (or the last fault repeats, with ``repeat_last``).

A request whose head exceeds ``MAX_HEAD`` bytes (8 KiB, like nginx and IIS) is answered
``400`` without taking a fault, as real servers refuse an oversized validator sent back.
Header values that are not Latin-1 go out as UTF-8 bytes (a hostile ``Last-Modified``).

Run alone: ``python -m feeds.testing.upstream [--port N] [--fault ENDPOINT=KIND[:ARG]]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import functools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ENDPOINTS", "MAX_HEAD", "Fault", "RecordedAnswer", "RecordedRequest", "UpstreamSimulator", "gzip_bomb", "main"]

ENDPOINTS: dict[str, str] = {
    "vietcombank": "/Usercontrols/TVPortal.TyGia/pXML.aspx",
    "open-meteo": "/v1/forecast",
    "met-no": "/weatherapi/locationforecast/2.0/compact",
}

#: The longest request head answered normally; longer ones get a 400 (nginx's default buffer).
MAX_HEAD = 8192

HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Server Error in '/' Application.</h1>"
    b"<p>The remote name could not be resolved: 'www.vietcombank.com.vn'</p></body></html>\n"
)


def _payload(name: str) -> bytes:
    return files("feeds.testing").joinpath(f"payloads/{name}").read_bytes()


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for one request."""

    kind: str
    seconds: float = 0.0
    status_code: int = 200
    retry_after: str | None = None
    body: bytes | None = None
    fraction: float = 0.5
    rate: float = 1.0
    size: int = 0
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        return cls("latency", seconds=seconds)

    @classmethod
    def status(cls, code: int, retry_after: str | int | None = None, body: bytes = b"") -> Fault:
        return cls("status", status_code=code, retry_after=None if retry_after is None else str(retry_after), body=body)

    @classmethod
    def html_error(cls) -> Fault:
        return cls("html_error")

    @classmethod
    def empty(cls) -> Fault:
        return cls("empty")

    @classmethod
    def truncated(cls, fraction: float = 0.5) -> Fault:
        return cls("truncated", fraction=fraction)

    @classmethod
    def trickle(cls, bytes_per_second: float = 1.0) -> Fault:
        return cls("trickle", rate=bytes_per_second)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def hang(cls) -> Fault:
        return cls("hang")

    @classmethod
    def huge(cls, size_bytes: int) -> Fault:
        return cls("huge", size=size_bytes)

    @classmethod
    def garbage(cls) -> Fault:
        return cls("garbage")

    @classmethod
    def bomb(cls, size_bytes: int, layers: int = 1) -> Fault:
        return cls("bomb", size=size_bytes, fraction=float(layers))

    @classmethod
    def payload(cls, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Fault:
        return cls("payload", body=body, status_code=status, headers=tuple((headers or {}).items()))

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``KIND[:ARG]`` as given on the command line (``status:503``, ``latency:2``)."""
        kind, _, arg = text.partition(":")
        if kind == "status":
            return cls.status(int(arg or 500))
        if kind == "latency":
            return cls.latency(float(arg or 1))
        if kind == "truncated":
            return cls.truncated(float(arg or 0.5))
        if kind == "trickle":
            return cls.trickle(float(arg or 1))
        if kind == "huge":
            return cls.huge(int(arg or 10_000_000))
        if kind == "bomb":  # bomb:SIZE[:LAYERS]
            size, _, layers = (arg or str(1 << 30)).partition(":")
            return cls.bomb(int(size), int(layers or 1))
        if kind in ("html_error", "empty", "reset", "hang", "garbage"):
            return getattr(cls, kind)()  # type: ignore[no-any-return]
        raise ValueError(f"unknown fault {kind!r}")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the simulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass(frozen=True)
class RecordedAnswer:
    """What the simulator answered to one request.

    ``kind``: ``normal`` (the endpoint's own answer), ``not_modified`` (a 304),
    ``rewritten`` (the normal answer through ``set_rewrite``), ``too_large`` (the 400 for an
    oversized head), ``missing_ua`` (met-no's 403), ``bad_query`` (open-meteo's 400) or the
    fault's kind.  ``retry_after`` is the header sent with it, if any; ``at`` is
    ``time.monotonic()`` when the answer was decided.
    """

    status: int
    kind: str
    at: float
    retry_after: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    #: The extra headers the answer carried (``ETag``, ``Last-Modified``, ``Expires``...).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Endpoint:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    faults: list[Fault] = field(default_factory=list)
    repeat_last: bool = False
    etag: str | None = None
    last_modified: str | None = None
    expires_in: float | None = None
    #: Vietcombank's recorded table: its DateTime is rewritten to now (a live bank's table is
    #: current; a 2022 one would be a frozen upstream).  Off once a test sets its own payload.
    stamp_now: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    answers: list[RecordedAnswer] = field(default_factory=list)
    #: Applied to every normal 200 body (hostile variants of a real answer); None = off.
    rewrite: Callable[[bytes], bytes] | None = None


_BOMBS: dict[tuple[int, int], bytes] = {}


def gzip_bomb(size: int, layers: int = 1) -> bytes:
    """``size`` zero bytes gzip-compressed ``layers`` times (built in steps, cached)."""
    key = (size, layers)
    if key not in _BOMBS:
        import zlib

        c = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        zeros = bytes(1 << 20)
        parts = []
        left = size
        while left > 0:
            parts.append(c.compress(zeros[: min(left, len(zeros))]))
            left -= len(zeros)
        parts.append(c.flush())
        data = b"".join(parts)
        for _ in range(layers - 1):
            c = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            data = c.compress(data) + c.flush()
        _BOMBS[key] = data
    return _BOMBS[key]


def _stamp_vcb(body: bytes, now: float | None = None) -> bytes:
    """The table with ``<DateTime>`` set to the current Vietnam time, in the bank's format."""
    import re

    t = time.gmtime((time.time() if now is None else now) + 7 * 3600)
    hour = t.tm_hour % 12 or 12
    stamp = f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {hour}:{t.tm_min:02d}:{t.tm_sec:02d} {'PM' if t.tm_hour >= 12 else 'AM'}"
    return re.sub(rb"<DateTime>[^<]*</DateTime>", f"<DateTime>{stamp}</DateTime>".encode(), body, count=1)


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _latin1_or_utf8(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _snap(x: float) -> float:
    return round(x * 4) / 4


@functools.lru_cache(maxsize=512)
def _open_meteo_answer(latitude: str | None, longitude: str | None, hour: int) -> tuple[int, bytes]:
    """Open-Meteo's answer for the asked coordinates at ``hour`` (hours since the epoch, UTC+7)."""
    try:
        lats = [float(x) for x in (latitude or "").split(",")]
        lons = [float(x) for x in (longitude or "").split(",")]
        if len(lats) != len(lons) or not lats:
            raise ValueError
    except (KeyError, ValueError):
        err = {"error": True, "reason": "Parameter 'latitude' and 'longitude' must have the same number of elements"}
        return 400, json.dumps(err).encode()
    out = []
    for lat, lon in zip(lats, lons, strict=True):
        seed = abs(lat * 7.3 + lon * 3.1)
        t = round(18 + seed % 14, 1)
        code = [0, 1, 2, 3, 61, 80, 95][int(seed) % 7]
        out.append({
            "latitude": _snap(lat), "longitude": _snap(lon), "generationtime_ms": 0.07,
            "utc_offset_seconds": 25200, "timezone": "Asia/Ho_Chi_Minh", "timezone_abbreviation": "+07",
            "elevation": 10.0,
            "current_units": {"time": "iso8601", "interval": "seconds", "temperature_2m": "°C",
                              "apparent_temperature": "°C", "relative_humidity_2m": "%",
                              "wind_speed_10m": "km/h", "wind_direction_10m": "°",
                              "precipitation": "mm", "weather_code": "wmo code"},
            "current": {"time": time.strftime("%Y-%m-%dT%H:00", time.gmtime(hour * 3600)),
                        "interval": 900, "temperature_2m": t, "apparent_temperature": round(t + 2.5, 1),
                        "relative_humidity_2m": int(60 + seed % 35), "wind_speed_10m": round(seed % 20, 1),
                        "wind_direction_10m": int(seed * 10) % 360, "precipitation": 0.0 if code < 50 else 0.4,
                        "weather_code": code},
            "daily_units": {"time": "iso8601", "weather_code": "wmo code", "temperature_2m_max": "°C",
                            "temperature_2m_min": "°C", "precipitation_sum": "mm"},
            "daily": {
                "time": [time.strftime("%Y-%m-%d", time.gmtime(hour * 3600 + 86400 * i)) for i in range(3)],
                "weather_code": [code, 3, 61],
                "temperature_2m_max": [round(t + 4, 1), round(t + 3, 1), None],
                "temperature_2m_min": [round(t - 5, 1), round(t - 4, 1), round(t - 6, 1)],
                "precipitation_sum": [0.0, 1.2, 6.5],
            },
        })
    doc: Any = out[0] if len(out) == 1 else out
    return 200, json.dumps(doc, ensure_ascii=False).encode()


class UpstreamSimulator:
    """The simulator; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulator only listens on loopback")
        self.host = host
        self.port = port
        #: The wall clock the answers' own times follow (the bank's DateTime, Open-Meteo's
        #: current.time): a test driving a coordinator on a FakeClock sets it to that clock,
        #: since an upstream time more than a day past the coordinator's clock is refused.
        self.now: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._eps: dict[str, _Endpoint] = {
            "vietcombank": _Endpoint(
                _payload("vcb-2022-12-21-collapsed.xml"), "text/xml; charset=utf-8", stamp_now=True
            ),
            "open-meteo": _Endpoint(b"", "application/json; charset=utf-8"),
            "met-no": _Endpoint(
                _payload("metno-compact-2020-07-20-newyork-trimmed.json"),
                "application/json",
                last_modified=_http_date(time.time()),
                expires_in=1800.0,
            ),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> UpstreamSimulator:
        """Start serving in a background thread; return self."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._open())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="upstream-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("simulator did not start")
        return self

    async def _open(self) -> None:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving; hung and trickling connections are cut."""
        if self._loop is None:
            return
        loop = self._loop

        async def close() -> None:
            assert self._stopping is not None
            self._stopping.set()
            if self._server is not None:
                self._server.close()
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=1.0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            loop.close()
        self._loop = None

    def __enter__(self) -> UpstreamSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, endpoint: str) -> str:
        """The full URL of an endpoint (Vietcombank's with its usual ``?b=10``)."""
        path = ENDPOINTS[endpoint]
        return self.base_url + path + ("?b=10" if endpoint == "vietcombank" else "")

    def set_faults(self, endpoint: str, faults: Iterable[Fault], *, repeat_last: bool = False) -> None:
        with self._lock:
            ep = self._eps[endpoint]
            ep.faults = list(faults)
            ep.repeat_last = repeat_last

    def clear_faults(self, endpoint: str | None = None) -> None:
        for name in [endpoint] if endpoint else list(self._eps):
            self.set_faults(name, [])

    def set_payload(self, endpoint: str, body: bytes, content_type: str | None = None) -> None:
        with self._lock:
            self._eps[endpoint].body = body
            self._eps[endpoint].stamp_now = False
            if content_type:
                self._eps[endpoint].content_type = content_type

    def set_validators(self, endpoint: str, *, etag: str | None = None, last_modified: str | None = None) -> None:
        with self._lock:
            self._eps[endpoint].etag = etag
            self._eps[endpoint].last_modified = last_modified

    def set_rewrite(self, endpoint: str, rewrite: Callable[[bytes], bytes] | None) -> None:
        """Pass every normal 200 body of ``endpoint`` through ``rewrite`` (None: stop)."""
        with self._lock:
            self._eps[endpoint].rewrite = rewrite

    def answers(self, endpoint: str) -> list[RecordedAnswer]:
        """What each request to ``endpoint`` was answered, in order."""
        with self._lock:
            return list(self._eps[endpoint].answers)

    def _answered(self, name: str, query: dict[str, str], status: int, kind: str,
                  retry_after: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        with self._lock:
            self._eps[name].answers.append(
                RecordedAnswer(status, kind, time.monotonic(), retry_after, query, tuple(headers))
            )

    def set_expires(self, endpoint: str, seconds: float | None) -> None:
        with self._lock:
            self._eps[endpoint].expires_in = seconds

    def request_count(self, endpoint: str) -> int:
        with self._lock:
            return len(self._eps[endpoint].requests)

    def requests(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return list(self._eps[endpoint].requests)

    def reset_counts(self) -> None:
        with self._lock:
            for ep in self._eps.values():
                ep.requests.clear()
                ep.answers.clear()

    # -- serving -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                keep = await self._one(head, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        started = time.monotonic()
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        name = next((n for n, p in ENDPOINTS.items() if p == parts.path), None)
        if name is None:
            await self._send(writer, 404, b"not found\n", "text/plain")
            return True
        with self._lock:
            ep = self._eps[name]
            ep.requests.append(RecordedRequest(method, parts.path, query, headers, time.monotonic()))
        if len(head) > MAX_HEAD:
            self._answered(name, query, 400, "too_large")
            await self._send(writer, 400, b"Request Header Or Cookie Too Large\n", "text/plain")
            return True
        with self._lock:
            fault: Fault | None = None
            if ep.faults:
                fault = ep.faults[0] if (ep.repeat_last and len(ep.faults) == 1) else ep.faults.pop(0)
        if fault is not None and fault.kind != "latency":
            return await self._fault(fault, writer, name, query)
        # ``latency``: the answer starts that long after the request, its making included (an
        # upstream's latency is its whole time to answer; bench/scale.py measures against it).
        status, body, ctype, kind, extra = self._normal(name, query, headers)
        if fault is not None:
            await asyncio.sleep(max(0.0, fault.seconds - (time.monotonic() - started)))
        self._answered(name, query, status, kind, headers=extra)
        await self._send(writer, status, body, ctype, extra)
        return True

    def _normal(
        self, name: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, bytes, str, str, list[tuple[str, str]]]:
        """The normal answer: status, body, content type, kind (as recorded), extra headers."""
        with self._lock:
            ep = self._eps[name]
            body, ctype, etag, lm, exp = ep.body, ep.content_type, ep.etag, ep.last_modified, ep.expires_in
            rewrite = ep.rewrite
            if ep.stamp_now:
                body = _stamp_vcb(body, self.now())
        extra: list[tuple[str, str]] = []
        if etag:
            extra.append(("ETag", etag))
        if lm:
            extra.append(("Last-Modified", lm))
        if exp is not None:
            extra.append(("Expires", _http_date(time.time() + exp)))
        if (etag and headers.get("if-none-match") == etag) or (
            lm and not etag and headers.get("if-modified-since") == lm
        ):
            return 304, b"", ctype, "not_modified", extra
        status = 200
        if name == "open-meteo":
            status, body = self._open_meteo(query)
        if name == "met-no":
            if not headers.get("user-agent"):
                return 403, b"Forbidden: identify yourself (User-Agent)\n", "text/plain", "missing_ua", []
            body = self._met_no(body, query)
        kind = "normal" if status == 200 else "bad_query"
        if status == 200 and rewrite is not None:
            body, kind = rewrite(body), "rewritten"
        return status, body, ctype, kind, extra

    def _open_meteo(self, query: dict[str, str]) -> tuple[int, bytes]:
        # The answer changes with the hour only (its current.time, its days): made once per
        # query and hour, so ten answers asked at once are not made one after the other on
        # this one loop, each later than the upstream's latency (bench/scale.py, issue 20).
        hour = int((self.now() + 25200) // 3600)
        return _open_meteo_answer(query.get("latitude"), query.get("longitude"), hour)

    def _met_no(self, body: bytes, query: dict[str, str]) -> bytes:
        try:
            doc = json.loads(body)
            lat, lon = float(query["lat"]), float(query["lon"])
        except (ValueError, KeyError):
            return body
        if isinstance(doc, dict) and isinstance(doc.get("geometry"), dict):
            alt = (doc["geometry"].get("coordinates") or [0, 0, 0])[2:]
            doc["geometry"]["coordinates"] = [lon, lat, *alt]
        return json.dumps(doc).encode()

    async def _fault(self, fault: Fault, writer: asyncio.StreamWriter, name: str,
                     query: dict[str, str] | None = None) -> bool:
        with self._lock:
            normal = self._eps[name].body or b'{"ok": true}'
            ctype = self._eps[name].content_type
        k = fault.kind
        self._answered(name, query or {}, fault.status_code if k in ("status", "payload") else 200, k,
                       fault.retry_after if k == "status" else None)
        if k == "status":
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            await self._send(writer, fault.status_code, fault.body or b"", "text/plain", extra)
            return True
        if k == "html_error":
            await self._send(writer, 200, HTML_ERROR, "text/html; charset=utf-8")
            return True
        if k == "empty":
            await self._send(writer, 200, b"", ctype)
            return True
        if k == "garbage":
            await self._send(writer, 200, bytes((i * 37 + 11) % 256 for i in range(2048)), ctype)
            return True
        if k == "payload":
            await self._send(writer, fault.status_code, fault.body or b"", ctype, list(fault.headers))
            return True
        if k == "truncated":
            cut = max(1, int(len(normal) * fault.fraction))
            writer.write(self._head(200, len(normal), ctype, []) + normal[:cut])
            await writer.drain()
            return False  # then close: the client sees an incomplete body
        if k == "trickle":
            writer.write(self._head(200, len(normal), ctype, []))
            await writer.drain()
            for i in range(len(normal)):
                writer.write(normal[i : i + 1])
                await writer.drain()
                await asyncio.sleep(1.0 / max(fault.rate, 0.001))
            return True
        if k == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends RST, so the client sees a connection reset.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if k == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            return False
        if k == "bomb":
            layers = max(1, int(fault.fraction))
            data = gzip_bomb(fault.size, layers)
            enc = ", ".join(["gzip"] * layers)
            await self._send(writer, 200, data, ctype, [("Content-Encoding", enc)])
            return True
        if k == "huge":
            writer.write(self._head(200, fault.size, ctype, []))
            chunk = b"a" * 65536
            sent = 0
            while sent < fault.size:
                part = chunk[: min(len(chunk), fault.size - sent)]
                writer.write(part)
                await writer.drain()
                sent += len(part)
            return True
        raise ValueError(f"unknown fault {k!r}")

    @staticmethod
    def _head(status: int, length: int, ctype: str, extra: list[tuple[str, str]]) -> bytes:
        reason = {200: "OK", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                  408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error",
                  502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {_http_date(time.time())}", "Server: portal-feeds-simulator"]
        if status != 304:
            lines += [f"Content-Type: {ctype}", f"Content-Length: {length}"]
        lines += [f"{k}: {v}" for k, v in extra]
        # Latin-1 where it can be (HTTP's historical charset), else the UTF-8 bytes.
        return b"".join(_latin1_or_utf8(line) + b"\r\n" for line in lines) + b"\r\n"

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str,
                    extra: list[tuple[str, str]] | None = None) -> None:
        writer.write(self._head(status, len(body), ctype, extra or []) + (b"" if status == 304 else body))
        await writer.drain()


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C."""
    p = argparse.ArgumentParser(prog="python -m feeds.testing.upstream", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--fault", action="append", default=[], metavar="ENDPOINT=KIND[:ARG]",
                   help="repeat a fault on an endpoint, e.g. vietcombank=status:503")
    args = p.parse_args(argv)
    sim = UpstreamSimulator(port=args.port).start()
    for spec in args.fault:
        ep, _, f = spec.partition("=")
        sim.set_faults(ep, [Fault.parse(f)], repeat_last=True)
    for name in ENDPOINTS:
        print(f"{name:12} {sim.url(name)}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
