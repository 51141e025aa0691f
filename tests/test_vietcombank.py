"""Vietcombank pXML.aspx: every recorded variant parsed to exact values, broken bodies refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from feeds.clock import VIETNAM_TZ
from feeds.errors import InvalidPayloadError
from feeds.models import ExchangeRate
from feeds.publish import dumps
from feeds.sources import vietcombank
from feeds.sources.vietcombank import (
    CURRENCY_NAMES_VI,
    DEFAULT_URL,
    build_request,
    parse,
    parse_amount,
    parse_datetime,
)

FIX = Path(__file__).parent / "fixtures" / "vietcombank"

CODES_2022 = [
    "AUD", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "HKD", "INR", "JPY",
    "KRW", "KWD", "MYR", "NOK", "RUB", "SAR", "SEK", "SGD", "THB", "USD",
]  # fmt: skip
CODES_2015 = [c for c in CODES_2022 if c != "CNY"]  # CNY arrived between 2017 and 2021


def vn(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    """Build a Vietnam-local aware datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM_TZ)


# Read off the files by hand.  Values are the exact text str(Decimal) must give (no
# trailing fractional zeros, no exponent); None = not quoted.
# file -> (row count, as_of, codes in order, {code: (buy_cash, buy_transfer, sell, name)})
Row = tuple[str | None, str | None, str | None, str]
CASES: dict[str, tuple[int, datetime, list[str], dict[str, Row]]] = {
    "vcb-2015-10-08.xml": (19, vn(2015, 10, 8, 7, 9, 9), CODES_2015, {
        "USD": ("22340", "22340", "22420", "US DOLLAR"),
        "KWD": (None, "72912.93", "75200.86", "KUWAITI DINAR"),  # Buy="0"
        "DKK": (None, "3316.07", "3420.13", "DANISH KRONE"),
        "SEK": (None, "2676.84", "2744.32", "SWEDISH KRONA"),
        "KRW": (None, "19.27", "19.41", "SOUTH KOREAN WON"),
        "AUD": ("15909.34", "16005.37", "16148.37", "AUST.DOLLAR"),
        "THB": ("610.53", "610.53", "636.01", "THAI BAHT"),
    }),
    "utf16-bom.xml": (19, vn(2015, 10, 8, 7, 9, 9), CODES_2015, {  # the 2015 capture in UTF-16
        "USD": ("22340", "22340", "22420", "US DOLLAR"),
        "KWD": (None, "72912.93", "75200.86", "KUWAITI DINAR"),
        "CHF": ("22838.24", "22999.23", "23204.71", "SWISS FRANCE"),
    }),
    "vcb-2017-04-11-from-json.xml": (19, vn(2017, 4, 11, 8, 55, 51), CODES_2015, {
        "USD": ("22625", "22625", "22695", "US DOLLAR"),
        "KWD": (None, "73992.77", "76897.64", "KUWAITI DINAR"),
        "DKK": (None, "3179.04", "3278.76", "DANISH KRONE"),
        "SEK": (None, "2463.83", "2525.91", "SWEDISH KRONA"),
        "KRW": ("18.3", "19.26", "20.47", "SOUTH KOREAN WON"),  # cash buy now quoted
        "GBP": ("27811.45", "28007.5", "28257.38", "BRITISH POUND"),
    }),
    "vcb-2021-04-21-partial.xml": (3, vn(2021, 4, 21, 8, 30, 37), ["AUD", "CAD", "USD"], {
        "USD": ("22960", "22990", "23170", "US DOLLAR"),
        "AUD": ("17479.94", "17656.51", "18210.04", "AUSTRALIAN DOLLAR"),
        "CAD": ("17972.66", "18154.2", "18723.34", "CANADIAN DOLLAR"),
    }),
    "vcb-2022-12-21-collapsed.xml": (20, vn(2022, 12, 21, 14, 36, 27), CODES_2022, {
        "USD": ("23550", "23580", "23860", "US DOLLAR"),
        "KWD": (None, "77205.93", "80301.57", "KUWAITI DINAR"),  # Buy="-"
        "DKK": (None, "3319.77", "3447.29", "DANISH KRONE"),
        "SEK": (None, "2226.82", "2321.62", "SWEDISH KRONA"),
        "CNY": ("3331.96", "3365.61", "3474.5", "YUAN RENMINBI"),
        "THB": ("602.97", "669.97", "695.7", "THAILAND BAHT"),
        "JPY": ("174.43", "176.19", "184.66", "YEN"),
    }),
    "vcb-2025-12-28-from-json.xml": (20, vn(2025, 12, 28, 21, 36, 19), CODES_2022, {
        "USD": ("26054", "26084", "26384", "US DOLLAR"),
        "KWD": (None, "85051.78", "89174.26", "KUWAITI DINAR"),
        "DKK": (None, "4068.84", "4224.43", "DANISH KRONE"),
        "SEK": ("2806.71", "2925.72", "2925.72", "SWEDISH KRONA"),  # the odd row, kept as is
        "GBP": ("34574.8", "34924.04", "36042.55", "POUND STERLING"),
        "MYR": (None, "6441.16", "6581.3", "MALAYSIAN RINGGIT"),
    }),
    "vcb-2026-06-13-partial.xml": (5, vn(2026, 6, 13, 14, 45, 53), ["AUD", "CNY", "EUR", "JPY", "USD"], {
        "USD": ("26092", "26122", "26412", "US DOLLAR"),
        "CNY": ("3792.81", "3831.13", "3953.82", "YUAN RENMINBI"),
        "JPY": ("158.69", "160.29", "168.77", "YEN"),
    }),
    "vcb-2026-06-18-partial.xml": (4, vn(2026, 6, 18, 15, 53, 15), ["USD", "EUR", "CNY", "JPY"], {
        "USD": ("26081", "26111", "26431", "US DOLLAR"),
        "EUR": ("29547.27", "29845.73", "31104.97", "EURO"),
        "JPY": ("158.2", "159.8", "168.25", "YEN"),
    }),
    "vcb-2026-09-02-partial.xml": (5, vn(2026, 9, 2, 17, 38, 54), ["AUD", "JPY", "KWD", "SGD", "USD"], {
        "KWD": (None, None, "88000", "KUWAITI DINAR"),  # Buy="" Transfer="" (suspect fixture)
        "USD": ("25850", "25880", "26260", "US DOLLAR"),
        "AUD": ("18270.2", "18454.74", "19060.63", "AUSTRALIAN DOLLAR"),
        "SGD": ("19969.8", "20171.51", "20875.48", "SINGAPORE DOLLAR"),
    }),
}  # fmt: skip


