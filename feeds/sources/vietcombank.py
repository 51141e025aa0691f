"""Vietcombank exchange rates: ``pXML.aspx`` (the bank's public XML).

Format facts this parser relies on (shared/upstream-samples/README.md, samples 2015-2026):

- Root ``<ExrateList>`` with ``<DateTime>``, then ``<Exrate CurrencyCode CurrencyName Buy
  Transfer Sell/>`` rows (alphabetical by code upstream; kept in the order given), then
  ``<Source>``.  The body starts with the comment "For reference only. Only one request
  every 5 minutes!".  Any encoding declaration, or none.
- ``DateTime`` is ``M/D/YYYY h:mm:ss AM|PM`` in Vietnam local time (UTC+7, no DST, no zone
  in the text), month, day and hour not zero-padded: ``10/8/2015 7:09:09 AM``.
- Numbers: plain before 2021 (``22340``, ``22536.6``), with thousands separators and two
  decimals since (``25,850.00``).  VND per one unit of the currency.  Kept as exact
  Decimals, trailing fractional zeros dropped (``26,081.50`` -> ``26081.5``).
- Not quoted: ``Buy="0"`` (2015-2017), ``Buy="-"`` (2021-2025), or empty (one 2026
  fixture) -> ``None``, never 0.
- ``CurrencyName`` is right-padded with spaces in recent answers and was renamed over the
  years (``AUST.DOLLAR`` -> ``AUSTRALIAN DOLLAR``): match on ``CurrencyCode`` only.

Decisions:

- A missing or unreadable ``DateTime`` is not fatal: ``as_of`` is None.  The rates are
  what the widget needs and the snapshot still carries ``fetched_at``; the validation gate
  may judge a table without a date.
- Only structure is checked here (root, at least one row, a code per row, numbers that are
  numbers).  Sanity (Buy <= Transfer <= Sell, USD present, ...) is the validation gate's.
- A row with an empty ``CurrencyName`` takes its code as the name.

Hostile answers (issue 8):

- ``CurrencyCode`` must be three ASCII letters *before* any case folding (``uſd`` is not
  ``USD``); a code twice in one table is ``invalid_payload/duplicate_code``.
- A code outside ISO 4217's active list (``feeds.sources.currencies``) is dropped and
  counted (``ExchangeRates.dropped``, shown by ``portal-feeds status``); more than
  ``MAX_UNKNOWN_CODES`` of them is ``invalid_payload/unknown_codes``.  More than ``MAX_ROWS``
  rows is ``invalid_payload/too_many_rows``.
- A rate has at most 12 integer digits and 6 decimal places (trailing zeros aside), else
  ``invalid_payload/bad_number``: nothing a browser or PHP would read as Infinity.
- ``CurrencyName`` is normalised by ``feeds.text.clean_name`` (NFC, no controls or bidi
  overrides, whitespace collapsed, at most 64 characters).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from feeds.bounds import static_time
from feeds.clock import VIETNAM_TZ
from feeds.errors import InvalidPayloadError
from feeds.models import ExchangeRate, ExchangeRates, Location, RequestSpec
from feeds.sources.currencies import ISO4217_ACTIVE
from feeds.sources.vn_calendar import next_business_day
from feeds.text import clean_name
from feeds.xml import parse_xml

if TYPE_CHECKING:
    from lxml import etree

__all__ = [
    "check",
    "read",
    "requests",
    "HONOURS_EXPIRES",
    "MIN_INTERVAL",
    "CURRENCY_NAMES_VI",
    "DATA_KIND",
    "DEFAULT_URL",
    "KIND",
    "MAX_ROWS",
    "MAX_UNKNOWN_CODES",
    "SOURCE_NAME",
    "stale_after",
    "build_request",
    "parse",
    "parse_amount",
    "parse_datetime",
]

KIND = "vietcombank"
DATA_KIND = "exchange_rates"
SOURCE_NAME = "Vietcombank"
DEFAULT_URL = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"

#: ISO 4217 code -> Vietnamese name, as Vietnamese banks and the press write them.
CURRENCY_NAMES_VI: dict[str, str] = {
    "AUD": "Đô la Úc",  # Australian dollar
    "CAD": "Đô la Canada",  # Canadian dollar
    "CHF": "Franc Thụy Sĩ",  # Swiss franc
    "CNY": "Nhân dân tệ",  # Chinese yuan renminbi (in pXML since 2018-2021)
    "DKK": "Krone Đan Mạch",  # Danish krone
    "EUR": "Euro",  # euro
    "GBP": "Bảng Anh",  # pound sterling
    "HKD": "Đô la Hồng Kông",  # Hong Kong dollar
    "INR": "Rupee Ấn Độ",  # Indian rupee
    "JPY": "Yên Nhật",  # Japanese yen
    "KRW": "Won Hàn Quốc",  # South Korean won
    "KWD": "Dinar Kuwait",  # Kuwaiti dinar
    "LAK": "Kíp Lào",  # Lao kip (not in pXML; other Vietnamese bank tables list it)
    "MYR": "Ringgit Malaysia",  # Malaysian ringgit
    "NOK": "Krone Na Uy",  # Norwegian krone
    "NZD": "Đô la New Zealand",  # New Zealand dollar (not in pXML; other banks list it)
    "RUB": "Rúp Nga",  # Russian ruble
    "SAR": "Riyal Ả Rập Xê Út",  # Saudi riyal
    "SEK": "Krona Thụy Điển",  # Swedish krona
    "SGD": "Đô la Singapore",  # Singapore dollar
    "THB": "Baht Thái",  # Thai baht
    "TWD": "Đô la Đài Loan",  # New Taiwan dollar (not in pXML; other banks list it)
    "USD": "Đô la Mỹ",  # US dollar
}

#: Plain (``22536.6``) or grouped by thousands (``25,850.00``); no sign, no exponent, and
#: ASCII digits only (``\d`` would let Unicode digits such as ``２５`` through).
_AMOUNT = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
#: ``10/8/2015 7:09:09 AM``; seconds and AM/PM optional in case the bank ever drops them.
_DATETIME = re.compile(
    r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
    r"(?:\s*([AaPp])\.?[Mm]\.?)?"
)
_NOT_QUOTED = {"", "-"}
#: Three ASCII letters, checked before upper-casing (``"uſd".upper() == "USD"``).
_CODE = re.compile(r"[A-Za-z]{3}", re.ASCII)
#: A rate's integer digits and decimal places (after trailing zeros are dropped).
MAX_INT_DIGITS = 12
MAX_DECIMALS = 6
#: Rows in one table (Vietcombank sends 19-20).
MAX_ROWS = 200
#: Rows with a code outside ISO 4217 that are dropped before the table is refused.
MAX_UNKNOWN_CODES = 3


def build_request(url: str) -> RequestSpec:
    """Describe the request for the rate table at ``url``."""
    return RequestSpec(url=url, headers=(("Accept", "application/xml, text/xml;q=0.9, */*;q=0.1"),))


def parse_amount(text: str | None) -> Decimal | None:
    """Read ``"25,850.00"`` as Decimal("25850"); ``"-"``, ``""`` and zero as None."""
    value = (text or "").strip()
    if value in _NOT_QUOTED:
        return None
    # 12 digits, 3 separators, a point and 6 decimals need 22 characters; trailing zeros
    # may be more, a 1,000,001-digit "rate" is not read at all.
    if len(value) > 64 or not _AMOUNT.fullmatch(value):
        raise InvalidPayloadError("a rate is not a number", detail="bad_number")
    digits = value.replace(",", "")
    # Trim on the text, not with Decimal.normalize(): normalize rounds to the context
    # precision and writes 25850 as 2.585E+4; this keeps every digit and no exponent.
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    whole, _, frac = digits.partition(".")
    if len(whole.lstrip("0")) > MAX_INT_DIGITS or len(frac) > MAX_DECIMALS:
        raise InvalidPayloadError("a rate has too many digits", detail="bad_number")
    amount = Decimal(digits)
    # The bank writes 0 for "not quoted" (2015-2017); no real rate is ever zero.
    return None if amount == 0 else amount


def parse_datetime(text: str | None) -> datetime | None:
    """Read ``"6/18/2026 3:53:15 PM"`` (Vietnam time) as an aware +07:00 datetime, or None.

    An unreadable text is None (not fatal, see the module docstring); a readable date
    outside 2000-01-01 .. 2200-01-01 is ``invalid_payload/bad_time`` (``feeds.bounds``).
    The clock-relative bound (no later than now + 1 day) is the coordinator's.
    """
    # A regex rather than strptime: %p follows the process locale, the bank's text does not.
    text = (text or "").strip()
    match = _DATETIME.fullmatch(text) if len(text) <= 64 else None
    if match is None:
        return None
    month, day, year, hour, minute = (int(g) for g in match.groups()[:5])
    second = int(match.group(6) or 0)
    half = (match.group(7) or "").upper()
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "P" else 0)
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM_TZ)
    except ValueError:  # 2/30, 25:00 and the like
        return None
    # Readable but absurd (12/31/9999, 1/1/0001, 1905): refused, not dropped (issue 16).
    return static_time(dt)


def _code(row: etree._Element) -> str:
    raw = (row.get("CurrencyCode") or "").strip(" \t\r\n")
    if not _CODE.fullmatch(raw):
        raise InvalidPayloadError("a row has no valid CurrencyCode", detail="bad_code")
    return raw.upper()


def _row(row: etree._Element, code: str) -> ExchangeRate:
    """Turn one ``<Exrate>`` element into an ExchangeRate."""
    get = row.get
    name = clean_name(get("CurrencyName")) or code
    return ExchangeRate(
        code=code,
        name=name,
        name_vi=CURRENCY_NAMES_VI.get(code, name),
        buy_cash=parse_amount(get("Buy")),
        buy_transfer=parse_amount(get("Transfer")),
        sell=parse_amount(get("Sell")),
    )


def parse(body: bytes) -> ExchangeRates:
    """Parse a pXML.aspx answer into ExchangeRates in upstream order."""
    root = parse_xml(body)
    if root.tag != "ExrateList":
        raise InvalidPayloadError("not an ExrateList document", detail="wrong_root")
    rows = root.findall("Exrate")
    if not rows:
        raise InvalidPayloadError("no Exrate rows", detail="no_rows")
    if len(rows) > MAX_ROWS:
        raise InvalidPayloadError("more rows than any real table", detail="too_many_rows")
    rates: list[ExchangeRate] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for row in rows:
        code = _code(row)
        if code in seen:
            raise InvalidPayloadError("a currency code appears twice", detail="duplicate_code")
        seen.add(code)
        if code not in ISO4217_ACTIVE:
            dropped.append(code)
            continue
        rates.append(_row(row, code))
    if len(dropped) > MAX_UNKNOWN_CODES:
        raise InvalidPayloadError("too many codes outside ISO 4217", detail="unknown_codes")
    return ExchangeRates(
        as_of=parse_datetime(root.findtext("DateTime")), rates=tuple(rates), dropped=tuple(dropped)
    )


def stale_after(as_of: datetime) -> datetime:
    """The bank's table is current until the end of the next Vietnamese business day."""
    local = as_of.astimezone(VIETNAM_TZ)
    end = datetime.combine(next_business_day(local.date()), time(0), tzinfo=VIETNAM_TZ)
    return end + timedelta(days=1)


# -- the Source protocol (feeds.sources.registry) ----------------------------------------
#: "For reference only. Only one request every 5 minutes!" (the bank's own XML).
MIN_INTERVAL = 300.0
HONOURS_EXPIRES = False


def requests(
    url: str, locations: Sequence[Location], *, user_agent: str, batch_size: int
) -> list[tuple[RequestSpec, tuple[Location, ...]]]:
    """One request for the whole table (no locations)."""
    del locations, user_agent, batch_size
    return [(build_request(url), ())]


def read(body: bytes, locations: Sequence[Location]) -> ExchangeRates:
    """``parse`` under the protocol's signature."""
    del locations
    return parse(body)


def check(
    parsed: ExchangeRates, *, previous: dict[str, Any] | None, max_change: float, asked: Sequence[str]
) -> None:
    """The exchange-rate gate (``feeds.validate.check_rates``)."""
    from feeds.validate import check_rates

    del asked
    check_rates(parsed, previous, max_change)
