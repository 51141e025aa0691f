"""The configuration's URL check, without httpx: what ``httpx.URL(url)`` then
``httpx.Request("GET", url)`` accept, refuse, and say when they refuse.

Loading httpx (with the click/rich of a developer's venv, its command line) was a third of a
daemon's start to READY=1, and only the configuration needed it before the first fetch
(issue 20).  This module follows httpx's own parser (``httpx/_urlparse.py``, RFC 3986 with
the WHATWG percent-encode sets) step by step, in the same order, for an absolute
``http(s)://`` URL, so that a URL refused here is refused by httpx with the same sentence, and
the other way round; ``tests/test_urlcheck.py`` holds the two side by side on generated URLs.
Only what can fail is kept: the percent-encoding itself (which cannot fail but on a lone
surrogate) is not done.  IDNA host names go through the ``idna`` package, as in httpx,
imported only for them.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["InvalidURL", "MAX_URL_LENGTH", "parse_host_port"]

#: httpx's ``MAX_URL_LENGTH``.
MAX_URL_LENGTH = 65536

# httpx/_urlparse.py: URL_REGEX and AUTHORITY_REGEX (they always match).
_URL = re.compile(
    r"(?:(?P<scheme>([a-zA-Z][a-zA-Z0-9+.-]*)?):)?"
    r"(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?:#(?P<fragment>.*))?"
)
_AUTHORITY = re.compile(r"(?:(?P<userinfo>.*)@)?(?P<host>(\[.*\]|[^:@]*)):?(?P<port>.*)?")
_IPV4_STYLE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_IPV6_STYLE = re.compile(r"^\[.*\]$")
_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}
_PERCENT_ENCODED = re.compile("%[A-Fa-f0-9]{2}")
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
#: An ASCII host's safe characters: RFC 3986's sub-delims and the WHATWG's.
_HOST_SAFE = "!$&'()*+,;=" + '"`{}%|\\'


class InvalidURL(ValueError):
    """A URL httpx refuses (its ``httpx.InvalidURL``); the message is httpx's."""


def parse_host_port(url: str) -> tuple[str, int | None]:
    """The host (as ``httpx.URL(url).host``: lowercase, IDNA decoded, IPv6 without brackets)
    and the port (``None`` when absent or the scheme's default) of ``url``.

    Raises ``ValueError`` (``InvalidURL``, or the ``idna`` package's and the codecs' own
    errors, which httpx lets through) where httpx raises one.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL("URL too long")
    for idx, char in enumerate(url):
        if char.isascii() and not char.isprintable():
            raise InvalidURL(f"Invalid non-printable ASCII character in URL, {char!r} at position {idx}.")
    m = _URL.match(url)
    assert m is not None
    scheme = m.group("scheme") or ""
    authority = m.group("authority") or ""
    path = m.group("path") or ""
    a = _AUTHORITY.match(authority)
    assert a is not None
    userinfo = a.group("userinfo") or ""
    host = a.group("host") or ""
    port = a.group("port")

    _encodable(userinfo)
    raw_host = _encode_host(host)
    parsed_port = _normalize_port(port, scheme.lower())
    has_scheme = scheme != ""
    has_authority = userinfo != "" or raw_host != "" or parsed_port is not None
    _validate_path(path, has_scheme=has_scheme, has_authority=has_authority)
    if has_scheme or has_authority:
        path = _normalize_path(path)
    _encodable(path)
    _encodable(m.group("query") or "")
    _encodable(m.group("fragment") or "")

    # httpx.Request: the Host header is ``URL.netloc`` (ASCII), read when ``URL.host`` is not
    # empty; ``URL.host`` decodes an ``xn--`` host with idna.
    decoded = raw_host
    if raw_host.startswith("xn--"):
        import idna

        decoded = idna.decode(raw_host)
    if decoded:
        netloc = f"[{raw_host}]" if ":" in raw_host else raw_host
        netloc += f":{parsed_port}" if parsed_port is not None else ""
        netloc.encode("ascii")
    return decoded, parsed_port


def _encodable(text: str) -> None:
    """httpx percent-encodes every part as UTF-8: only a lone surrogate cannot be."""
    for char in text:
        if "\ud800" <= char <= "\udfff":
            char.encode("utf-8")  # raises UnicodeEncodeError, httpx's very message


def _quote(text: str, safe: str) -> str:
    """httpx's ``quote``: percent-encode what is not safe, keeping ``%xx`` as it is."""
    keep = _UNRESERVED + safe
    parts: list[str] = []
    at = 0
    for m in _PERCENT_ENCODED.finditer(text):
        parts.append(_percent(text[at:m.start()], keep))
        parts.append(m.group(0))
        at = m.end()
    parts.append(_percent(text[at:], keep))
    return "".join(parts)


def _percent(text: str, keep: str) -> str:
    if not text.rstrip(keep):
        return text
    return "".join(c if c in keep else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in text)


def _encode_host(host: str) -> str:
    """httpx's ``encode_host``: the host as the URL keeps it (IDNA encoded)."""
    if not host:
        return ""
    if _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if _IPV6_STYLE.match(host):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    if host.isascii():
        return _quote(host.lower(), _HOST_SAFE)
    import idna

    try:
        encoded: bytes = idna.encode(host.lower())
    except idna.IDNAError:
        raise InvalidURL(f"Invalid IDNA hostname: {host!r}") from None
    return encoded.decode("ascii")


def _normalize_port(port: str | None, scheme: str) -> int | None:
    if port is None or port == "":
        return None
    try:
        as_int = int(port)  # as httpx: "+80", "0080", "8_0" and other digits are ports too
    except ValueError:
        raise InvalidURL(f"Invalid port: {port!r}") from None
    return None if as_int == _DEFAULT_PORTS.get(scheme) else as_int


def _validate_path(path: str, *, has_scheme: bool, has_authority: bool) -> None:
    if has_authority and path and not path.startswith("/"):
        raise InvalidURL("For absolute URLs, path must be empty or begin with '/'")
    if not has_scheme and not has_authority:
        if path.startswith("//"):
            raise InvalidURL("Relative URLs cannot have a path starting with '//'")
        if path.startswith(":"):
            raise InvalidURL("Relative URLs cannot have a path starting with ':'")


def _normalize_path(path: str) -> str:
    """Drop "." and ".." segments (a segment dropped is never encoded)."""
    if "." not in path:
        return path
    components = path.split("/")
    if "." not in components and ".." not in components:
        return path
    output: list[str] = []
    for component in components:
        if component == ".":
            pass
        elif component == "..":
            if output and output != [""]:
                output.pop()
        else:
            output.append(component)
    return "/".join(output)