def text(value: Decimal | None) -> str | None:
    """Return the exact text of a Decimal (None stays None)."""
    return None if value is None else str(value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_variants(name: str) -> None:
    count, as_of, codes, rows = CASES[name]
    rates = parse((FIX / name).read_bytes())
    assert len(rates.rates) == count
    assert [r.code for r in rates.rates] == codes
    assert rates.as_of == as_of
    assert rates.as_of is not None and rates.as_of.utcoffset() == timedelta(hours=7)
    assert rates.base == "VND"
    by_code = {r.code: r for r in rates.rates}
    for code, (buy, transfer, sell, name_en) in rows.items():
        r = by_code[code]
        assert (text(r.buy_cash), text(r.buy_transfer), text(r.sell)) == (buy, transfer, sell), code
        assert r.name == name_en  # padding trimmed
        assert r.name_vi == CURRENCY_NAMES_VI[code]


def test_every_rate_is_exact_text() -> None:
    for name in CASES:
        for r in parse((FIX / name).read_bytes()).rates:
            for value in (r.buy_cash, r.buy_transfer, r.sell):
                if value is not None:
                    s = str(value)
                    assert "E" not in s and not (("." in s) and s.endswith("0")), (name, r.code, s)
                    assert value > 0


def test_every_real_sample_has_a_case() -> None:
    shipped = {p.name for p in FIX.glob("vcb-*.xml")}
    assert shipped == {n for n in CASES if n.startswith("vcb-")}


def _attrs(path: Path) -> tuple[str | None, list[dict[str, str]]]:
    root = etree.fromstring(path.read_bytes())
    return root.findtext("DateTime"), [dict(e.attrib) for e in root.findall("Exrate")]


def test_reconstructed_2017_equals_its_json() -> None:
    data = json.loads((FIX / "vcb-2017-04-11-simplexml.json").read_text())["data"]
    when, rows = _attrs(FIX / "vcb-2017-04-11-from-json.xml")
    assert when == data["DateTime"]
    assert rows == [r["@attributes"] for r in data["Exrate"]]


def test_reconstructed_2025_equals_its_json() -> None:
    data = json.loads((FIX / "vcb-2025-12-28-reshaped.json").read_text())
    when, rows = _attrs(FIX / "vcb-2025-12-28-from-json.xml")
    assert when == data["date"]
    got = [
        (r["CurrencyCode"], r["CurrencyName"].rstrip(), r["Buy"], r["Transfer"], r["Sell"])
        for r in rows
    ]
    want = [(r["currency"], r["name"], r["buy"], r["transfer"], r["sell"]) for r in data["rates"]]
    assert got == want


def test_utf16_fixture_parses_like_its_original() -> None:
    raw = (FIX / "utf16-bom.xml").read_bytes()
    assert raw.startswith(b"\xff\xfe") and 'encoding="utf-16"'.encode("utf-16-le") in raw
    assert parse(raw) == parse((FIX / "vcb-2015-10-08.xml").read_bytes())


# --- names -----------------------------------------------------------------------------


def test_vietnamese_names() -> None:
    rates = parse((FIX / "vcb-2022-12-21-collapsed.xml").read_bytes()).rates
    by = {r.code: r.name_vi for r in rates}
    assert by["USD"] == "Đô la Mỹ"
    assert by["EUR"] == "Euro"
    assert by["JPY"] == "Yên Nhật"
    assert by["GBP"] == "Bảng Anh"
    assert by["CNY"] == "Nhân dân tệ"
    assert by["KWD"] == "Dinar Kuwait"
    assert by["SAR"] == "Riyal Ả Rập Xê Út"
    assert by["CHF"] == "Franc Thụy Sĩ"
    # every currency the bank has quoted has a Vietnamese name of its own
    assert all(code in CURRENCY_NAMES_VI for code in CODES_2022)


def test_unknown_code_falls_back_to_trimmed_english_name() -> None:
    body = (
        b"<ExrateList><DateTime>6/18/2026 3:53:15 PM</DateTime>"
        b'<Exrate CurrencyCode=" xau " CurrencyName="  GOLD OUNCE   " Buy="-" Transfer="1" Sell="2"/>'
        b'<Exrate CurrencyCode="XAG" CurrencyName="   " Buy="-" Transfer="1" Sell="2"/>'
        b"</ExrateList>"
    )
    xau, xag = parse(body).rates
    assert (xau.code, xau.name, xau.name_vi) == ("XAU", "GOLD OUNCE", "GOLD OUNCE")
    assert (xag.code, xag.name, xag.name_vi) == ("XAG", "XAG", "XAG")  # no name at all


# --- amounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "exact"),
    [
        ("25,850.00", "25850"),
        ("26,081.50", "26081.5"),
        ("1,000.00", "1000"),
        ("1,234,567.89", "1234567.89"),
        ("22340", "22340"),
        ("22536.6", "22536.6"),
        ("18.30", "18.3"),
        (" 158.20 ", "158.2"),
        ("0.05", "0.05"),
        ("100", "100"),
        ("999,999,999,999.250000", "999999999999.25"),  # the widest accepted: 12 + 6 digits
    ],
)
def test_amount_is_exact_without_exponent(raw: str, exact: str) -> None:
    value = parse_amount(raw)
    assert value is not None and str(value) == exact and value == Decimal(exact)


