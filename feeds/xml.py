"""The one hardened XML parser every XML source uses.

lxml is told never to resolve entities, load a DTD, touch the network or build huge trees,
and any document carrying a DOCTYPE with an internal subset is refused outright: a feed
answer has no use for one, and that is where billion-laughs and XXE payloads live.  Every
failure leaves as ``InvalidPayloadError`` with a short reason of ours.
"""

from __future__ import annotations

from lxml import etree

from feeds.errors import InvalidPayloadError

__all__ = ["parse_xml"]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(body: bytes) -> etree._Element:
    """Parse ``body`` safely and return the root element, or raise InvalidPayloadError."""
    if not body or not body.strip():
        raise InvalidPayloadError("empty body", detail="empty")
    head = body[:4096]
    if b"<html" in head.lower():
        raise InvalidPayloadError("an HTML page, not the XML document", detail="html")
    # Any DOCTYPE (in any encoding lxml may see) is refused before parsing.
    for marker in (b"<!DOCTYPE", b"<\x00!\x00D\x00O\x00C\x00T\x00Y\x00P\x00E\x00", b"<!ENTITY"):
        if marker in head or marker in body:
            raise InvalidPayloadError("document type declarations are not accepted", detail="doctype")
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError:
        raise InvalidPayloadError("not well-formed XML", detail="malformed") from None
    except ValueError:
        raise InvalidPayloadError("not well-formed XML", detail="malformed") from None
    if root is None:
        raise InvalidPayloadError("no root element", detail="malformed")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidPayloadError("document type declarations are not accepted", detail="doctype")
    return root
