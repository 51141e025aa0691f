"""What a portal page gets beside ``<feed>.json``: the files written with it.

Their options (``feeds.settings``, read and checked by ``feeds.config``):

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The settings live with the configuration (feeds.settings, read by feeds.config); these
# names stay importable from here for the code and tests that always did.
from feeds.settings import RATE_COLUMNS, WEATHER_COLUMNS, PublishConfig, WidgetConfig

if TYPE_CHECKING:
    from feeds.config import Config, FeedConfig

__all__ = [
    "RATE_COLUMNS",
    "WEATHER_COLUMNS",
    "PublishConfig",
    "WidgetConfig",
    "location_documents",
    "published_names",
    "write_companions",
]

log = logging.getLogger("feeds.portal")


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