def test_amount_serializes_exactly() -> None:
    rates = parse((FIX / "vcb-2026-06-18-partial.xml").read_bytes())
    out = dumps(rates.to_data()).decode()
    assert '"buy_cash": 26081,' in out and '"sell": 168.25' in out and "E+" not in out


@pytest.mark.parametrize("raw", ["-", "", "  ", " - ", "0", "0.00", "0,000.00", None])
def test_not_quoted_is_none(raw: str | None) -> None:
    assert parse_amount(raw) is None


@pytest.mark.parametrize(
    "raw", ["abc", "1,2,3", "12e3", "NaN", "Infinity", "-5", "+5", "1.000,00", "1 000", "0x10",
            "25.850,00", "1,00", ".5", "5.", "N/A", "２５"]
)  # fmt: skip
def test_bad_numbers(raw: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        parse_amount(raw)
    assert ei.value.detail == "bad_number" and raw not in ei.value.message


def test_bad_number_in_a_row_refuses_the_table() -> None:
    body = b'<ExrateList><Exrate CurrencyCode="USD" Buy="N/A" Transfer="1" Sell="2"/></ExrateList>'
    with pytest.raises(InvalidPayloadError) as ei:
        parse(body)
    assert ei.value.detail == "bad_number"


# --- DateTime --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("6/18/2026 3:53:15 PM", vn(2026, 6, 18, 15, 53, 15)),
        ("10/8/2015 7:09:09 AM", vn(2015, 10, 8, 7, 9, 9)),
        ("11/16/2024 9:09:59 PM", vn(2024, 11, 16, 21, 9, 59)),
        ("12/31/2025 12:00:00 AM", vn(2025, 12, 31, 0, 0, 0)),  # midnight
        ("1/1/2026 12:30:00 PM", vn(2026, 1, 1, 12, 30, 0)),  # just after noon
        ("  6/18/2026  3:53:15 pm ", vn(2026, 6, 18, 15, 53, 15)),
        ("6/18/2026 15:53:15", vn(2026, 6, 18, 15, 53, 15)),  # 24-hour, if it ever appears
        (None, None),
        ("", None),
        ("yesterday", None),
        ("2026-06-18T15:53:15", None),
        ("2/30/2026 1:00:00 PM", None),
        ("6/18/2026 13:53:15 PM", None),
        ("6/18/2026 0:53:15 AM", None),
        ("18/6/2026 3:53:15 PM", None),  # day first is not the bank's format
    ],
)
def test_datetime(raw: str | None, expected: datetime | None) -> None:
    assert parse_datetime(raw) == expected


