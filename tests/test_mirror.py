"""Issue 22: ``<feed>.xml``, a drop-in mirror of Vietcombank's ``pXML.aspx``.

The writer (``feeds.mirror``) is pure: a snapshot document in, the bank's 2026 bytes out.
Checked here: the bytes of a real 2026 answer are reproduced exactly; every real sample
survives ``sample -> parse -> mirror -> parse`` with the same rates and ``as_of`` (and so
does any table the gate can pass, hypothesis); the file holds nothing the bank's does not;
the configuration key; which statuses write, keep or remove the file; atomic writes under
readers and a writer killed mid-write.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import watch
from feeds.clock import VIETNAM_TZ, FakeClock
from feeds.config import Config, ConfigError
from feeds.coordinator import AttemptResult, Coordinator
from feeds.mirror import BANK_COMMENT, BANK_SOURCE, mirror_bytes
from feeds.models import ExchangeRate, ExchangeRates
from feeds.publish import build_snapshot, dumps
from feeds.sources.currencies import ISO4217_ACTIVE
from feeds.sources.vietcombank import CURRENCY_NAMES_VI, parse
from feeds.store import Store
from feeds.text import clean_name
from tests.helpers import FIXTURES, Upstream, config_file, make_coordinator, ok, vcb_fixture

VCB = FIXTURES / "vietcombank"
#: Every real pXML.aspx answer we hold, all years' variants (tests/fixtures/vietcombank/
#: PROVENANCE.md; byte-identical copies of ../shared/upstream-samples/ plus the 2017 and
#: 2025 JSON re-encodings turned back into XML).
SAMPLES = sorted(p.name for p in VCB.glob("vcb-*.xml"))

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "5s"
deadline = "20s"
"""
MIRROR = RATES + 'mirror = "vietcombank-xml"\n'


def document(rates: ExchangeRates, status: str = "fresh", zone: Any = VIETNAM_TZ) -> dict[str, Any]:
    """The snapshot a feed publishes for ``rates``, as read back from its JSON file."""
    now = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    doc = build_snapshot(
        feed="exchange-rates", kind="exchange_rates", status=status, generated_at=now.astimezone(zone),
        fetched_at=now.astimezone(zone), as_of=rates.as_of.astimezone(zone) if rates.as_of else None,
        stale_since=None, next_update_at=None, source_name="Vietcombank",
        source_url="https://portal.vietcombank.com.vn/", data=rates.to_data(),
    )
    # Through the file, as recovery reads it back (numbers as Decimal, whole ones as int).
    loaded: dict[str, Any] = json.loads(dumps(doc), parse_float=Decimal)
    return loaded


def mirrored(rates: ExchangeRates, zone: Any = VIETNAM_TZ) -> bytes:
    body = mirror_bytes(document(rates, zone=zone))
    assert body is not None
    return body


# -- the bytes -------------------------------------------------------------------------
def test_a_complete_2026_answer_is_reproduced_byte_for_byte() -> None:
    raw = vcb_fixture("vcb-2026-06-18-partial.xml")
    assert mirrored(parse(raw)) == raw


def _as_the_bank_pads(raw: bytes) -> bytes:
    """A re-quoted 2026 answer as the bank serves it: names padded to 20, '-' where empty."""
    raw = re.sub(rb'CurrencyName="([^"]*)"', lambda m: b'CurrencyName="' + m[1].strip().ljust(20) + b'"', raw)
    return raw.replace(b'=""', b'="-"').rstrip(b"\n")


@pytest.mark.parametrize("name", ["vcb-2026-06-13-partial.xml", "vcb-2026-09-02-partial.xml"])
def test_other_2026_answers_differ_only_where_the_quote_lost_the_banks_padding(name: str) -> None:
    raw = vcb_fixture(name)
    assert mirrored(parse(raw)) == _as_the_bank_pads(raw)


