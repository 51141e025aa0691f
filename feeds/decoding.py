"""Bounded ``Content-Encoding`` decoding: the upstream decides nothing unbounded.

httpx decodes ``gzip``/``deflate`` itself, without a bound on what one layer expands to and
for as many layers as the header lists (``gzip, gzip``: 1.8 KB on the wire, 1 GiB after
the second layer).  ``feeds.transport`` therefore reads the raw bytes of an answer
(``aiter_raw``, the wire size capped at ``max_body``) and decodes them here:

- at most ``MAX_LAYERS`` encodings (``identity`` does not count); more is
  ``invalid_payload/encoding``;
- each layer is decompressed in steps with ``decompressobj().decompress(data, max_length)``
  so that no layer's output can grow past ``max_body`` (+1 byte, to notice it): past it the
  answer is ``invalid_payload/too_large``, the rest never inflated;
- ``gzip``/``x-gzip``, ``deflate`` (zlib-wrapped or raw, both are seen in the wild) and
  ``identity`` are understood; anything else (``br``, ``zstd``: we never ask for them) is
  ``invalid_payload/encoding``, as is a corrupt or truncated compressed stream.

Peak memory is therefore bounded by a few times ``max_body`` whatever the layering.
"""

from __future__ import annotations

import zlib

from feeds.errors import InvalidPayloadError

__all__ = ["MAX_LAYERS", "decode_body", "parse_encodings"]

#: Encodings stacked on one answer that we accept to undo.
MAX_LAYERS = 3
#: How much compressed input is handed to the decompressor per step.
_STEP = 64 * 1024

_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS


def parse_encodings(header: str | None) -> list[str]:
    """``"gzip, gzip"`` -> ``["gzip", "gzip"]`` (applied in this order; undone in reverse).

    ``identity`` and empty items are dropped; names are compared case-insensitively.
    """
    if not header:
        return []
    out = []
    for item in header.split(","):
        name = item.strip().lower()
        if name and name != "identity":
            out.append(name)
    return out


def _too_large() -> InvalidPayloadError:
    return InvalidPayloadError("answer larger than max_body once decoded", detail="too_large")


def _bad() -> InvalidPayloadError:
    return InvalidPayloadError("the body's content encoding could not be decoded", detail="encoding")


def _inflate(data: bytes, wbits: int, max_body: int) -> bytes:
    """Undo one zlib-family layer; the output is never allowed past ``max_body``."""
    d = zlib.decompressobj(wbits)
    out = bytearray()
    pos = 0
    try:
        while True:
            if d.unconsumed_tail:
                chunk = d.unconsumed_tail
            elif pos < len(data) and not d.eof:
                chunk = data[pos : pos + _STEP]
                pos += len(chunk)
            else:
                break
            out += d.decompress(chunk, max_body + 1 - len(out))
            if len(out) > max_body:
                raise _too_large()
            if d.eof:
                break
        if not d.eof:  # truncated: the input ended inside the compressed stream
            raise _bad()
    except zlib.error:
        raise _bad() from None
    return bytes(out)


def _deflate(data: bytes, max_body: int) -> bytes:
    # RFC 9110 says zlib-wrapped; some servers send raw deflate.  The first two bytes tell.
    if len(data) >= 2 and (data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
        return _inflate(data, _ZLIB, max_body)
    return _inflate(data, _RAW, max_body)


def decode_body(body: bytes, content_encoding: str | None, max_body: int) -> bytes:
    """Undo ``content_encoding`` on ``body`` with every layer bounded by ``max_body``."""
    layers = parse_encodings(content_encoding)
    if not layers:
        return body
    if len(layers) > MAX_LAYERS:
        raise InvalidPayloadError("too many content encodings stacked", detail="encoding")
    for name in reversed(layers):
        if name in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP, max_body)
        elif name == "deflate":
            body = _deflate(body, max_body)
        else:
            raise _bad()
    return body