def test_as_of_is_vietnam_time() -> None:
    as_of = parse((FIX / "vcb-2026-06-18-partial.xml").read_bytes()).as_of
    assert as_of is not None and as_of.tzinfo is VIETNAM_TZ
    assert as_of.astimezone(UTC) == datetime(2026, 6, 18, 8, 53, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "when", [b"", b"<DateTime/>", b"<DateTime>not a date</DateTime>", b"<DateTime>  </DateTime>"]
)
def test_missing_or_bad_datetime_is_not_fatal(when: bytes) -> None:
    body = (
        b"<ExrateList>"
        + when
        + b'<Exrate CurrencyCode="USD" CurrencyName="US DOLLAR" Buy="1" Transfer="1" Sell="2"/>'
        + b"</ExrateList>"
    )
    rates = parse(body)
    assert rates.as_of is None
    assert rates.rates == (
        ExchangeRate("USD", "US DOLLAR", "Đô la Mỹ", Decimal(1), Decimal(1), Decimal(2)),
    )


# --- structure and broken bodies -------------------------------------------------------

OUR_MESSAGES = {
    "empty body",
    "not well-formed XML",
    "an HTML page, not the XML document",
    "document type declarations are not accepted",
    "not an ExrateList document",
    "no Exrate rows",
    "a row has no valid CurrencyCode",
}


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
def test_broken_fixtures(name: str, detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        parse((FIX / name).read_bytes())
    err = ei.value
    assert err.detail == detail and err.kind == "invalid_payload"
    assert err.message in OUR_MESSAGES and str(err) == err.message
    # no foreign exception text or context travels with it
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    for foreign in ("root:", "passwd", "lol", "line ", "column", "Runtime", "Lỗi", "KRW"):
        assert foreign not in repr(err)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<rss><channel/></rss>", "wrong_root"),
        (b'{"error": true}', "malformed"),
        (b"<ExrateList/>", "no_rows"),
        (b"<ExrateList><Source>Vietcombank</Source></ExrateList>", "no_rows"),
        (b"<ExrateList><Row><Exrate CurrencyCode='USD'/></Row></ExrateList>", "no_rows"),
        (b'<ExrateList><Exrate CurrencyName="US DOLLAR" Buy="1"/></ExrateList>', "bad_code"),
        (b'<ExrateList><Exrate CurrencyCode="" Buy="1"/></ExrateList>', "bad_code"),
        (b'<ExrateList><Exrate CurrencyCode="  " Buy="1"/></ExrateList>', "bad_code"),
        (b'<ExrateList><Exrate CurrencyCode="US DOLLAR" Buy="1"/></ExrateList>', "bad_code"),
    ],
)
def test_structure_refused(body: bytes, detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        parse(body)
    assert ei.value.detail == detail


def test_sanity_is_not_checked_here() -> None:
    # Sell below buy, no USD: structurally fine; the validation gate judges it later.
    body = b'<ExrateList><Exrate CurrencyCode="EUR" Buy="3" Transfer="2" Sell="1"/></ExrateList>'
    (eur,) = parse(body).rates
    assert (eur.buy_cash, eur.buy_transfer, eur.sell) == (Decimal(3), Decimal(2), Decimal(1))


# --- request ---------------------------------------------------------------------------


def test_request_and_constants() -> None:
    assert (vietcombank.KIND, vietcombank.DATA_KIND, vietcombank.SOURCE_NAME) == (
        "vietcombank",
        "exchange_rates",
        "Vietcombank",
    )
    assert (
        DEFAULT_URL
        == "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
    )
    spec = build_request(DEFAULT_URL)
    assert spec.url == DEFAULT_URL and spec.params == ()
    assert "application/xml" in dict(spec.headers)["Accept"]