def test_an_old_answer_is_written_in_todays_format() -> None:
    body = mirrored(parse(vcb_fixture("vcb-2015-10-08.xml"))).decode("ascii")
    lines = body.split("\n")
    assert lines[:3] == [BANK_COMMENT, "<ExrateList>", "  <DateTime>10/8/2015 7:09:09 AM</DateTime>"]
    assert lines[-2:] == [f"  <Source>{BANK_SOURCE}</Source>", "</ExrateList>"]
    # The bank's name of the time, padded as the bank pads now; '-' for its old '0'.
    assert lines[3] == ('  <Exrate CurrencyCode="AUD" CurrencyName="AUST.DOLLAR         " '
                        'Buy="15,909.34" Transfer="16,005.37" Sell="16,148.37" />')
    assert '<Exrate CurrencyCode="DKK" CurrencyName="DANISH KRONE        " Buy="-" Transfer="3,316.07"' in body
    assert 'CurrencyCode="USD" CurrencyName="US DOLLAR           " Buy="22,340.00" Transfer="22,340.00" Sell="22,420.00" />' in body
    assert "\r" not in body and not body.endswith("\n")


def test_as_of_is_written_in_vietnam_time_whatever_the_snapshot_zone() -> None:
    rates = parse(vcb_fixture("vcb-2022-12-21-collapsed.xml"))
    for zone in (UTC, timezone(timedelta(hours=-5)), VIETNAM_TZ):
        assert b"<DateTime>12/21/2022 2:36:27 PM</DateTime>" in mirrored(rates, zone)


@pytest.mark.parametrize(
    ("local", "text"),
    [
        (datetime(2026, 1, 2, 0, 5, 9), "1/2/2026 12:05:09 AM"),
        (datetime(2026, 1, 2, 12, 0, 0), "1/2/2026 12:00:00 PM"),
        (datetime(2026, 11, 24, 9, 9, 59), "11/24/2026 9:09:59 AM"),
        (datetime(2026, 11, 24, 21, 9, 59), "11/24/2026 9:09:59 PM"),
    ],
)
def test_datetime_is_the_banks_format(local: datetime, text: str) -> None:
    rates = ExchangeRates(as_of=local.replace(tzinfo=VIETNAM_TZ), rates=parse(vcb_fixture()).rates)
    assert f"<DateTime>{text}</DateTime>".encode() in mirrored(rates)


def test_no_date_is_an_empty_datetime_never_our_fetch_time() -> None:
    rates = ExchangeRates(as_of=None, rates=parse(vcb_fixture()).rates)
    body = mirrored(rates)
    assert b"  <DateTime></DateTime>\n" in body
    assert parse(body).as_of is None


def test_amounts_never_lose_a_digit() -> None:
    row = ExchangeRate("USD", "US DOLLAR", "Đô la Mỹ", Decimal("25850"), Decimal("0.123456"), Decimal("123456789012.5"))
    body = mirrored(ExchangeRates(as_of=None, rates=(row,)))
    assert b'Buy="25,850.00" Transfer="0.123456" Sell="123,456,789,012.50"' in body


def test_nothing_to_mirror_without_data() -> None:
    doc = document(parse(vcb_fixture()), status="unavailable")
    doc.update(data=None, as_of=None, fetched_at=None, source=None)
    assert mirror_bytes(doc) is None
    weather = dict(doc, kind="weather", data={"locations": []})
    assert mirror_bytes(weather) is None


# -- nothing the bank's file does not have -------------------------------------------
def _skeleton(body: bytes) -> list[str]:
    """Each line with its values blanked: what kinds of line the file is made of."""
    text = body.decode("utf-8")
    text = re.sub(r'="[^"]*"', '=""', text)
    text = re.sub(r"<DateTime>[^<]*</DateTime>", "<DateTime></DateTime>", text)
    return text.split("\n")


