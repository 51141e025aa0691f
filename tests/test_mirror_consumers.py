"""Issue 22: the mirror read by the code portals run today, and served by the documented nginx.

Each consumer -- PHP's SimpleXML and ``xml_parse_into_struct`` (Debian's php-cli), Python's
ElementTree and xmltodict-style access -- reads the bank's own file and portal-feeds'
mirror of it, and must print the same table.  Consumers normalise as portal code does:
``trim`` the padded name, drop the thousands separator, read ``-``/empty/``0`` as "not
quoted".  For the 2026 format the raw strings are the same too (the bytes are).

Then the "Done when" of the issue end to end: nginx serves the bank's file as
``pXML.aspx``; ``portal-feeds fetch`` reads it and publishes ``exchange-rates.xml``; nginx
serves that through docs/deploy.md's location; a PHP snippet written for ``pXML.aspx``
prints the same table from both, with only its URL changed.

php-cli and nginx are required under ``CI`` (.ci/run installs them); elsewhere these skip.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from feeds.mirror import mirror_bytes
from feeds.sources.vietcombank import parse
from tests.helpers import vcb_fixture
from tests.test_mirror import SAMPLES, document

REPO = Path(__file__).resolve().parent.parent
PHP = shutil.which("php")
# SimpleXML and xml_parse_into_struct are in Debian's php-xml, beside php-cli.
if PHP and subprocess.run([PHP, "-r", 'exit(function_exists("simplexml_load_file") && function_exists("xml_parse_into_struct") ? 0 : 1);'],
                          capture_output=True, timeout=60).returncode != 0:
    PHP = None
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CI = bool(os.environ.get("CI"))


def _need(tool: str | None, name: str) -> str:
    if tool is None:
        if CI:
            pytest.fail(f"{name} is required under CI (.ci/run installs it)")
        pytest.skip(f"{name} not installed (apt-get install {name}; .ci/run installs it)")
    return tool


def _mirror_of(name: str) -> bytes:
    body = mirror_bytes(document(parse(vcb_fixture(name))))
    assert body is not None
    return body


# -- PHP ---------------------------------------------------------------------------------
#: Shared by both PHP consumers: how portal code turns the bank's strings into a table.
PHP_NORMALISE = r"""
function amount($v) {
    $v = str_replace(',', '', trim((string) $v));
    return ($v === '' || $v === '-' || (float) $v == 0) ? '-' : sprintf('%.6F', (float) $v);
}
function row($code, $name, $buy, $transfer, $sell) {
    printf("%s|%s|%s|%s|%s\n", $code, trim($name), amount($buy), amount($transfer), amount($sell));
}
"""
PHP_SIMPLEXML = "<?php\n" + PHP_NORMALISE + r"""
$xml = simplexml_load_file($argv[1]);
if ($xml === false) { echo "DỮ LIỆU BỊ LỖI\n"; exit(1); }
echo "DateTime=" . $xml->DateTime . "\n";
foreach ($xml->Exrate as $r) {
    row($r['CurrencyCode'], $r['CurrencyName'], $r['Buy'], $r['Transfer'], $r['Sell']);
}
echo "Source=" . $xml->Source . "\n";
"""
PHP_STRUCT = "<?php\n" + PHP_NORMALISE + r"""
$p = xml_parser_create();
if (!xml_parse_into_struct($p, file_get_contents($argv[1]), $vals, $index)) { echo "DỮ LIỆU BỊ LỖI\n"; exit(1); }
xml_parser_free($p);
echo "DateTime=" . $vals[$index['DATETIME'][0]]['value'] . "\n";
foreach ($index['EXRATE'] as $i) {
    $a = $vals[$i]['attributes'];
    row($a['CURRENCYCODE'], $a['CURRENCYNAME'], $a['BUY'], $a['TRANSFER'], $a['SELL']);
}
echo "Source=" . $vals[$index['SOURCE'][0]]['value'] . "\n";
"""
#: The same table printed raw, no normalising at all: for the 2026 format.
PHP_RAW = r"""<?php
$xml = simplexml_load_file($argv[1]);
echo $xml->DateTime, "\n";
foreach ($xml->Exrate as $r) {
    echo '[', $r['CurrencyCode'], '][', $r['CurrencyName'], '][', $r['Buy'], '][', $r['Transfer'], '][', $r['Sell'], "]\n";
}
echo $xml->Source, "\n";
"""


def _php(script: str, tmp_path: Path, target: str) -> str:
    php = _need(PHP, "php-cli php-xml")
    path = tmp_path / "consumer.php"
    path.write_text(script, encoding="utf-8")
    p = subprocess.run([php, "-d", "display_errors=stderr", str(path), target],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr, p.stdout + p.stderr
    return p.stdout


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Any]:
    def pair(name: str) -> tuple[str, str]:
        bank, ours = tmp_path / f"bank-{name}", tmp_path / f"mirror-{name}"
        bank.write_bytes(vcb_fixture(name))
        ours.write_bytes(_mirror_of(name))
        return str(bank), str(ours)

    yield pair


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("consumer", ["simplexml", "xml_parse_into_struct"])
def test_php_reads_the_same_table(tmp_path: Path, files: Any, name: str, consumer: str) -> None:
    script = PHP_SIMPLEXML if consumer == "simplexml" else PHP_STRUCT
    bank, ours = files(name)
    from_bank = _php(script, tmp_path, bank)
    assert from_bank.count("|") == 4 * len(parse(vcb_fixture(name)).rates)
    assert _php(script, tmp_path, ours) == from_bank
    assert from_bank == _python_lines(_elementtree(Path(bank).read_bytes())) + "\n"  # PHP and Python agree


def test_php_raw_strings_are_the_banks_for_the_2026_format(tmp_path: Path, files: Any) -> None:
    bank, ours = files("vcb-2026-06-18-partial.xml")
    out = _php(PHP_RAW, tmp_path, ours)
    assert out == _php(PHP_RAW, tmp_path, bank)
    assert "[USD][US DOLLAR           ][26,081.00][26,111.00][26,431.00]" in out


# -- Python ------------------------------------------------------------------------------
def _amount(v: str | None) -> str:
    v = (v or "").strip().replace(",", "")
    return "-" if v in ("", "-") or Decimal(v) == 0 else f"{Decimal(v):.6f}"


def _python_lines(rows: tuple[str, list[tuple[str, ...]], str]) -> str:
    when, table, source = rows
    lines = [f"DateTime={when}"]
    lines += [f"{c}|{n.strip()}|{_amount(b)}|{_amount(t)}|{_amount(s)}" for c, n, b, t, s in table]
    return "\n".join([*lines, f"Source={source}"])


def _elementtree(body: bytes) -> tuple[str, list[tuple[str, ...]], str]:
    root = ET.fromstring(body)
    table = [tuple(r.get(k) or "" for k in ("CurrencyCode", "CurrencyName", "Buy", "Transfer", "Sell"))
             for r in root.iter("Exrate")]
    return root.findtext("DateTime") or "", table, root.findtext("Source") or ""


def _xmltodict(elem: ET.Element) -> Any:
    """xmltodict.parse's shape: ``@`` attributes, ``#text``, a repeated child becomes a list."""
    out: dict[str, Any] = {f"@{k}": v for k, v in elem.attrib.items()}
    for child in elem:
        value = _xmltodict(child)
        if child.tag in out:
            out[child.tag] = [*out[child.tag], value] if isinstance(out[child.tag], list) else [out[child.tag], value]
        else:
            out[child.tag] = value
    text = (elem.text or "").strip()
    if not out:
        return text or None
    if text:
        out["#text"] = text
    return out


