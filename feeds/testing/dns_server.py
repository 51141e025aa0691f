"""A small DNS server on 127.0.0.1 (UDP) for tests of the fallback nameservers.

Messages are parsed and built with dnspython, never by hand.  Per name it can answer A
records, NXDOMAIN, SERVFAIL, an empty NOERROR (no answer), or drop the query (the client
times out).

    with FakeDnsServer({"www.vietcombank.com.vn": ["127.0.0.1"]}) as dns:
        nameserver = f"127.0.0.1:{dns.address[1]}"
        dns.set_behaviour("www.vietcombank.com.vn", "servfail")
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["FakeDnsServer"]

BEHAVIOURS = ("answer", "nxdomain", "servfail", "noanswer", "drop")


class FakeDnsServer:
    """Answers A queries from a table; see the module docstring."""

    def __init__(self, records: dict[str, list[str]] | None = None) -> None:
        self._records = {self._key(k): list(v) for k, v in (records or {}).items()}
        self._behaviour: dict[str, str] = {}
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.query_count = 0

    @staticmethod
    def _key(name: str) -> str:
        return name.lower().rstrip(".") + "."

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def set(self, name: str, ips: list[str]) -> None:
        with self._lock:
            self._records[self._key(name)] = list(ips)

    def set_behaviour(self, name: str, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
        with self._lock:
            self._behaviour[self._key(name)] = behaviour

    def start(self) -> FakeDnsServer:
        self._thread = threading.Thread(target=self._run, name="fake-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> FakeDnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            with self._lock:
                self.query_count += 1
                reply = self._answer(query)
            if reply is not None:
                self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        name = q.name.to_text()
        behaviour = self._behaviour.get(name, "answer")
        if behaviour == "drop":
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.RA
        if behaviour == "servfail":
            resp.set_rcode(dns.rcode.SERVFAIL)
        elif behaviour == "nxdomain" or (behaviour == "answer" and name not in self._records):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        elif behaviour == "answer" and q.rdtype == dns.rdatatype.A and self._records[name]:
            resp.answer.append(
                dns.rrset.from_text_list(name, 60, dns.rdataclass.IN, dns.rdatatype.A, self._records[name])
            )
        # "noanswer", or an AAAA query for a known name: NOERROR with an empty answer.
        return resp