@pytest.mark.parametrize("name", SAMPLES)
def test_well_formed_and_only_what_the_bank_writes(name: str) -> None:
    body = mirrored(parse(vcb_fixture(name)))
    bank = set(_skeleton(vcb_fixture("vcb-2026-06-18-partial.xml")))
    assert set(_skeleton(body)) <= bank
    body.decode("ascii")  # the bank's names and numbers are ASCII; no declaration, no BOM
    root = ET.fromstring(body)
    assert root.tag == "ExrateList" and not root.attrib
    assert [c.tag for c in root] == ["DateTime", *["Exrate"] * (len(root) - 2), "Source"]
    for row in root.findall("Exrate"):
        assert list(row.attrib) == ["CurrencyCode", "CurrencyName", "Buy", "Transfer", "Sell"]
    assert root.findtext("Source") == BANK_SOURCE
    # Exactly one comment, the bank's own, before the root.
    assert body.count(b"<!--") == 1 and body.startswith(BANK_COMMENT.encode() + b"\n<ExrateList>")


def test_names_are_escaped_as_xml_attributes() -> None:
    # (feeds.text.clean_name already drops '<' and '>' from every name we publish.)
    row = ExchangeRate("EUR", 'EU "R" & CO', "Euro", None, Decimal("1"), Decimal("2"))
    body = mirrored(ExchangeRates(as_of=None, rates=(row,)))
    assert b'CurrencyName="EU &quot;R&quot; &amp; CO         "' in body
    assert parse(body).rates == (row,)


# -- the round trip ----------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_of_every_real_sample(name: str) -> None:
    original = parse(vcb_fixture(name))
    back = parse(mirrored(original))
    assert back.rates == original.rates
    assert back.as_of == original.as_of
    assert (back.as_of and back.as_of.isoformat()) == (original.as_of and original.as_of.isoformat())
    # And the mirror of the mirror is the mirror: a second portal-feeds reading the first.
    assert mirrored(back) == mirrored(original)


def test_the_samples_cover_every_year() -> None:
    years = {re.match(r"vcb-(\d{4})", n)[1] for n in SAMPLES}  # type: ignore[index]
    assert {"2015", "2017", "2021", "2022", "2025", "2026"} <= years


_NAME_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x1EF9, exclude_categories=("Cs", "Cc"))


@st.composite
def _amount(draw: st.DrawFn) -> Decimal | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    places = draw(st.integers(0, 6))
    value = draw(st.decimals(min_value=Decimal(1).scaleb(-places), max_value=Decimal("999999999999"),
                             places=places, allow_nan=False, allow_infinity=False))
    return Decimal(value)


@st.composite
def tables(draw: st.DrawFn) -> ExchangeRates:
    codes = draw(st.lists(st.sampled_from(sorted(ISO4217_ACTIVE)), min_size=1, max_size=25, unique=True))
    rows = []
    for code in codes:
        name = clean_name(draw(st.text(_NAME_CHARS, max_size=30))) or code
        rows.append(ExchangeRate(code, name, CURRENCY_NAMES_VI.get(code, name),
                                 draw(_amount()), draw(_amount()), draw(_amount())))
    as_of = draw(st.none() | st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2199, 12, 30)))
    return ExchangeRates(as_of=as_of and as_of.replace(microsecond=0, tzinfo=VIETNAM_TZ), rates=tuple(rows))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(tables(), st.sampled_from([UTC, VIETNAM_TZ, timezone(timedelta(hours=9))]))
def test_round_trip_of_any_table(table: ExchangeRates, zone: Any) -> None:
    back = parse(mirrored(table, zone))
    assert back.rates == table.rates
    assert back.as_of == table.as_of


# -- configuration -----------------------------------------------------------------------
def test_mirror_is_off_by_default_and_on_when_asked(tmp_path: Path) -> None:
    assert config_file(tmp_path, RATES).feeds["exchange-rates"].mirror is None
    assert config_file(tmp_path, MIRROR).feeds["exchange-rates"].mirror == "vietcombank-xml"


def test_mirror_on_a_weather_feed_is_refused_naming_the_key(tmp_path: Path) -> None:
    body = ('[feeds.weather]\nkind = "open-meteo"\nlocations = "vietnam-provinces"\n'
            'mirror = "vietcombank-xml"\n')
    with pytest.raises(ConfigError) as ei:
        config_file(tmp_path, body)
    assert ei.value.key == "feeds.weather.mirror"
    assert str(ei.value).startswith("feeds.weather.mirror: not used by a weather feed")