def _via_xmltodict(body: bytes) -> tuple[str, list[tuple[str, ...]], str]:
    root = ET.fromstring(body)
    doc: dict[str, Any] = {root.tag: _xmltodict(root)}["ExrateList"]
    rates = doc["Exrate"] if isinstance(doc["Exrate"], list) else [doc["Exrate"]]
    table = [tuple(r[f"@{k}"] for k in ("CurrencyCode", "CurrencyName", "Buy", "Transfer", "Sell")) for r in rates]
    return doc["DateTime"] or "", table, doc["Source"]


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("reader", [_elementtree, _via_xmltodict], ids=["elementtree", "xmltodict-style"])
def test_python_reads_the_same_table(name: str, reader: Any) -> None:
    bank, ours = vcb_fixture(name), _mirror_of(name)
    assert _python_lines(reader(ours)) == _python_lines(reader(bank))
    if name == "vcb-2026-06-18-partial.xml":
        assert reader(ours) == reader(bank)  # raw strings, padding included


# -- served: nginx, then the "Done when" ----------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _doc_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return str(blocks[0])


def _widgets_block() -> str:
    """The location of docs/widgets.md section 9 (for pages using section 4's locations)."""
    section = (REPO / "docs" / "widgets.md").read_text(encoding="utf-8").split("## 9. ")[1]
    blocks = re.findall(r"```nginx\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return re.sub(r"(?m)^ {3}", "", str(blocks[0]))


@pytest.fixture(params=["deploy.md"])
def nginx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """nginx with a documented location, and the bank's file at the bank's path."""
    binary = _need(NGINX, "nginx")
    doc_block = _doc_block() if request.param == "deploy.md" else _widgets_block()
    snaps, bank = tmp_path / "snapshots", tmp_path / "bank"
    snaps.mkdir()
    bank.mkdir()
    (tmp_path / "tmp").mkdir()
    port = _free_port()
    block = doc_block.replace("/var/lib/portal-feeds/snapshots/", f"{snaps}/")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp; fastcgi_temp_path {tmp_path}/tmp;
    uwsgi_temp_path {tmp_path}/tmp; scgi_temp_path {tmp_path}/tmp;
    server {{
        listen 127.0.0.1:{port};
        add_header Strict-Transport-Security "max-age=31536000" always;
        add_header X-Frame-Options "SAMEORIGIN" always;
        # Stands in for the bank: its recorded answer at its path (the ?b= is ignored).
        location = /Usercontrols/TVPortal.TyGia/pXML.aspx {{
            alias {bank}/pXML.aspx;
            default_type "text/xml; charset=utf-8";
        }}
        {block}
    }}
}}
""")
    proc = subprocess.Popen([binary, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail((tmp_path / "error.log").read_text())
        yield base, snaps, bank
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("nginx", ["deploy.md", "widgets.md"], indirect=True)
def test_the_documented_location_serves_the_mirror_as_utf8_xml(nginx: tuple[str, Path, Path]) -> None:
    base, snaps, _ = nginx
    body = _mirror_of("vcb-2022-12-21-collapsed.xml")
    (snaps / "exchange-rates.xml").write_bytes(body)
    (snaps / "exchange-rates.json").write_bytes(b'{"feed": "exchange-rates"}\n')
    for query in ("", "?b=10", "?b=68"):  # old widgets may keep the bank's branch parameter
        r = httpx.get(f"{base}/feeds/exchange-rates.xml{query}", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/xml; charset=utf-8"
        assert r.content == body
        assert r.headers["x-frame-options"] == "SAMEORIGIN"  # the server's headers repeated
        assert r.headers["x-content-type-options"] == "nosniff"
    if "(?:json|xml)" in (snaps.parent / "nginx.conf").read_text():  # deploy.md's: .json and .xml
        r = httpx.get(f"{base}/feeds/exchange-rates.json")
        assert r.headers["content-type"] == "application/json; charset=utf-8"
    (snaps / ".exchange-rates.xml.abc.tmp").write_bytes(body[:10])
    assert httpx.get(f"{base}/feeds/.exchange-rates.xml.abc.tmp").status_code == 404


#: A PHP page written for the bank's XML, as portals have them; only $url changes.
SNIPPET = """<?php
$url = 'https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10';
$xml = simplexml_load_file($url);
if ($xml === false) { die("DỮ LIỆU BỊ LỖI\\n"); }
echo "Tỷ giá Vietcombank cập nhật lúc " . $xml->DateTime . "\\n";
printf("%-4s %-20s %12s %12s %12s\\n", 'Mã', 'Tên', 'Mua TM', 'Mua CK', 'Bán');
foreach ($xml->Exrate as $r) {
    printf("%-4s %-20s %12s %12s %12s\\n", $r['CurrencyCode'], $r['CurrencyName'], $r['Buy'], $r['Transfer'], $r['Sell']);
}
echo $xml->Source . "\\n";
"""


def _run_snippet(tmp_path: Path, url: str) -> str:
    script = SNIPPET.replace("https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10", url)
    assert [a for a, b in zip(script.splitlines(), SNIPPET.splitlines(), strict=True) if a != b] == [f"$url = '{url}';"]
    return _php(script, tmp_path, "")


@pytest.mark.parametrize("name", ["vcb-2026-06-18-partial.xml", "vcb-2022-12-21-collapsed.xml"])
def test_done_when_a_php_page_for_pxml_prints_the_same_table_after_changing_its_url(
    tmp_path: Path, nginx: tuple[str, Path, Path], name: str
) -> None:
    base, snaps, bank = nginx
    _need(PHP, "php-cli php-xml")
    (bank / "pXML.aspx").write_bytes(vcb_fixture(name))
    bank_url = f"{base}/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
    cfg = tmp_path / "portal-feeds.toml"
    cfg.write_text(f"""
[paths]
cache_dir = "{tmp_path}/cache"
snapshot_dir = "{snaps}"

[feeds.exchange-rates]
kind = "vietcombank"
url = "{bank_url}"
mirror = "vietcombank-xml"
""", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "feeds", "fetch", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode in (0, 1) and "Traceback" not in p.stderr, p.stdout + p.stderr  # 1: an old table is stale
    from_bank = _run_snippet(tmp_path, bank_url)
    from_mirror = _run_snippet(tmp_path, f"{base}/feeds/exchange-rates.xml")
    # printf's %-20s pads the 2022 quote's collapsed names as the bank pads them: the same
    # output for both years, byte for byte.
    assert from_mirror == from_bank
    assert from_bank.count("\n") == len(parse(vcb_fixture(name)).rates) + 3
    if name == "vcb-2026-06-18-partial.xml":
        assert (snaps / "exchange-rates.xml").read_bytes() == vcb_fixture(name)
