"""What a portal page gets beside ``<feed>.json``: its options and the files written with it.

- ``[publish]``: the zone snapshot timestamps are written in, and a folder of templates that
  override the shipped ones (``feeds/templates/``).
- ``[feeds.NAME.widget]``: which currencies / locations / columns the server-side fragment
  ``<feed>.html`` shows, and its title.
- ``[feeds.NAME] per_location_files = true`` (weather): one snapshot per location,
  ``<feed>/<location id>.json``, same contract as the feed's file (docs/widgets.md says what
  it costs).

``write_companions`` is the hook ``feeds.publish.write_snapshot`` calls right after the JSON
is in place; every file goes through the same atomic write.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds.timezone import DEFAULT_TIMEZONE, load_zone

if TYPE_CHECKING:
    from feeds.config import Config, FeedConfig

__all__ = [
    "RATE_COLUMNS",
    "WEATHER_COLUMNS",
    "PublishConfig",
    "WidgetConfig",
    "location_documents",
    "parse_publish",
    "parse_widget",
    "published_names",
    "write_companions",
]

log = logging.getLogger("feeds.portal")

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


def _error(key: str, message: str) -> Exception:
    from feeds.config import ConfigError

    return ConfigError(key, message)


def _names(value: object, key: str) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string (``"USD,EUR,JPY"``)."""
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",")]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        items = [x.strip() for x in value]
    else:
        raise _error(key, f'expected a list like ["USD", "EUR"] or "USD,EUR", got {value!r}')
    if not items or not all(items):
        raise _error(key, "expected at least one non-empty name")
    return tuple(dict.fromkeys(items))


def parse_publish(table: Mapping[str, Any], base_dir: Path) -> PublishConfig:
    """Validate ``[publish]``; a templates folder must exist and its templates compile."""
    for k in table:
        if k not in ("timezone", "templates_dir"):
            raise _error(f"publish.{k}", "unknown key")
    name = table.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(name, str):
        raise _error("publish.timezone", f'expected a zone name like "Asia/Ho_Chi_Minh", got {name!r}')
    try:
        tz = load_zone(name.strip())
    except ValueError as exc:
        raise _error("publish.timezone", str(exc)) from None
    templates_dir = None
    if "templates_dir" in table:
        raw = table["templates_dir"]
        if not isinstance(raw, str) or not raw.strip():
            raise _error("publish.templates_dir", f"expected a folder, got {raw!r}")
        templates_dir = base_dir / raw.strip()
        if not templates_dir.is_dir():
            raise _error("publish.templates_dir", f"{templates_dir} is not a folder")
        from feeds.render import check_templates

        problem = check_templates(templates_dir)
        if problem:
            raise _error("publish.templates_dir", problem)
    return PublishConfig(timezone=name.strip(), templates_dir=templates_dir, tz=tz)


def parse_widget(value: object, key: str, data_kind: str, location_ids: Sequence[str]) -> WidgetConfig:
    """Validate ``[feeds.NAME.widget]`` for a feed of ``data_kind``."""
    if not isinstance(value, dict):
        raise _error(key, f"expected a table, got {value!r}")
    allowed = {"title", "columns", "heading"} | ({"currencies", "change"} if data_kind == "exchange_rates" else {"locations"})
    for k in value:
        if k not in allowed:
            raise _error(f"{key}.{k}", "unknown key" if k not in ("currencies", "locations", "change")
                         else f"not used by a {data_kind} feed")
    title = value.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise _error(f"{key}.title", f"expected a non-empty string, got {title!r}")
    currencies: tuple[str, ...] = ()
    if "currencies" in value:
        currencies = tuple(c.upper() for c in _names(value["currencies"], f"{key}.currencies"))
        bad = [c for c in currencies if not re.fullmatch(r"[A-Z]{3}", c)]
        if bad:
            raise _error(f"{key}.currencies", f"expected ISO 4217 codes like USD, got {bad[0]!r}")
    locations: tuple[str, ...] = ()
    if "locations" in value:
        locations = _names(value["locations"], f"{key}.locations")
        unknown = [x for x in locations if x not in location_ids]
        if unknown:
            raise _error(f"{key}.locations", f"no location with id {unknown[0]!r} in this feed")
    columns: tuple[str, ...] = ()
    if "columns" in value:
        known = RATE_COLUMNS if data_kind == "exchange_rates" else WEATHER_COLUMNS
        columns = _names(value["columns"], f"{key}.columns")
        bad = [c for c in columns if c not in known]
        if bad:
            raise _error(f"{key}.columns", f"expected some of {', '.join(known)}, got {bad[0]!r}")
    heading = value.get("heading", 2)
    if isinstance(heading, bool) or heading not in (2, 3, 4):
        raise _error(f"{key}.heading", f"expected 2, 3 or 4 (the title as <h2> .. <h4>), got {heading!r}")
    change = value.get("change", True)
    if not isinstance(change, bool):
        raise _error(f"{key}.change", "expected true or false (show the day's change beside each rate)")
    return WidgetConfig(
        heading=heading,
        change=change,
        title=title.strip() if isinstance(title, str) else None,
        currencies=currencies,
        locations=locations,
        columns=columns,
    )