@pytest.mark.parametrize("bad", ['"vietcombank"', "true", '""', '"VIETCOMBANK-XML "'])
def test_a_bad_mirror_value_is_refused_naming_the_key(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as ei:
        config_file(tmp_path, RATES + f"mirror = {bad}\n")
    assert str(ei.value).startswith('feeds.exchange-rates.mirror: expected "vietcombank-xml"')


# -- publishing: which statuses write, keep or remove the file -----------------------
def _run(coro: Coroutine[Any, Any, AttemptResult]) -> AttemptResult:
    return asyncio.run(coro)


def test_fresh_writes_stale_and_expired_keep_the_last_good_table(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, MIRROR)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture("vcb-2026-06-18-partial.xml")))
    coord, clock, _, _ = _make(cfg, up)
    xml, snap = tmp_path / "snapshots" / "exchange-rates.xml", tmp_path / "snapshots" / "exchange-rates.json"
    assert _run(coord.refresh(feed)).status == "fresh"
    good = xml.read_bytes()
    assert good == vcb_fixture("vcb-2026-06-18-partial.xml")  # the bank's own bytes, back
    assert good == mirror_bytes(json.loads(snap.read_bytes(), parse_float=Decimal))
    assert oct(xml.stat().st_mode & 0o777) == "0o644"
    assert watch.generation(xml) is not None  # through write_atomic: watched like the rest
    up.default = ok(b"<html>Service Unavailable</html>", status=503)
    for status, step in (("stale", 900), ("expired", 48 * 3600)):
        clock.advance(step)
        assert _run(coord.refresh(feed)).status == status
        assert json.loads(snap.read_bytes())["status"] == status
        assert xml.read_bytes() == good  # its DateTime still says 6/18/2026 3:53:15 PM
    assert not [p.name for p in xml.parent.iterdir() if p.name.endswith(".tmp")]


def _make(cfg: Config, up: Upstream) -> tuple[Coordinator, FakeClock, Store, httpx.AsyncClient]:
    # The 2026-06-18 table, read the next morning.
    return make_coordinator(cfg, up, clock=FakeClock(datetime(2026, 6, 19, 2, 0, tzinfo=UTC)))


def test_unavailable_writes_no_mirror_and_removes_none(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, MIRROR)
    feed = cfg.feeds["exchange-rates"]

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    coord, _, _, _ = _make(cfg, Upstream(default=refused))
    xml = tmp_path / "snapshots" / "exchange-rates.xml"
    assert _run(coord.refresh(feed)).status == "unavailable"
    assert not xml.exists()  # an old widget gets 404: its own "no data", never garbage
    # A table published by an earlier life of this feed (cache and snapshot since lost) is
    # gated data whose DateTime tells its age: kept, exactly as stale/expired keep theirs.
    earlier = mirrored(parse(vcb_fixture()))
    xml.write_bytes(earlier)
    assert _run(coord.refresh(feed)).status == "unavailable"
    assert xml.read_bytes() == earlier


def test_turning_the_mirror_off_removes_the_file(tmp_path: Path) -> None:
    up = Upstream(default=ok(vcb_fixture("vcb-2026-06-18-partial.xml")))
    coord, _, _, _ = _make(config_file(tmp_path, MIRROR), up)
    assert _run(coord.refresh(coord.config.feeds["exchange-rates"])).status == "fresh"
    xml = tmp_path / "snapshots" / "exchange-rates.xml"
    assert xml.exists()
    cfg = config_file(tmp_path, RATES)
    coord, _, _, _ = _make(cfg, up)
    coord.republish(cfg.feeds["exchange-rates"])  # a frozen table must not outlive the setting
    assert not xml.exists() and (tmp_path / "snapshots" / "exchange-rates.json").exists()


# -- atomic: readers never see a torn file, a killed writer leaves a whole one ---------
WRITER = r"""
import json, sys
from decimal import Decimal
from pathlib import Path
from feeds.mirror import publish_mirror
docs = [json.loads(Path(p).read_text(), parse_float=Decimal) for p in sys.argv[2:]]
print("ready", flush=True)
i = 0
while True:
    publish_mirror(Path(sys.argv[1]), "vietcombank-xml", docs[i % len(docs)])
    i += 1
"""


