"""Currency package data: ISO 4217's active codes and absolute plausibility bounds in VND.

- ``ISO4217_ACTIVE``: the active alphabetic codes of ISO 4217 (list one, 2025), without the
  test/no-currency codes ``XTS``/``XXX`` and without ``VND`` (the base: a VND row makes no
  sense).  A rate row with any other code is dropped and counted (see
  ``feeds.sources.vietcombank``).
- ``CURRENCY_BOUNDS``: VND for one unit, (lowest, highest) believable, for each currency
  Vietcombank quotes or Vietnamese banks commonly list.  Generous on purpose (roughly a
  third to four times the 2015-2026 range): they catch a decimal point in the wrong place
  or a unit mix-up on the very first table, when there is no previous table to compare
  with -- not a real move, which the relative rule and its recovery handle.  Any other
  active code is held to ``DEFAULT_BOUNDS``.  Editing a bound is a release of the package.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["CURRENCY_BOUNDS", "DEFAULT_BOUNDS", "ISO4217_ACTIVE", "bounds_of"]

ISO4217_ACTIVE: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR
    ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a block of codes reads better than 180 quoted strings
)


def _b(lo: str, hi: str) -> tuple[Decimal, Decimal]:
    return Decimal(lo), Decimal(hi)


#: VND per one unit: (lowest, highest) believable.  Reference values in the comments.
CURRENCY_BOUNDS: dict[str, tuple[Decimal, Decimal]] = {
    "USD": _b("10000", "100000"),  # 22,340 (2015) .. 26,431 (2025)
    "EUR": _b("12000", "120000"),  # ~25,000 .. ~31,000
    "GBP": _b("14000", "140000"),  # ~29,000 .. ~36,000
    "JPY": _b("50", "1000"),  # ~160 .. ~190
    "AUD": _b("6000", "60000"),  # ~15,000 .. ~18,000
    "CAD": _b("7000", "70000"),  # ~17,000 .. ~19,500
    "CHF": _b("10000", "120000"),  # ~23,000 .. ~33,000
    "CNY": _b("1200", "12000"),  # ~3,300 .. ~3,700
    "DKK": _b("1500", "15000"),  # ~3,300 .. ~4,200
    "HKD": _b("1200", "12000"),  # ~2,900 .. ~3,400
    "INR": _b("100", "1200"),  # ~280 .. ~350
    "KRW": _b("5", "80"),  # ~16 .. ~21
    "KWD": _b("30000", "300000"),  # ~74,000 .. ~87,000
    "LAK": _b("0.3", "10"),  # ~1.2 .. ~2.7
    "MYR": _b("2000", "20000"),  # ~5,100 .. ~6,400
    "NOK": _b("800", "8000"),  # ~2,200 .. ~2,800
    "NZD": _b("5000", "50000"),  # ~14,000 .. ~17,000
    "RUB": _b("50", "2000"),  # ~230 .. ~400
    "SAR": _b("2500", "25000"),  # ~6,000 .. ~7,200
    "SEK": _b("800", "8000"),  # ~2,200 .. ~2,900
    "SGD": _b("7000", "70000"),  # ~16,000 .. ~20,500
    "THB": _b("250", "2500"),  # ~620 .. ~850
    "TWD": _b("250", "2500"),  # ~700 .. ~850
}

#: For an active code without its own bounds.
DEFAULT_BOUNDS: tuple[Decimal, Decimal] = _b("0.001", "1000000")


def bounds_of(code: str) -> tuple[Decimal, Decimal]:
    """The (lowest, highest) believable VND value of one unit of ``code``."""
    return CURRENCY_BOUNDS.get(code, DEFAULT_BOUNDS)
