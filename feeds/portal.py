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

A warm start (``feeds.daemon``) republishes inside ``fragments_later``: a feed's fragment
whose file on disk already claims what the new one would (``fragment_may_wait``: the same
state, data times and age in words) is rendered after READY=1, before the first attempt
(``LaterFragments.write``), so that Jinja2 and the templates are no part of a restart's way
to READY (issue 20).  Any other fragment (another state or data, an age in words that moved
on, a template without the ``data-*`` attributes, an unreadable file) is rendered with its
JSON, as always: in the gap a reader never gets a fragment that claims more freshness than
the JSON beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
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
    "LaterFragments",
    "end_preparation",
    "PublishConfig",
    "WidgetConfig",
    "fragment_may_wait",
    "fragments_later",
    "location_documents",
    "location_files",
    "prepare_companions",
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
    by_id, one_place = _cut(document)
    return {loc_id: _one_document(document, by_id.get(loc_id), one_place) for loc_id in location_ids}


def _cut(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A weather snapshot's locations by id, and its widget block for a one-place file."""
    data = document.get("data")
    by_id = {loc["id"]: loc for loc in (data or {}).get("locations", [])}
    # One place per file: the feed's choice of places does not apply to it (made once: the
    # files share it, nobody changes it).
    widget = document.get("widget")
    one_place = {k: v for k, v in widget.items() if k != "locations"} if isinstance(widget, Mapping) else None
    return by_id, one_place


def _one_document(document: Mapping[str, Any], loc: Any, one_place: dict[str, Any] | None) -> dict[str, Any]:
    doc = dict(document)
    if loc is None:
        doc.update(status="unavailable", fetched_at=None, as_of=None, source=None, data=None)
        doc["stale_since"] = doc["stale_since"] or doc["generated_at"]
        if "expires_at" in doc:
            doc["expires_at"] = None
    else:
        doc.update(fetched_at=loc["fetched_at"], data={"locations": [loc]})
    if one_place is not None:
        doc["widget"] = one_place
    return doc


#: Stand-ins for a per-location file's own parts in the bytes shared by all of them.
_OWN_AT, _OWN_DATA = "\x1a portal-feeds fetched_at \x1a", "\x1a portal-feeds data \x1a"


def location_files(document: Mapping[str, Any], location_ids: Sequence[str]) -> dict[str, bytes]:
    """``{"<id>.json": dumps(doc)}`` for ``location_documents``, the same bytes, made without
    3,000 copies of the shared fields: those are encoded once, and each file is that text
    with its own ``fetched_at`` and ``data`` put in (issue 20: 3,000 documents copied and
    encoded took ~50 ms of each attempt).  Where the shared text cannot be made so (a value
    orjson would not write as ``dumps`` does), that file is encoded whole, as before.
    """
    import orjson

    from feeds.publish import dumps, dumps_nested

    by_id, one_place = _cut(document)
    parts: list[bytes] | None = None
    out: dict[str, bytes] = {}
    for loc_id in location_ids:
        loc = by_id.get(loc_id)
        body = None
        if loc is not None and type(at := loc["fetched_at"]) is str:
            if parts is None:
                parts = _shared_parts(_one_document(document, loc, one_place)) or []
            nested = dumps_nested({"locations": [loc]}, 1) if parts else None
            if nested is not None:
                try:
                    at_text = orjson.dumps(at)  # a str: its JSON text (a lone surrogate: refused)
                except TypeError:
                    at_text = None
                if at_text is not None:
                    body = b"".join((parts[0], at_text, parts[1], nested, parts[2]))
        out[f"{loc_id}.json"] = body if body is not None else dumps(_one_document(document, loc, one_place))
    return out


def _shared_parts(doc: Mapping[str, Any]) -> list[bytes] | None:
    """The bytes of a per-location ``doc`` around its ``fetched_at`` and ``data`` values (the
    three texts every file shares), or None where they cannot be cut out plainly."""
    from feeds.publish import dumps_nested

    keys = list(doc)
    if "fetched_at" not in keys or "data" not in keys or keys.index("fetched_at") > keys.index("data"):
        return None
    template = dict(doc, fetched_at=_OWN_AT, data=_OWN_DATA)
    text = dumps_nested(template, 0)
    if text is None:
        return None
    at, data = dumps_nested(_OWN_AT, 1), dumps_nested(_OWN_DATA, 1)
    if at is None or data is None or text.count(at) != 1 or text.count(data) != 1:
        return None
    head, rest = text.split(at)
    middle, tail = rest.split(data)
    return [head, middle, tail + b"\n"]


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


class LaterFragments:
    """The fragments a warm start left for after READY=1 (``fragments_later``), by path."""

    def __init__(self) -> None:
        self._pending: dict[Path, tuple[Config, FeedConfig, Mapping[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, path: Path, config: Config, feed: FeedConfig, document: Mapping[str, Any]) -> None:
        self._pending[path] = (config, feed, document)

    def discard(self, path: Path) -> None:
        self._pending.pop(path, None)

    def write(self) -> int:
        """Render and write every fragment left, from the document its JSON was written with;
        return how many failed.  Never raises: a fragment that cannot be written is one ERROR
        line, its old file stays, and the feed's first attempt (right after) writes it again."""
        from feeds.publish import write_atomic
        from feeds.render import render_fragment

        failed = 0
        pending, self._pending = self._pending, {}
        for path, (config, feed, document) in pending.items():
            try:
                write_atomic(path, render_fragment(document, feed.widget, config.publish).encode("utf-8"))
            except OSError as exc:
                failed += 1
                log.error("fragment not written feed=%s kind=local detail=publish: %s", feed.name, exc)
            except Exception as exc:  # a bug of ours: the old fragment stays, the attempt retries
                failed += 1
                log.error(
                    "fragment not written feed=%s kind=local detail=publish:internal error=%s: %s",
                    feed.name, type(exc).__name__, str(exc)[:200],
                )
        return failed


_LATER = threading.local()


@contextlib.contextmanager
def fragments_later() -> Iterator[LaterFragments]:
    """While open, on this thread, ``write_companions`` leaves for later every fragment that
    may wait (``fragment_may_wait``); the caller writes them with ``LaterFragments.write``."""
    later = LaterFragments()
    previous = getattr(_LATER, "later", None)
    _LATER.later = later
    try:
        yield later
    finally:
        _LATER.later = previous


#: The opening tag of a shipped fragment, and its attributes (values HTML-escaped, ASCII).
_OPEN_TAG = re.compile(rb"<section\b([^>]*)>")
_ATTRIBUTE = re.compile(r'\s([a-z][a-z0-9-]*)="([^"]*)"')
#: The age in words of a stale, frozen or expired fragment, as of its writing.
_AGO = re.compile(rb'<span class="pf-ago">([^<]*)</span>')
#: The document times a fragment's claim rests on: the data's age and expiry.
_CLAIM_TIMES = ("fetched_at", "as_of", "expires_at", "upstream_stale_since")


def fragment_may_wait(path: Path, document: Mapping[str, Any], widget: WidgetConfig) -> bool:
    """Whether the fragment of ``document`` may be rendered after READY=1: the file at ``path``
    is absent, or a fragment that claims what the new one would: the same state and status
    (``data-pf-state``, ``data-status``), the same data times (``fetched_at``, ``as_of``,
    ``expires_at``, ``upstream_stale_since``) and the same age in words (``pf-ago``).  Only
    its ``generated_at`` is older and its ``next_update_at`` the last run's plan: it claims no
    more freshness than the new JSON.  Anything else (a template without these attributes,
    an unreadable file) is rendered at once."""
    from feeds.render import fragment_claim

    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return True  # nothing served claims anything
    except OSError:
        return False
    m = _OPEN_TAG.search(head)
    if m is None:
        return False
    attrs = dict(_ATTRIBUTE.findall(m.group(1).decode("ascii", "replace")))
    state, status, ago = fragment_claim(document, widget)
    if attrs.get("data-pf-state") != state or attrs.get("data-status") != status:
        return False
    for key in _CLAIM_TIMES:
        value = document.get(key)
        if attrs.get("data-" + key.replace("_", "-")) != (value if isinstance(value, str) else None):
            return False
    shown = _AGO.search(head)
    # As the fragment writes it: escaped, every character outside ASCII a numeric reference.
    written = ago.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (shown.group(1) if shown else b"") == written.encode("ascii", "xmlcharrefreplace")


def _location_files_of(feed: FeedConfig) -> bool:
    """Whether ``feed`` publishes per-location files (``<feed>/<id>.json``)."""
    return feed.per_location_files and feed.data_kind == "weather"


def prepare_companions(config: Config, feed: FeedConfig) -> None:
    """At the start of an attempt: the files ``write_companions`` will need and that do not
    exist yet, made in the background while the attempt waits on the network (a weather
    feed's per-location files: ``feeds.publish.prepare_spares``)."""
    if _location_files_of(feed):
        from feeds.publish import prepare_spares

        prepare_spares(config.snapshot_dir / feed.name, [f"{loc.id}.json" for loc in feed.locations])


def end_preparation(config: Config, feed: FeedConfig) -> None:
    """At the end of an attempt: ``prepare_companions``'s work stops (a write stopped it
    already; an attempt that wrote nothing leaves no thread making files behind it)."""
    if _location_files_of(feed):
        from feeds.publish import stop_preparing

        stop_preparing(config.snapshot_dir / feed.name)


def write_companions(config: Config, feed: FeedConfig, snapshot_dir: Path, document: Mapping[str, Any]) -> None:
    """Write ``<feed>.html`` and, when asked, the per-location files, next to ``<feed>.json``
    (inside ``fragments_later``, the fragment may be left for after READY=1)."""
    from feeds.mirror import publish_mirror
    from feeds.publish import write_atomic, write_files

    path = snapshot_dir / f"{feed.name}.html"
    later: LaterFragments | None = getattr(_LATER, "later", None)
    if later is not None and fragment_may_wait(path, document, feed.widget):
        later.add(path, config, feed, document)
    else:
        from feeds.render import render_fragment

        if later is not None:
            later.discard(path)
        html = render_fragment(document, feed.widget, config.publish)
        write_atomic(path, html.encode("utf-8"))
    if feed.data_kind == "exchange_rates" and feed.history_keep:
        # <feed>.history.json: the last days' closing values, for the widget's sparkline (issue 21).
        from datetime import datetime

        from feeds import history

        generated = datetime.fromisoformat(str(document["generated_at"]))
        doc = history.history_document(snapshot_dir, feed.name, generated_at=generated, days=feed.history_days or 1)
        write_atomic(snapshot_dir / f"{feed.name}.history.json", (history.compact(doc) + "\n").encode("utf-8"))
    if _location_files_of(feed):
        folder = snapshot_dir / feed.name
        ids = [loc.id for loc in feed.locations]
        # Each file atomic and fsynced, one folder fsync for them all; a file whose bytes did
        # not change since we wrote it is left alone (feeds.publish.write_files).
        write_files(folder, location_files(document, ids))
        # A location no longer configured must not keep serving a frozen "fresh" file.
        keep = {f"{i}.json" for i in ids}
        # What ``folder.glob("*.json")`` finds, without a Path per file (3,000: ~4 -> ~2 ms).
        with os.scandir(folder) as entries:
            stale = [e.path for e in entries if e.name.endswith(".json") and e.name[:1] != "." and e.name not in keep]
        for old in stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
    if feed.data_kind == "exchange_rates":
        # <feed>.xml, the bank's pXML.aspx from gated data (issue 22); removed when turned off.
        publish_mirror(snapshot_dir / f"{feed.name}.xml", feed.mirror, document)
