"""Vietcombank pXML.aspx: every recorded variant parsed to exact values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.errors import InvalidPayloadError
from feeds.publish import dumps
from feeds.sources.vietcombank import CURRENCY_NAMES_VI, build_request, parse, parse_amount

D = Decimal
VN = timezone(timedelta(hours=7))
FIX = Path(__file__).parent / "fixtures" / "vietcombank"
ALPHA_2022 = ["AUD", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "HKD", "INR", "JPY", "KRW", "KWD",
              "MYR", "NOK", "RUB", "SAR", "SEK", "SGD", "THB", "USD"]
ALPHA_2015 = [c for c in ALPHA_2022 if c != "CNY"]

# file -> (row count, as_of, codes or None, {code: (buy_cash, buy_transfer, sell, name)})
CASES = {
    "vcb-2015-10-08.xml": (19, datetime(2015, 10, 8, 7, 9, 9, tzinfo=VN), ALPHA_2015, {
        "USD": (D("22340"), D("22340"), D("22420"), "US DOLLAR"),
        "DKK": (None, D("3316.07"), D("3420.13"), "DANISH KRONE"),
        "KWD": (None, D("72912.93"), D("75200.86"), "KUWAITI DINAR"),
        "AUD": (D("15909.34"), D("16005.37"), D("16148.37"), "AUST.DOLLAR"),
        "CHF": (D("22838.24"), D("22999.23"), D("23204.71"), "SWISS FRANCE"),
    }),
    "vcb-2017-04-11-from-json.xml": (19, datetime(2017, 4, 11, 8, 55, 51, tzinfo=VN), ALPHA_2015, {
        "USD": (D("22625"), D("22625"), D("22695"), "US DOLLAR"),
        "KRW": (D("18.3"), D("19.26"), D("20.47"), "SOUTH KOREAN WON"),
        "KWD": (None, D("73992.77"), D("76897.64"), "KUWAITI DINAR"),
    }),
    "vcb-2021-04-21-partial.xml": (3, datetime(2021, 4, 21, 8, 30, 37, tzinfo=VN), ["AUD", "CAD", "USD"], {
        "USD": (D("22960"), D("22990"), D("23170"), "US DOLLAR"),
        "AUD": (D("17479.94"), D("17656.51"), D("18210.04"), "AUSTRALIAN DOLLAR"),
    }),
    "vcb-2022-12-21-collapsed.xml": (20, datetime(2022, 12, 21, 14, 36, 27, tzinfo=VN), ALPHA_2022, {
        "USD": (D("23550"), D("23580"), D("23860"), "US DOLLAR"),
        "DKK": (None, D("3319.77"), D("3447.29"), "DANISH KRONE"),
        "CNY": (D("3331.96"), D("3365.61"), D("3474.5"), "YUAN RENMINBI"),
        "EUR": (D("24511.68"), D("24759.28"), D("25883.79"), "EURO"),
    }),
    "vcb-2025-12-28-from-json.xml": (20, datetime(2025, 12, 28, 21, 36, 19, tzinfo=VN), ALPHA_2022, {
        "USD": (D("26054"), D("26084"), D("26384"), "US DOLLAR"),
        "SEK": (D("2806.71"), D("2925.72"), D("2925.72"), "SWEDISH KRONA"),
        "KWD": (None, D("85051.78"), D("89174.26"), "KUWAITI DINAR"),
        "AUD": (D("17168.37"), D("17341.79"), D("17897.19"), "AUSTRALIAN DOLLAR"),
    }),
    "vcb-2026-06-13-partial.xml": (5, datetime(2026, 6, 13, 14, 45, 53, tzinfo=VN), None, {
        "USD": (D("26092"), D("26122"), D("26412"), "US DOLLAR"),
    }),
    "vcb-2026-06-18-partial.xml": (4, datetime(2026, 6, 18, 15, 53, 15, tzinfo=VN), ["USD", "EUR", "CNY", "JPY"], {
        "USD": (D("26081"), D("26111"), D("26431"), "US DOLLAR"),
        "EUR": (D("29547.27"), D("29845.73"), D("31104.97"), "EURO"),
        "JPY": (D("158.2"), D("159.8"), D("168.25"), "YEN"),
    }),
    "utf16-bom.xml": (4, datetime(2026, 6, 18, 15, 53, 15, tzinfo=VN), ["USD", "EUR", "CNY", "JPY"], {
        "CNY": (D("3793.81"), D("3832.13"), D("3954.85"), "YUAN RENMINBI"),
    }),
    "vcb-2026-09-02-partial.xml": (5, datetime(2026, 9, 2, 17, 38, 54, tzinfo=VN), ["AUD", "JPY", "KWD", "SGD", "USD"], {
        "KWD": (None, None, D("88000"), "KUWAITI DINAR"),
        "USD": (D("25850"), D("25880"), D("26260"), "US DOLLAR"),
        "JPY": (D("157.55"), D("159.14"), D("168.55"), "YEN"),
    }),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_variants(name: str) -> None:
    count, as_of, codes, rows = CASES[name]
    rates = parse((FIX / name).read_bytes())
    assert len(rates.rates) == count
    assert rates.as_of == as_of and rates.as_of.utcoffset() == timedelta(hours=7)
    if codes is not None:
        assert [r.code for r in rates.rates] == codes
    by_code = {r.code: r for r in rates.rates}
    for code, (buy, transfer, sell, en) in rows.items():
        r = by_code[code]
        assert (r.buy_cash, r.buy_transfer, r.sell) == (buy, transfer, sell), code
        assert r.name == en  # trimmed, padding gone
        assert r.name_vi == CURRENCY_NAMES_VI[code]


def test_every_shared_xml_sample_has_a_case() -> None:
    shipped = {p.name for p in FIX.glob("vcb-*.xml")}
    assert shipped <= set(CASES)


def test_vietnamese_names() -> None:
    by = {r.code: r.name_vi for r in parse((FIX / "vcb-2022-12-21-collapsed.xml").read_bytes()).rates}
    assert by["USD"] == "Đô la Mỹ" and by["JPY"] == "Yên Nhật" and by["EUR"] == "Euro"
    assert all(by[c] != c for c in ALPHA_2022)  # every current currency has a Vietnamese name


def test_exact_decimal_text() -> None:
    rates = parse((FIX / "vcb-2026-06-18-partial.xml").read_bytes())
    usd = rates.rates[0]
    assert str(usd.buy_cash) == "26081" and "E" not in str(usd.sell)
    text = dumps(rates.to_data()).decode()
    assert '"buy_cash": 26081,' in text and '"sell": 168.25' in text
    assert str(parse_amount("26,081.50")) == "26081.5"
    assert str(parse_amount("1,000.00")) == "1000"
    assert str(parse_amount("22536.6")) == "22536.6"


@pytest.mark.parametrize("text", ["-", "", "0", " 0 ", None, "0.00"])
def test_not_quoted_is_none(text: str | None) -> None:
    assert parse_amount(text) is None


@pytest.mark.parametrize("text", ["abc", "1,2,3", "12e3", "NaN", "-5", "1.000,00"])
def test_bad_numbers(text: str) -> None:
    with pytest.raises(InvalidPayloadError):
        parse_amount(text)


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("empty.xml", "empty"),
        ("truncated.xml", "malformed"),
        ("html-error-page.html", "html"),
        ("no-rows.xml", "no_rows"),
        ("billion-laughs.xml", "doctype"),
        ("xxe.xml", "doctype"),
    ],
)
def test_broken_bodies(name: str, detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        parse((FIX / name).read_bytes())
    assert ei.value.detail == detail
    assert "root:" not in ei.value.message


def test_other_documents_rejected() -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        parse(b"<rss><channel/></rss>")
    assert ei.value.detail == "wrong_root"
    with pytest.raises(InvalidPayloadError):
        parse(b'<ExrateList><Exrate CurrencyCode="" Buy="1"/></ExrateList>')
    with pytest.raises(InvalidPayloadError):
        parse(b'{"error": true}')


def test_missing_datetime_is_not_fatal() -> None:
    r = parse(b'<ExrateList><Exrate CurrencyCode="USD" CurrencyName="US DOLLAR" Buy="1" Transfer="1" Sell="2"/></ExrateList>')
    assert r.as_of is None and r.rates[0].sell == 2


def test_request() -> None:
    spec = build_request("https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10")
    assert spec.url.endswith("?b=10") and dict(spec.headers)["Accept"].startswith("application/xml")
