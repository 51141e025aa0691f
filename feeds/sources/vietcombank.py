"""Vietcombank exchange rates: ``pXML.aspx`` (the bank's public XML).

Format facts this parser relies on (shared/upstream-samples/README.md, 2015-2026 samples):

- Root ``<ExrateList>`` with ``<DateTime>``, then ``<Exrate CurrencyCode CurrencyName Buy
  Transfer Sell/>`` rows (alphabetical by code), then ``<Source>``.  The body starts with the
  comment "For reference only. Only one request every 5 minutes!"; any or no encoding
  declaration.
- ``DateTime`` is ``M/D/YYYY h:mm:ss AM|PM`` in Vietnam local time (UTC+7, no DST, no zone
  in the text), hours and months not zero-padded: ``10/8/2015 7:09:09 AM``.
- Numbers: plain before 2021 (``22340``, ``22536.6``), with thousands separators and two
  decimals after (``25,850.00``).  VND per one unit of the currency.  Kept as exact Decimals.
- Not quoted: ``Buy="0"`` (2015-2017), ``Buy="-"`` (2021-2025), or empty (one 2026 fixture)
  -> ``None``, never 0.
- ``CurrencyName`` is right-padded with spaces in recent answers and was renamed over the
  years (``AUST.DOLLAR`` -> ``AUSTRALIAN DOLLAR``): match on ``CurrencyCode`` only.

A missing or unreadable ``DateTime`` is not fatal (``as_of`` = None): the rates themselves
are what the widget needs, and the snapshot still has ``fetched_at``.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from feeds.clock import VIETNAM_TZ
from feeds.errors import InvalidPayloadError
from feeds.models import ExchangeRate, ExchangeRates, RequestSpec
from feeds.xml import parse_xml

__all__ = [
    "CURRENCY_NAMES_VI",
    "DATA_KIND",
    "DEFAULT_URL",
    "KIND",
    "SOURCE_NAME",
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
    "CNY": "Nhân dân tệ",  # Chinese yuan renminbi (quoted since ~2018)
    "DKK": "Krone Đan Mạch",  # Danish krone
    "EUR": "Euro",  # euro
    "GBP": "Bảng Anh",  # pound sterling
    "HKD": "Đô la Hồng Kông",  # Hong Kong dollar
    "INR": "Rupee Ấn Độ",  # Indian rupee
    "JPY": "Yên Nhật",  # Japanese yen
    "KRW": "Won Hàn Quốc",  # South Korean won
    "KWD": "Dinar Kuwait",  # Kuwaiti dinar
    "LAK": "Kíp Lào",  # Lao kip (not in pXML today; kept for other branches' lists)
    "MYR": "Ringgit Malaysia",  # Malaysian ringgit
    "NOK": "Krone Na Uy",  # Norwegian krone
    "NZD": "Đô la New Zealand",  # New Zealand dollar
    "RUB": "Rúp Nga",  # Russian ruble
    "SAR": "Riyal Ả Rập Xê Út",  # Saudi riyal
    "SEK": "Krona Thụy Điển",  # Swedish krona
    "SGD": "Đô la Singapore",  # Singapore dollar
    "THB": "Baht Thái",  # Thai baht
    "TWD": "Đô la Đài Loan",  # New Taiwan dollar
    "USD": "Đô la Mỹ",  # US dollar
}

_NOT_QUOTED = {"", "-", "0", "0.00", "0.0"}
_AMOUNT = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$|^\d+(\.\d+)?$")
_CODE = re.compile(r"^[A-Z]{3}$")


def build_request(url: str) -> RequestSpec:
    """What to ask the bank for: the XML at ``url``."""
    return RequestSpec(url=url, headers=(("Accept", "application/xml, text/xml;q=0.9, */*;q=0.1"),))


def parse_amount(text: str | None) -> Decimal | None:
    """``"25,850.00"`` -> Decimal("25850"); ``"-"``, ``""``, ``"0"`` -> None (not quoted)."""
    value = (text or "").strip()
    if value in _NOT_QUOTED:
        return None
    if not _AMOUNT.match(value):
        raise InvalidPayloadError("a rate is not a number", detail="bad_number")
    try:
        amount = Decimal(value.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees digits
        raise InvalidPayloadError("a rate is not a number", detail="bad_number") from None
    if amount == 0:
        return None
    # Exact value without trailing zeros, never in exponent form (25850, not 2.585E+4).
    normalized = amount.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def parse_datetime(text: str | None) -> datetime | None:
    """``"6/18/2026 3:53:15 PM"`` (Vietnam time) -> aware datetime at +07:00, or None."""
    value = " ".join((text or "").split())
    for fmt in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=VIETNAM_TZ)
        except ValueError:
            continue
    return None


def parse(body: bytes) -> ExchangeRates:
    """Parse a pXML.aspx answer into ExchangeRates (upstream order), or raise InvalidPayloadError."""
    root = parse_xml(body)
    if not isinstance(root.tag, str) or root.tag != "ExrateList":
        raise InvalidPayloadError("not an ExrateList document", detail="wrong_root")
    rows = root.findall("Exrate")
    if not rows:
        raise InvalidPayloadError("no Exrate rows", detail="no_rows")
    rates: list[ExchangeRate] = []
    for row in rows:
        code = (row.get("CurrencyCode") or "").strip().upper()
        if not _CODE.match(code):
            raise InvalidPayloadError("a row has no valid CurrencyCode", detail="bad_code")
        name = " ".join((row.get("CurrencyName") or "").split()) or code
        rates.append(
            ExchangeRate(
                code=code,
                name=name,
                name_vi=CURRENCY_NAMES_VI.get(code, name),
                buy_cash=parse_amount(row.get("Buy")),
                buy_transfer=parse_amount(row.get("Transfer")),
                sell=parse_amount(row.get("Sell")),
            )
        )
    return ExchangeRates(as_of=parse_datetime(root.findtext("DateTime")), rates=tuple(rates))
