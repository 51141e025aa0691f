"""The hardened XML parser: entity bombs and XXE refused fast with no file read, any encoding."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from feeds.errors import InvalidPayloadError
from feeds.xml import _parser, parse_xml

FIX = Path(__file__).parent / "fixtures" / "vietcombank"
SECRET = "root:x:0:0:SENTINEL-7f3a"
#: A prolog longer than the pre-parse scan reads, so only the parser and docinfo guard.
LONG_COMMENT = b"<!--" + b"x" * (70 * 1024) + b"-->"


def refused(body: bytes) -> InvalidPayloadError:
    """Parse ``body``, expect a refusal, and return it."""
    with pytest.raises(InvalidPayloadError) as ei:
        parse_xml(body)
    err = ei.value
    assert err.kind == "invalid_payload"
    assert err.__cause__ is None and (
        err.__context__ is None or err.__suppress_context__
    )  # no foreign text attached
    return err


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(SECRET + "\n")
    return path


def xxe(secret: Path) -> str:
    """Return an XXE document whose DateTime is an external entity naming ``secret``."""
    return (
        f'<!DOCTYPE ExrateList [ <!ENTITY xxe SYSTEM "file://{secret}"> ]>'
        "<ExrateList><DateTime>&xxe;</DateTime></ExrateList>"
    )


def bomb(levels: int = 9) -> str:
    """Return a billion-laughs document (10**levels expansions)."""
    ents = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, levels + 1)
    ]
    return f"<!DOCTYPE a [{''.join(ents)}]><a>&l{levels};</a>"


# --- hostile documents -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["billion-laughs.xml", "xxe.xml"])
def test_hostile_fixtures_refused_quickly(name: str) -> None:
    t0 = time.process_time()
    err = refused((FIX / name).read_bytes())
    assert time.process_time() - t0 < 0.5
    assert err.detail == "doctype"
    assert "root:" not in repr(err) and "lol" not in repr(err)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda s: s.encode(), id="utf-8"),
        pytest.param(lambda s: codecs.BOM_UTF8 + s.encode(), id="utf-8-bom"),
        pytest.param(lambda s: s.encode("utf-16"), id="utf-16-bom"),
        pytest.param(
            lambda s: ('<?xml version="1.0" encoding="UTF-16BE"?>' + s).encode("utf-16-be"),
            id="utf-16be-no-bom",  # the pre-parse scan cannot read it: docinfo must catch it
        ),
        pytest.param(lambda s: LONG_COMMENT + s.encode(), id="doctype-after-64k"),
    ],
)
def test_xxe_refused_without_reading_the_file(
    secret_file: Path, encode: Callable[[str], bytes]
) -> None:
    body = encode(xxe(secret_file))
    t0 = time.process_time()
    err = refused(body)
    assert time.process_time() - t0 < 0.5
    assert err.detail == "doctype"
    assert "root:" not in repr(err) and "SENTINEL" not in repr(err)


def test_the_parser_alone_never_expands_or_reads(secret_file: Path) -> None:
    # The second guard on its own: even a parser fed the DOCTYPE keeps &xxe; unexpanded.
    doc = f'<!DOCTYPE a [ <!ENTITY xxe SYSTEM "file://{secret_file}"> ]><a>&xxe;</a>'
    out = etree.tostring(etree.fromstring(doc.encode(), _parser())).decode()
    assert "SENTINEL" not in out and "root:" not in out and "&xxe;" in out


def test_the_parser_alone_refuses_external_entity_in_attribute(secret_file: Path) -> None:
    doc = f'<!DOCTYPE a [ <!ENTITY xxe SYSTEM "file://{secret_file}"> ]><a b="&xxe;"/>'
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(doc.encode(), _parser())


def test_parameter_entity_never_loaded(secret_file: Path) -> None:
    doc = f'<!DOCTYPE a [ <!ENTITY % p SYSTEM "file://{secret_file}"> %p; ]><a/>'
    assert refused(LONG_COMMENT + doc.encode()).detail == "doctype"
    root = etree.fromstring(doc.encode(), _parser())
    assert "SENTINEL" not in etree.tostring(root.getroottree()).decode()


@pytest.mark.parametrize("prefix", [b"", LONG_COMMENT], ids=["scan", "parser"])
def test_billion_laughs_is_fast_on_both_guards(prefix: bytes) -> None:
    t0 = time.process_time()
    refused(prefix + bomb().encode())
    assert time.process_time() - t0 < 0.5


def test_external_dtd_refused_without_network() -> None:
    body = b'<!DOCTYPE ExrateList SYSTEM "http://192.0.2.1/x.dtd"><ExrateList/>'
    t0 = time.monotonic()
    assert refused(body).detail == "doctype"
    assert refused(LONG_COMMENT + body).detail == "doctype"
    assert time.monotonic() - t0 < 0.5  # nothing tried to connect


# --- broken bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty"),
        (b"  \r\n\t", "empty"),
        (codecs.BOM_UTF8, "empty"),
        ("  ".encode("utf-16"), "empty"),
        ((FIX / "empty.xml").read_bytes(), "empty"),
        ((FIX / "truncated.xml").read_bytes(), "malformed"),
        ((FIX / "html-error-page.html").read_bytes(), "html"),
        (b"<HTML><BODY>503 Service Unavailable<br></BODY></HTML>", "html"),
        (b"<!-- x --><!doctype html><p>hi", "html"),
        (b"<html><body><p>Well-formed XHTML</p></body></html>", "html"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "html"),
        (b'{"error": true, "reason": "x"}', "malformed"),
        (bytes((i * 37 + 11) % 256 for i in range(2048)), "malformed"),
        (b"<a><b></a>", "malformed"),
        (b'<?xml version="1.0" encoding="no-such-charset"?><a/>', "malformed"),
        (b"<a>\xff\xfe</a>", "malformed"),  # not UTF-8
        (b"<?xml version='1.0'", "malformed"),
        (b"<!-- never closed", "malformed"),
    ],
)
def test_broken_bodies(body: bytes, detail: str) -> None:
    err = refused(body)
    assert err.detail == detail
    for foreign in ("line ", "column", "Error", "Lỗi", "Opening and ending"):
        assert foreign not in err.message


# --- what must still parse -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('<ExrateList n="Đô la"/>'.encode(), id="no-declaration"),
        pytest.param(
            '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\r\n<ExrateList n="Đô la"/>'.encode(),
            id="utf-8-declared",
        ),
        pytest.param(codecs.BOM_UTF8 + '<ExrateList n="Đô la"/>'.encode(), id="utf-8-bom"),
        pytest.param(
            '<?xml version="1.0" encoding="utf-16"?><ExrateList n="Đô la"/>'.encode("utf-16"),
            id="utf-16-bom",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE
            + '<?xml version="1.0" encoding="UTF-16"?><ExrateList n="Đô la"/>'.encode("utf-16-be"),
            id="utf-16be-bom",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="windows-1258"?><ExrateList n="Đô la"/>'.encode("cp1258"),
            id="windows-1258",
        ),
    ],
)
def test_any_encoding_declaration(body: bytes) -> None:
    root = parse_xml(body)
    assert root.tag == "ExrateList" and root.get("n") == "Đô la"


def test_utf16_fixture() -> None:
    root = parse_xml((FIX / "utf16-bom.xml").read_bytes())
    assert root.tag == "ExrateList" and root.findtext("DateTime") == "10/8/2015 7:09:09 AM"


def test_comments_and_pis_dropped() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!--For reference only. Only one request every 5 minutes!-->\n'
        b"<ExrateList><!--c--><?pi x?><DateTime>d</DateTime></ExrateList>"
    )
    root = parse_xml(body)
    assert [c.tag for c in root] == ["DateTime"]


def test_every_real_sample_parses() -> None:
    for path in sorted(FIX.glob("vcb-*.xml")):
        root = parse_xml(path.read_bytes())
        assert root.tag == "ExrateList" and root.find("Exrate") is not None, path.name
