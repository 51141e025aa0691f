"""Logging for the journal: plain lines on stdout, ``<N>`` priority prefixes under systemd.

When ``JOURNAL_STREAM`` names the device and inode of our stdout, systemd's journal reads
``<N>`` at the start of each line as its syslog priority (sd-daemon(3)); elsewhere lines
are plain.  No timestamps: journald adds them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["JournalFormatter", "setup_logging", "stdout_is_journal"]

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def stdout_is_journal(environ: Mapping[str, str] = os.environ, stream: Any = None) -> bool:
    """Whether stdout is the journal stream systemd connected us to."""
    value = environ.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    stream = stream or sys.stdout
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    dev, _, ino = value.partition(":")
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


class JournalFormatter(logging.Formatter):
    """``<N>name: message``: the prefix is the syslog priority of the record's level."""

    def format(self, record: logging.LogRecord) -> str:
        level = max((lv for lv in _PRIORITY if lv <= record.levelno), default=logging.DEBUG)
        return f"<{_PRIORITY[level]}>" + super().format(record)


class _StdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout``/``sys.stderr`` is at emit time (tests swap them)."""

    def __init__(self, name: str) -> None:
        super().__init__(getattr(sys, name))
        self._name = name

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = getattr(sys, self._name)
        super().emit(record)


def setup_logging(
    level: int = logging.INFO, environ: Mapping[str, str] = os.environ, *, stream: TextIO | None = None
) -> None:
    """Send ``feeds.*`` logs to stdout (or ``stream``), journal-aware."""
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream not in (None, sys.stdout, sys.stderr)
        else _StdHandler("stderr" if stream is sys.stderr else "stdout")
    )
    fmt = "%(levelname)s %(name)s: %(message)s"
    if stream is None and stdout_is_journal(environ):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("feeds")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
