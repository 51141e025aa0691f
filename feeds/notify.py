"""The systemd notify protocol (sd_notify(3)), standard library only.

A datagram of ``KEY=VALUE`` lines sent to the AF_UNIX socket named by ``NOTIFY_SOCKET``
(a path, or ``@name`` for the abstract namespace).  Text is UTF-8 end to end: our STATUS
lines are Vietnamese, and the ``sdnotify`` package drops non-Latin-1 text.  Without
``NOTIFY_SOCKET`` every call is a no-op, so the daemon runs the same outside systemd.
Sending never raises: a lost notification must not stop the service.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier"]

logger = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd's notify socket, if there is one."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        usec: int | None = None
        raw = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID")
        if raw.isdigit() and int(raw) > 0 and (pid is None or pid == str(os.getpid())):
            usec = int(raw)
        return cls(environ.get("NOTIFY_SOCKET") or None, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, **fields: str | int) -> bool:
        """Send one datagram of ``KEY=value`` lines; False if it could not be sent."""
        if not self.address:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\r", " ").replace("\n", " ")
            lines.append(f"{key}={text}")
        payload = "\n".join(lines).encode("utf-8")
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            # Non-blocking: a full receive queue drops this notification instead of
            # freezing the event loop (WATCHDOG pings come from inside it).
            flags = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            with socket.socket(socket.AF_UNIX, flags) as sock:
                sock.connect(addr)
                sock.sendall(payload)
        except OSError as exc:
            logger.debug("notify not sent error=%s", type(exc).__name__)
            return False
        return True

    def ready(self) -> bool:
        return self.send(READY=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def reloading(self) -> bool:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload).
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
