"""Vietnamese business days: weekends and public holidays (package data, 2024-2027).

Used by the Vietcombank source's freshness expectation: the bank publishes new rates on
business days only, so a Friday table is still current on Sunday, and a table from before
Tết is current until the banks reopen.

The holidays are the official days off for public employees (Labour Code art. 112 and
the Government's yearly notices), weekdays only matter: New Year (1/1), Tết (the lunar new
year, about a week), Hùng Kings' day (10/3 lunar), Reunification and Labour Day (30/4,
1/5), National Day (2/9 with one adjacent day), and the days moved onto bridges.  Dates
for 2026-2027 that were not yet published when this table was written follow the same
pattern and are generous (an extra day off only delays the warning by a day).  Extend the
table every year; after its last year only weekends count.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = ["HOLIDAYS", "LAST_YEAR", "is_business_day", "next_business_day"]


def _span(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


HOLIDAYS: frozenset[date] = frozenset(
    set()
    # 2024
    | {date(2024, 1, 1)}
    | _span(date(2024, 2, 8), date(2024, 2, 14))  # Tết Giáp Thìn
    | {date(2024, 4, 18)}  # Hùng Kings
    | _span(date(2024, 4, 27), date(2024, 5, 1))
    | _span(date(2024, 8, 31), date(2024, 9, 3))
    # 2025
    | {date(2025, 1, 1)}
    | _span(date(2025, 1, 25), date(2025, 2, 2))  # Tết Ất Tỵ
    | {date(2025, 4, 7)}  # Hùng Kings
    | _span(date(2025, 4, 30), date(2025, 5, 4))
    | _span(date(2025, 8, 30), date(2025, 9, 2))
    # 2026
    | {date(2026, 1, 1), date(2026, 1, 2)}
    | _span(date(2026, 2, 14), date(2026, 2, 22))  # Tết Bính Ngọ (17/2)
    | {date(2026, 4, 27)}  # Hùng Kings (26/4, a Sunday: moved to Monday)
    | _span(date(2026, 4, 30), date(2026, 5, 3))
    | _span(date(2026, 8, 29), date(2026, 9, 2))
    # 2027
    | {date(2027, 1, 1)}
    | _span(date(2027, 2, 4), date(2027, 2, 12))  # Tết Đinh Mùi (6/2)
    | {date(2027, 4, 16)}  # Hùng Kings
    | _span(date(2027, 4, 30), date(2027, 5, 3))
    | _span(date(2027, 9, 2), date(2027, 9, 5))
)
LAST_YEAR = 2027


def is_business_day(day: date) -> bool:
    """Monday to Friday and not a public holiday."""
    return day.weekday() < 5 and day not in HOLIDAYS


def next_business_day(day: date) -> date:
    """The first business day after ``day``."""
    nxt = day + timedelta(days=1)
    for _ in range(60):  # Tết is the longest break; bounded whatever the table says
        if is_business_day(nxt):
            return nxt
        nxt += timedelta(days=1)
    return nxt
