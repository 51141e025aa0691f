"""The settings of what a portal page gets: ``[publish]`` and ``[feeds.NAME.widget]``.

Plain frozen dataclasses and the column names they may list, with no behaviour beyond
defaults: ``feeds.config`` reads and checks them (``parse_publish``, ``parse_widget``), the
renderer (``feeds.render``) and the publish step read them.  They sit below both, so that
rendering depends on the configuration and never the reverse (issue 20: no import circle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from feeds.timezone import DEFAULT_TIMEZONE, load_zone

__all__ = [
    "DEFAULT_COLUMNS",
    "RATE_COLUMNS",
    "SAFE_NAME",
    "WEATHER_COLUMNS",
    "PublishConfig",
    "WidgetConfig",
]

#: Column key -> Vietnamese header, in display order.
RATE_COLUMNS: dict[str, str] = {
    "buy_cash": "Mua tiền mặt",
    "buy_transfer": "Mua chuyển khoản",
    "sell": "Bán",
}
WEATHER_COLUMNS: dict[str, str] = {
    "condition": "Thời tiết",
    "temperature": "Nhiệt độ",
    "humidity": "Độ ẩm",
    "wind": "Gió",
    "precipitation": "Lượng mưa",
    "forecast": "Hôm nay",
}
DEFAULT_COLUMNS = {
    "exchange_rates": ("buy_cash", "buy_transfer", "sell"),
    "weather": ("condition", "temperature", "humidity"),
}
#: A name that can be a file of its own (per-location files: ``<feed>/<location id>.json``).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PublishConfig:
    """``[publish]``."""

    timezone: str = DEFAULT_TIMEZONE
    templates_dir: Path | None = None
    tz: tzinfo = field(default_factory=lambda: load_zone(DEFAULT_TIMEZONE), compare=False)


@dataclass(frozen=True)
class WidgetConfig:
    """``[feeds.NAME.widget]``: what the server-side fragment shows (empty = everything)."""

    title: str | None = None
    currencies: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    #: The heading level of the box's title: 2, 3 or 4 (``<h2>`` .. ``<h4>``).
    heading: int = 2
    #: Rates: the day's change (▲/▼ and the amount) beside each rate, when the snapshot has it.
    change: bool = True

    def columns_for(self, data_kind: str) -> tuple[str, ...]:
        return self.columns or DEFAULT_COLUMNS[data_kind]

    def for_snapshot(self, data_kind: str) -> dict[str, Any]:
        """The options as the snapshot's ``widget`` object: what the JavaScript widget applies."""
        out: dict[str, Any] = {"title": self.title, "heading": self.heading}
        if data_kind == "exchange_rates":
            out["currencies"] = list(self.currencies)
            out["change"] = self.change
        else:
            out["locations"] = list(self.locations)
        out["columns"] = list(self.columns_for(data_kind))
        return out