def test_readers_see_whole_files_while_a_writer_is_killed_again_and_again(tmp_path: Path) -> None:
    # Two real tables of very different sizes: a torn read is a prefix of one, or a mix.
    docs = [document(parse(vcb_fixture(n))) for n in ("vcb-2015-10-08.xml", "vcb-2026-06-13-partial.xml")]
    wholes = {mirror_bytes(d) for d in docs}
    paths = []
    for i, d in enumerate(docs):
        p = tmp_path / f"doc{i}.json"
        p.write_bytes(dumps(d))
        paths.append(str(p))
    target = tmp_path / "snapshots" / "exchange-rates.xml"
    seen: dict[bytes, int] = {}
    bad: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                body = target.read_bytes()
            except FileNotFoundError:
                continue
            seen[body] = seen.get(body, 0) + 1
            if body not in wholes:
                bad.append(body)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    rng = random.Random(22)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    try:
        for _ in range(12):
            w = subprocess.Popen([sys.executable, "-c", WRITER, str(target), *paths], stdout=subprocess.PIPE,
                                 text=True, env=env)
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
            threading.Event().wait(rng.uniform(0.05, 0.3))  # let it write a few hundred times
            w.send_signal(signal.SIGKILL)
            w.wait()
            assert target.read_bytes() in wholes  # killed anywhere: the file is a whole one
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not bad, bad[0][:200]
    assert set(seen) == wholes  # both tables were read, whole, many times


# -- the damage suite's stopped scenarios, with the mirror on ----------------------------
@pytest.mark.parametrize("damage", ["rm_db", "truncate_half", "corrupt_value", "killed_lock_holder"])
def test_the_mirror_keeps_its_table_through_cache_damage(tmp_path: Path, damage: str) -> None:
    """tests/test_damage.py's ``test_stopped`` with the mirror on: the upstream down and the
    cache damaged, the next ``fetch`` republishes from what is left (the snapshot itself when
    the cache is gone) and ``rates.xml`` is byte for byte what it was, its table the
    snapshot's; the bank's newest table once the upstream is up."""
    from feeds.testing.upstream import UpstreamSimulator
    from tests.test_damage import DAMAGES, Site

    with UpstreamSimulator() as sim:
        site = Site(tmp_path, sim)
        site.config.write_text(site.config.read_text().replace(
            "[feeds.rates]\n", '[feeds.rates]\nmirror = "vietcombank-xml"\n'), encoding="utf-8")
        xml = site.snapshots / "rates.xml"
        assert site.cli("fetch").returncode == 0
        site.remember()
        good = xml.read_bytes()
        assert parse(good).rates == parse(vcb_fixture()).rates  # the simulator's table
        site.upstream(False)
        DAMAGES[damage](site)
        assert site.cli("fetch").returncode == 1  # stale
        site.assert_kept()
        assert site.snapshot("rates")["status"] == "stale"
        assert xml.read_bytes() == good
        assert xml.read_bytes() == mirror_bytes(json.loads((site.snapshots / "rates.json").read_bytes(), parse_float=Decimal))
        site.upstream(True)
        assert site.cli("fetch").returncode == 0
        fresh = json.loads((site.snapshots / "rates.json").read_bytes(), parse_float=Decimal)
        assert fresh["status"] == "fresh" and xml.read_bytes() == mirror_bytes(fresh)
        back = parse(xml.read_bytes())
        assert back.as_of is not None and back.as_of.isoformat() == fresh["as_of"]  # the bank's new DateTime


def test_mirror_off_touches_nothing_when_there_is_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Most rates feeds never had a mirror: no unlink() at all (on a read-only folder,
    unlink() of a missing file fails with EROFS, not ENOENT)."""
    from feeds.mirror import publish_mirror

    def erofs(self: Path, missing_ok: bool = False) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", erofs)
    publish_mirror(tmp_path / "exchange-rates.xml", None, document(parse(vcb_fixture())))
    assert not (tmp_path / "exchange-rates.xml").exists()