def location_documents(
    document: Mapping[str, Any], location_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """One snapshot per configured location, cut from a weather feed's snapshot.

    Same top-level fields as the feed's file; ``data.locations`` holds that one location and
    ``fetched_at`` is its own.  A location that has no data yet (never fetched, or the feed
    is ``unavailable``) gets an ``unavailable`` document with ``data: null``.
    """
    data = document.get("data")
    by_id = {loc["id"]: loc for loc in (data or {}).get("locations", [])}
    out: dict[str, dict[str, Any]] = {}
    for loc_id in location_ids:
        loc = by_id.get(loc_id)
        doc = dict(document)
        if loc is None:
            doc.update(status="unavailable", fetched_at=None, as_of=None, source=None, data=None)
            doc["stale_since"] = doc["stale_since"] or doc["generated_at"]
            if "expires_at" in doc:
                doc["expires_at"] = None
        else:
            doc.update(fetched_at=loc["fetched_at"], data={"locations": [loc]})
        if isinstance(doc.get("widget"), Mapping):
            # One place per file: the feed's choice of places does not apply to it.
            doc["widget"] = {k: v for k, v in doc["widget"].items() if k != "locations"}
        out[loc_id] = doc
    return out


def published_names(feed: FeedConfig) -> set[str]:
    """The files a publish of ``feed`` writes at the top of the snapshot folder (the daemon watches
    them): ``<feed>.json``, ``<feed>.html``, and for rates ``<feed>.xml`` (a mirror) and
    ``<feed>.history.json`` (history kept)."""
    names = {f"{feed.name}.json", f"{feed.name}.html"}
    if feed.mirror:
        names.add(f"{feed.name}.xml")
    if feed.data_kind == "exchange_rates" and feed.history_keep:
        names.add(f"{feed.name}.history.json")
    return names


def write_companions(config: Config, feed: FeedConfig, snapshot_dir: Path, document: Mapping[str, Any]) -> None:
    """Write ``<feed>.html`` and, when asked, the per-location files, next to ``<feed>.json``."""
    from feeds.mirror import publish_mirror
    from feeds.publish import dumps, write_atomic, write_files
    from feeds.render import render_fragment

    html = render_fragment(document, feed.widget, config.publish)
    write_atomic(snapshot_dir / f"{feed.name}.html", html.encode("utf-8"))
    if feed.data_kind == "exchange_rates" and feed.history_keep:
        # <feed>.history.json: the last days' closing values, for the widget's sparkline (issue 21).
        from datetime import datetime

        from feeds import history

        generated = datetime.fromisoformat(str(document["generated_at"]))
        doc = history.history_document(snapshot_dir, feed.name, generated_at=generated, days=feed.history_days or 1)
        write_atomic(snapshot_dir / f"{feed.name}.history.json", (history.compact(doc) + "\n").encode("utf-8"))
    if feed.per_location_files and feed.data_kind == "weather":
        folder = snapshot_dir / feed.name
        ids = [loc.id for loc in feed.locations]
        # Each file atomic and fsynced, one folder fsync for them all; a file whose bytes did
        # not change since we wrote it is left alone (feeds.publish.write_files).
        write_files(folder, {f"{loc_id}.json": dumps(doc) for loc_id, doc in location_documents(document, ids).items()})
        # A location no longer configured must not keep serving a frozen "fresh" file.
        keep = {f"{i}.json" for i in ids}
        for old in folder.glob("*.json"):
            if old.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    if feed.data_kind == "exchange_rates":
        # <feed>.xml, the bank's pXML.aspx from gated data (issue 22); removed when turned off.
        publish_mirror(snapshot_dir / f"{feed.name}.xml", feed.mirror, document)
