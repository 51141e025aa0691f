"""The configuration's URL check without httpx (``feeds.urlcheck``, issue 20) accepts and refuses
exactly what the check built on ``httpx.URL`` and ``httpx.Request`` did, with the same sentence.

``httpx_url`` below is that check as it was in ``feeds.config`` (the reference); the URLs are
generated from parts chosen where httpx's parser branches: IPv4-looking hosts (leading zeros,
octets past 255), bracketed IPv6 (zones, garbage, a non-ASCII zone), IDNA names (valid,
invalid, ``xn--`` labels that do not decode), ASCII hosts with characters httpx
percent-encodes, ports as ``int()`` reads them ("+80", "8_0", Arabic-Indic digits, past
65535, negative), userinfo with several ``@``, paths with dot segments, and lone surrogates.
"""

from __future__ import annotations

import re
import unicodedata

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feeds import config
from feeds.config import ConfigError, _show


def httpx_url(value: object, key: str) -> str:
    """``feeds.config._url`` as it was before issue 20 (httpx parses)."""
    url = config._str(value, key)
    problem = None
    if not re.match(r"https?://[^/\s]+", url, re.ASCII):
        problem = "expected an http:// or https:// URL"
    elif any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        problem = "spaces and control characters are not allowed in a URL (write %20)"
    else:
        try:
            parsed = httpx.URL(url)
            httpx.Request("GET", parsed)  # encodes the host (IDNA) and the target
        except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors too
            problem = f"not a valid URL ({_show(str(exc))})"
        else:
            if not parsed.host or "%" in parsed.host:
                problem = "the URL has no valid host name"
            elif parsed.port is not None and not 1 <= parsed.port <= 65535:
                problem = f"port {parsed.port} is not from 1 to 65535"
    if problem:
        raise ConfigError(key, f"{problem}, got {_show(value)}")
    return url


def outcome(check: object, url: str) -> tuple[str, str]:
    try:
        return "accepted", check(url, "feeds.x.url")  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - the very exception is what is compared
        return type(exc).__name__, str(exc)


ODD = "%:@/.[]?#<>^`{}|\\\"'~_-+!$&()*,;=éÉßü中ą\u0300\u200d\ud800\udfff٨"
HOSTS = [
    "example.com", "EXAMPLE.org", "127.0.0.1", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
    "[::1]", "[::ffff:192.168.0.1]", "[::1%eth0]", "[fe80::1%é]", "[zz]", "[::1", "::1]", "[]",
    "xn--mller-kva.de", "xn--zz", "xn--", "xn--a.b", "a.xn--zz", "xn--<", "müller.de", "MÜLLER.DE",
    "中国.icom.museum", "é.", "ß.de", "\u0300x.vn", "a\u200db.vn", "a..b", "a_b.vn", "ex%41mple.vn",
    "ex%zzmple.vn", "a<b.vn", "a[b].vn", "a^b", "a|b", "-a.vn", "a" * 64 + ".vn", "é" * 70, "",
    "localhost", "\ud800.vn", "a\ud800",
]
PORTS = ["", "80", "443", "0", "1", "65535", "65536", "99999999999", "-1", "+80", "0080", "8_0",
         "٨٠", "８０", "x", "80:90", ":", "8 0"]
PART = st.text(alphabet=st.sampled_from(ODD + "abcXYZ019"), max_size=12)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "HTTP://", "http:/", "ftp://", ""]))
    userinfo = draw(st.one_of(st.just(""), PART.map(lambda s: s + "@")))
    host = draw(st.one_of(st.sampled_from(HOSTS), PART))
    port = draw(st.one_of(st.just(""), st.sampled_from(PORTS).map(lambda p: ":" + p)))
    path = draw(st.one_of(st.just(""), st.sampled_from(["/", "/a/./b/../c", "/\ud800/..", "/%zz", "/é"]), PART))
    tail = draw(st.one_of(st.just(""), PART.map(lambda s: "?" + s), PART.map(lambda s: "#" + s)))
    return scheme + userinfo + host + port + path + tail


@settings(max_examples=600, deadline=None, derandomize=True)
@given(urls())
@example("http://" + "a" * 70000)
@example("https://[fe80::1%25eth0]/")
@example("https://user:p@ss@host.vn:8080/x")
@example("https://müller.de:+443/./x/../y?q#f")
def test_same_acceptance_and_sentence_as_httpx(url: str) -> None:
    assert outcome(config._url, url) == outcome(httpx_url, url)


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("port", ["", ":8080", ":x", ":70000"])
def test_every_listed_host_as_httpx(host: str, port: str) -> None:
    url = f"https://{host}{port}/p"
    assert outcome(config._url, url) == outcome(httpx_url, url)


def test_both_accept_and_refuse_something() -> None:
    """The comparison is not vacuous: the listed hosts give both verdicts, several sentences."""
    verdicts = {outcome(config._url, f"https://{h}/")[0] for h in HOSTS}
    assert verdicts == {"accepted", "ConfigError"}
    sentences = {outcome(config._url, f"https://{h}/")[1].split(" (")[0] for h in HOSTS}
    assert len(sentences) > 5
