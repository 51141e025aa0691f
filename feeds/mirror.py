"""``<feed>.xml``: a drop-in mirror of Vietcombank's ``pXML.aspx`` (issue 22).

A portal whose code already reads the bank's XML (.NET ``XmlDocument.Load``, PHP
``simplexml_load_file``, ``xml_parse_into_struct``, xml2js, xmltodict) changes one URL and
reads this file instead: same document, from portal-feeds' last good data.

The shape is the bank's answer as it is served now (the 2026 samples in
shared/upstream-samples/; ``vcb-2026-06-18-partial.xml`` is reproduced byte for byte):

- the bank's comment line first, no XML declaration, no BOM, LF line ends, two-space
  indent, no newline after ``</ExrateList>``;
- ``<DateTime>`` in ``M/D/YYYY h:mm:ss AM|PM``, Vietnam time (UTC+7), from the table's own
  ``as_of`` -- never our fetch time.  A table without one gets an empty ``<DateTime>``
  (readers that ask for the element still find it; ours reads it as "no date");
- one ``<Exrate CurrencyCode CurrencyName Buy Transfer Sell />`` per rate, in the order the
  bank gave them, ``CurrencyName`` right-padded with spaces to 20 characters as the bank pads;
- amounts as the bank writes them (``25,850.00``: thousands separators, two decimals), and
  ``-`` where the bank quotes nothing.  A value with more than two decimals (never seen from
  the bank) keeps every digit: the mirror never rounds;
- ``<Source>`` as the bank writes it.

Only gated data reaches a snapshot's ``data``; a document without data (``unavailable``)
has no mirror.  ``publish_mirror`` is the one I/O function: it writes through
``feeds.publish.write_atomic`` (whole file or old file, never a mix) beside the snapshot.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from feeds.clock import VIETNAM_TZ

__all__ = [
    "BANK_COMMENT",
    "BANK_SOURCE",
    "MIRRORS",
    "NAME_WIDTH",
    "format_amount",
    "format_datetime",
    "mirror_bytes",
    "publish_mirror",
]

#: The values of ``mirror = "..."`` in a rates feed.
MIRRORS = ("vietcombank-xml",)
#: The bank's own first line.
BANK_COMMENT = "<!--For reference only. Only one request every 5 minutes!-->"
BANK_SOURCE = "Joint Stock Commercial Bank for Foreign Trade of Vietnam - Vietcombank"
#: ``CurrencyName="US DOLLAR           "``: right-padded to 20 characters.
NAME_WIDTH = 20
_NOT_QUOTED = "-"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


def _attr(text: str) -> str:
    """``text`` as a double-quoted attribute value (the snapshot's names are already clean)."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def format_amount(value: object) -> str:
    """``Decimal("25850")`` -> ``"25,850.00"``; None -> ``"-"``; extra decimals kept, never rounded."""
    if value is None:
        return _NOT_QUOTED
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise TypeError(f"not an amount: {value!r}")
    amount = Decimal(str(value))  # str: a float's shortest text, not its binary expansion
    if not amount.is_finite():
        raise ValueError("non-finite amount")
    exponent = amount.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return format(amount, f",.{places}f")


def format_datetime(moment: datetime) -> str:
    """An aware datetime as the bank writes it: ``6/18/2026 3:53:15 PM`` (Vietnam time)."""
    local = moment.astimezone(VIETNAM_TZ)
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return f"{local.month}/{local.day}/{local.year} {hour}:{local:%M:%S} {half}"


def mirror_bytes(document: Mapping[str, Any]) -> bytes | None:
    """The ``pXML.aspx`` document for a rates snapshot, or None when it has no data."""
    data = document.get("data")
    if document.get("kind") != "exchange_rates" or not isinstance(data, Mapping):
        return None
    rates = data.get("rates") or []
    if not rates:
        return None
    as_of = document.get("as_of")
    when = format_datetime(datetime.fromisoformat(as_of)) if as_of else ""
    lines = [BANK_COMMENT, "<ExrateList>", f"  <DateTime>{when}</DateTime>"]
    for rate in rates:
        lines.append(
            f'  <Exrate CurrencyCode="{_attr(rate["code"])}"'
            f' CurrencyName="{_attr(rate["name"].ljust(NAME_WIDTH))}"'
            f' Buy="{format_amount(rate["buy_cash"])}"'
            f' Transfer="{format_amount(rate["buy_transfer"])}"'
            f' Sell="{format_amount(rate["sell"])}" />'
        )
    lines += [f"  <Source>{BANK_SOURCE}</Source>", "</ExrateList>"]
    return "\n".join(lines).encode("utf-8")


def publish_mirror(path: Path, mirror: str | None, document: Mapping[str, Any]) -> None:
    """Write, keep or remove ``path`` (``<feed>.xml``) for one published snapshot.

    - mirror on, data: written atomically (fresh, stale and expired alike: the table's
      ``DateTime`` tells its age);
    - mirror on, no data (``unavailable``): nothing written, nothing removed -- a file left
      by an earlier life of the feed is gated data with a true ``DateTime``, like ``expired``;
      with no file an old widget gets 404 and shows its own "no data";
    - mirror off: a file written while it was on is removed, so a table frozen at the day
      the setting changed is not served for ever.
    """
    from feeds import watch
    from feeds.publish import write_atomic

    if mirror is None:
        # Look before unlinking: unlink() of a file that is not there still fails with EROFS
        # on a read-only folder, and most rates feeds never had a mirror.
        if os.path.lexists(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            watch.forget(path)
        return
    body = mirror_bytes(document)
    if body is not None:
        write_atomic(path, body)
