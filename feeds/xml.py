"""The one hardened XML parser every XML source uses.

Two independent guards keep entity tricks out:

1. The parser itself: lxml is told never to substitute entities, load a DTD, validate,
   touch the network or build huge trees, so a billion-laughs body stops at libxml2's
   amplification limit and an external entity (``SYSTEM "file:///etc/passwd"``) is never
   opened.
2. Our own refusal of any DOCTYPE: a feed answer has no use for one, and it is where every
   entity payload lives.  The prolog is scanned before parsing (UTF-8, ASCII, UTF-16 with a
   BOM), so such a body never reaches libxml2's DTD code; the parsed tree's ``docinfo`` is
   checked afterwards for any encoding the scan cannot read.

Every failure leaves as ``InvalidPayloadError`` with a short reason of ours and a stable
``detail``: ``empty``, ``html``, ``doctype`` or ``malformed``.  libxml2's own message is
never passed on (it can quote the body).
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from feeds.errors import InvalidPayloadError

if TYPE_CHECKING:
    from lxml import etree

__all__ = ["parse_xml"]

#: How much of the body the prolog scan looks at; the docinfo check covers the rest.
_HEAD = 64 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_WHITESPACE = b" \t\r\n"


def _parser() -> etree.XMLParser:
    """Build a parser that cannot expand entities, read files or use the network."""
    from lxml import etree  # at the first parse: the daemon's start needs no XML parser

    # A new parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _ascii_head(body: bytes) -> bytes:
    """Return the start of ``body`` in an ASCII-compatible form, for the prolog scan.

    Leading whitespace is skipped first, however long: 100 KiB of spaces before a document
    is judged by the document (parsed, or ``malformed`` before an XML declaration), and a
    body of whitespace alone is ``empty``.  The whole body is bounded by ``max_body``.
    """
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    elif body.startswith(_UTF16_BOMS):
        # Cut to an even length so a half character at the end is not an error.
        text = body[: len(body) // 2 * 2].decode("utf-16", errors="replace")
        body = text.lstrip(" \t\r\n\x00")[:_HEAD].encode("utf-8", errors="replace")
    return body.lstrip(_WHITESPACE + b"\x00")[:_HEAD]


def _after_prolog(head: bytes) -> bytes:
    """Skip whitespace, the XML declaration, PIs and comments; return what follows."""
    # A plain loop, not a regex: nested lazy patterns backtrack badly on hostile input.
    pos = 0
    while True:
        while pos < len(head) and head[pos] in _WHITESPACE:
            pos += 1
        if head.startswith(b"<?", pos):
            end = head.find(b"?>", pos + 2)
        elif head.startswith(b"<!--", pos):
            end = head.find(b"-->", pos + 4)
        else:
            return head[pos:]
        if end < 0:
            return b""  # an unterminated prolog item: the parser will call it malformed
        pos = end + 2 if head[end] == ord("?") else end + 3


def _refuse_before_parsing(body: bytes) -> None:
    """Raise for an empty body, an HTML page or a DOCTYPE, without parsing anything."""
    head = _ascii_head(body)
    if not head:
        raise InvalidPayloadError("empty body", detail="empty")
    start = _after_prolog(head)[:16].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        raise InvalidPayloadError("an HTML page, not the XML document", detail="html")
    if start.startswith(b"<!doctype"):
        raise InvalidPayloadError("document type declarations are not accepted", detail="doctype")


def parse_xml(body: bytes) -> etree._Element:
    """Parse ``body`` safely and return the root element, or raise InvalidPayloadError."""
    _refuse_before_parsing(body)
    from lxml import etree

    try:
        root = etree.fromstring(body, parser=_parser())
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        # ValueError: lxml refuses some byte/encoding combinations before libxml2 sees them.
        raise InvalidPayloadError("not well-formed XML", detail="malformed") from None
    if root is None:  # lxml returns None when recover mode drops everything; kept as a guard
        raise InvalidPayloadError("no root element", detail="malformed")
    if etree.QName(root).localname.lower() == "html":
        raise InvalidPayloadError("an HTML page, not the XML document", detail="html")
    docinfo = root.getroottree().docinfo
    # The scan above cannot read every encoding (UTF-16 without a BOM, UTF-32, EBCDIC).
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url is not None:
        raise InvalidPayloadError("document type declarations are not accepted", detail="doctype")
    return root
