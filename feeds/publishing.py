"""Composing and publishing a feed's snapshot, never older over newer; the last good data.

The publish step of one attempt (``feeds.coordinator`` runs it in a worker thread, one at a
time per feed) goes through ``Publisher``:

1. ``keep_newer``: the last good data, recovered from the published snapshot when the store
   has none (``recover``), and replaced by the published file's where the file is newer (a
   restart after a cache-write outage).
2. ``compose``: the snapshot to write, built (``render``) and checked against the schema
   before anything is stored.  Candidates in order: the data just fetched, the store's last
   good data, the data of the published file.  Fetched data that cannot be published is
   refused and never stored; stored data that cannot be published is set aside
   (``set_aside``); data older than the published file's is never written over it
   (``newer_on_disk``, per location for weather).  The status comes from the ``decide``
   callable the caller passes (``feeds.decision``, pure).
3. ``write``: ``<feed>.json`` and its companions, through the ``write_files`` hook the
   coordinator gives; a disk fault is ``NotWritten`` (a local fault, the old file stays).

Rates history (``feeds.history``) is filed here when a table is stored.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from feeds import bounds, decision, history, trust
from feeds.clock import AHEAD_SLACK, Clock
from feeds.config import Config, FeedConfig
from feeds.errors import FeedError, InvalidPayloadError, LocalError
from feeds.fastjson import known_finite
from feeds.frozen import upstream_stale_since
from feeds.localfaults import local_error
from feeds.publish import build_snapshot
from feeds.recovery import MAX_SNAPSHOT_BYTES, read_snapshot, snapshot_path
from feeds.redact import redact_url
from feeds.store import GoodData, Store
from feeds.timezone import in_zone

__all__ = ["Composed", "Decide", "NotWritten", "Publisher"]

logger = logging.getLogger("feeds.coordinator")  # the same logger name as before the split

#: The status and ``stale_since`` of a snapshot carrying ``good`` (None: no data) after an
#: attempt that ended with ``error`` (None: none) -- ``feeds.decision.decide``, bound to the
#: attempt by the caller.
Decide = Callable[[GoodData | None, FeedError | None], tuple[str, datetime | None]]


def decider(
    feed: FeedConfig,
    state: Mapping[str, Any],
    *,
    started: datetime,
    now: datetime,
    requested: bool,
    origin: decision.Origin | None = None,
    fetched: GoodData | None = None,
) -> Decide:
    """``feeds.decision.decide`` bound to one attempt (``state``: the feed's stored snapshot
    state), for the publish step's candidates.  ``origin``: a peer's own status, which applies
    to its copy (``fetched``) only, not to data kept from before."""
    previous = decision.Previous(state.get("status"), state.get("stale_since"))
    windows = decision.Windows.of(feed)

    def decide(good: GoodData | None, err: FeedError | None) -> tuple[str, datetime | None]:
        d = decision.decide(
            requested=requested,
            failed=err is not None,
            last_good_at=good.fetched_at if good else None,
            previous=previous,
            origin=origin if good is not None and good is fetched else None,
            started=started,
            now=now,
            windows=windows,
        )
        return d.status, d.stale_since

    return decide


def internal_error(feed: FeedConfig, exc: BaseException) -> LocalError:
    """A bug of ours in the publish path, as a classified local fault (one ERROR line, no
    traceback)."""
    logger.error(
        "publish failed feed=%s kind=local detail=publish:internal error=%s: %s",
        feed.name, type(exc).__name__, str(exc)[:200],
    )
    return local_error("publish", "internal")
#: What ``compose`` returns: the snapshot, the data it carries, its status and stale_since,
#: the attempt's error and whether the fetched data was refused.
Composed = tuple[dict[str, Any], GoodData | None, str, datetime | None, FeedError | None, bool]


class Publisher:
    """One per coordinator: composes, checks and writes snapshots; keeps the last good data."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        write_files: Callable[[FeedConfig, dict[str, Any]], None],
    ) -> None:
        #: The coordinator's seams (it sets them again when they are replaced, e.g. on reload).
        self.config = config
        self.store = store
        self.clock = clock
        #: Writes ``<feed>.json`` and its companions (``feeds.publish.write_snapshot`` with
        #: ``feeds.portal.write_companions``); raises ``OSError`` on a disk fault.
        self.write_files = write_files
        #: Per feed: whether the publish step under way stored the data just fetched (health).
        #: Per feed because publish steps of different feeds run at once in worker threads.
        self._stored: dict[str, bool] = {}
        #: Per feed: the published file's stat key, its fetched_at and its locations' (never
        #: older over newer reads the file again only when it changed).
        self._on_disk: dict[str, tuple[tuple[int, int, int], datetime | None, dict[str, datetime]]] = {}

    def stored(self, feed: FeedConfig) -> bool:
        """Whether the last ``compose`` of ``feed`` stored the data just fetched."""
        return self._stored.get(feed.name, False)

    def load_good(self, feed: FeedConfig) -> GoodData | None:
        """The feed's last good data (recovered from its published snapshot when the store has none)."""
        good = self.store.get(f"good/{feed.name}")
        if isinstance(good, GoodData):
            return good
        return self.recover(feed)

    def recover(self, feed: FeedConfig) -> GoodData | None:
        """The store has no good data: take it back from the published snapshot (issue 9)."""
        rec = read_snapshot(self.config.snapshot_dir, feed)
        if rec is None:
            return None
        try:
            bounds.check_good(rec.good)
        except InvalidPayloadError as exc:
            logger.warning(
                "published snapshot not recovered feed=%s detail=%s: %s", feed.name, exc.detail, exc.message
            )
            return None
        now = self.clock.now()
        self.store.set(f"good/{feed.name}", rec.good)
        self.store.set(
            f"recovered/{feed.name}", {"at": now, "fetched_at": rec.good.fetched_at, "path": str(rec.path)}
        )
        if not self.store.get(f"snapshot/{feed.name}"):
            # The file's own state: republish() and the next attempt keep its stale_since.
            self.store.set(
                f"snapshot/{feed.name}",
                {"status": rec.status, "stale_since": rec.stale_since, "outcome": None},
            )
        logger.warning(
            "recovered last good data from the published snapshot feed=%s fetched_at=%s age_s=%d",
            feed.name, rec.good.fetched_at.isoformat(), (now - rec.good.fetched_at).total_seconds(),
        )
        return rec.good

    def compose(
        self,
        feed: FeedConfig,
        fetched: GoodData | None,
        error: FeedError | None,
        decide: Decide,
        next_update_at: datetime | None,
        now: datetime,
        *,
        vouched: frozenset[int] = frozenset(),
    ) -> Composed:
        """The snapshot to write, built and checked against the schema before anything is stored.

        Candidates in order: the data just fetched, the store's last good data, the data of
        the published file.  Fetched data that cannot be published is refused
        (``invalid_payload``: ``bad_time``, ``out_of_bounds``, ``schema``) and never stored;
        stored data that cannot be published is set aside (one ERROR line).  Data older than
        the published file's is never written over it (``newer_on_disk``).  Returns the
        snapshot, the data it carries, its status and stale_since, the attempt's error and
        whether the fetched data was refused.  ``vouched``: ``Got.checked``, the fetched
        weather entries already checked by the fetch strategy (not checked again).
        """
        refused = False
        self._stored[feed.name] = False
        if fetched is not None and feed.data_kind == "weather":
            fetched, error = self.drop_bad_locations(feed, fetched, error, vouched)
            refused = fetched is None
        good: GoodData | None = fetched
        #: The data whose every number and time was checked in this step (each location once:
        #: 3,000 of them cost ~40 ms a pass, issue 20); rendering it does not check again.
        checked: GoodData | None = None
        if fetched is not None:
            try:
                # Weather: drop_bad_locations checked each location just above.
                bounds.check_good(fetched, now, locations=feed.data_kind != "weather")
                checked = fetched
            except InvalidPayloadError as exc:
                refused, error, good = True, exc, None
        if good is None:
            good = self.load_good(feed)
        setaside_file = False
        for _ in range(4):
            newer = self.newer_on_disk(feed, good, now)
            if newer is not None:
                good = newer
            status, stale_since = decide(good, error)
            try:
                snap = self.render(
                    feed, status, good, stale_since, next_update_at, now, checked=good is checked,
                    vouched=vouched,
                )
            except InvalidPayloadError as exc:
                if good is None:
                    raise  # an unavailable snapshot always validates: a bug, a local fault
                if good is fetched:
                    refused, error, good = True, exc, self.load_good(feed)
                elif setaside_file:
                    self.set_aside(feed, good, exc)
                    good = None
                else:
                    self.set_aside(feed, good, exc)
                    setaside_file = True
                    good = self.recover(feed)
                continue
            if good is not None and good is not fetched and newer is good:
                self.store.set(f"good/{feed.name}", good)  # the file's newer data, kept
            elif good is not None and good is fetched:
                with known_finite(vouched):  # checked while parsed (feeds.batching)
                    self.store.set(f"good/{feed.name}", good)
                self._stored[feed.name] = True
                self.record_history(feed, good, now)
            upstream_since = snap.get("upstream_stale_since")
            # The cache lock held by a live process: the snapshot is still published.
            with contextlib.suppress(LocalError):
                trust.update(
                    self.store, feed.name,
                    upstream_stale_since=datetime.fromisoformat(upstream_since) if upstream_since else None,
                )
            return snap, good, status, stale_since, error, refused
        raise RuntimeError("no publishable snapshot after every candidate")

    def record_history(self, feed: FeedConfig, good: GoodData, now: datetime) -> None:
        """Rates: a gated table becomes its Vietnam day's last in the archive (feeds.history)."""
        if feed.data_kind != "exchange_rates" or not feed.history_keep:
            return
        try:
            history.record(
                self.config.snapshot_dir, feed.name, as_of=good.as_of, fetched_at=good.fetched_at,
                source=good.source_name, data=good.data, today=history.vietnam_day(now), keep_days=feed.history_keep,
            )
        except OSError as exc:  # the snapshot still goes out; the day is filed by the next table
            logger.warning("history not written feed=%s: %s", feed.name, local_error("history", exc).message)

    def with_change(self, feed: FeedConfig, good: GoodData) -> dict[str, Any]:
        """Rates: each rate with ``previous`` and ``change`` against the last earlier day archived."""
        if feed.data_kind != "exchange_rates" or not feed.history_keep:
            return good.data
        return history.with_change(good.data, history.previous(self.config.snapshot_dir, feed.name, good.as_of))

    def drop_bad_locations(
        self, feed: FeedConfig, fetched: GoodData, error: FeedError | None, vouched: frozenset[int] = frozenset()
    ) -> tuple[GoodData | None, FeedError | None]:
        """Weather: a location whose times or numbers cannot be published keeps its previous
        entry (as an unanswered location does); the attempt is then ``partial``.  None when
        no location of this attempt is left (the whole answer is refused)."""
        locations = fetched.data.get("locations")
        if not isinstance(locations, list):
            return fetched, error
        bad: InvalidPayloadError | None = None
        previous: dict[Any, Any] | None = None
        kept: list[Any] = []
        fresh = 0
        for loc in locations:
            if id(loc) in vouched:  # checked while its batch was parsed (feeds.batching)
                kept.append(loc)
                fresh += 1
                continue
            try:
                if not isinstance(loc, dict):
                    raise InvalidPayloadError("a location entry is not an object", detail="schema")
                bounds.check_location(loc, fetched.fetched_at)
            except InvalidPayloadError as exc:
                bad = bad or exc
                if previous is None:
                    prev = self.load_good(feed)
                    previous = {
                        entry.get("id"): entry
                        for entry in ((prev.data.get("locations") or []) if prev else [])
                        if isinstance(entry, dict)
                    }
                old = previous.get(loc.get("id")) if isinstance(loc, dict) else None
                if old is not None:
                    kept.append(old)
                continue
            kept.append(loc)
            fresh += 1
        if bad is None:
            return fetched, error
        if not fresh:
            return None, bad
        at = [t for loc in kept if (t := _parse_time(loc.get("fetched_at"))) is not None]
        return (
            replace(fetched, data={**fetched.data, "locations": kept}, fetched_at=min(at, default=fetched.fetched_at)),
            error or bad.with_detail("partial"),
        )

    def render(
        self,
        feed: FeedConfig,
        status: str,
        good: GoodData | None,
        stale_since: datetime | None,
        next_update_at: datetime | None,
        now: datetime,
        *,
        checked: bool = False,
        vouched: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """Build the snapshot document and check it: ``InvalidPayloadError`` if it cannot be published.

        ``checked``: ``good`` was checked in this very step (``bounds.check_good``);
        ``vouched``: entries the schema's location check accepted already (``Got.checked``).
        """
        locations = good.data.get("locations") if good is not None else None
        # Positions, not objects: in_zone below copies every entry (in the same order).
        vouched_at = (
            {i for i, loc in enumerate(locations) if id(loc) in vouched}
            if vouched and isinstance(locations, list) else set()
        )
        if good is not None and not checked:
            bounds.check_good(good)
        try:
            upstream_since = upstream_stale_since(good.source_name, good.as_of, now) if good else None
            snap = build_snapshot(
                feed=feed.name,
                kind=feed.data_kind,
                status=status,
                generated_at=now,
                fetched_at=good.fetched_at if good else None,
                as_of=good.as_of if good else None,
                stale_since=stale_since,
                next_update_at=next_update_at,
                source_name=good.source_name if good else None,
                # Again here: data stored (or recovered) before the rule is published redacted too.
                source_url=redact_url(good.source_url) if good else None,
                data=self.with_change(feed, good) if good else None,
                upstream_stale_since=upstream_since,
                # The widgets' own judgement of a file the daemon stopped rewriting.
                expires_at=good.fetched_at + timedelta(seconds=feed.max_stale) if good else None,
                widget=feed.widget.for_snapshot(feed.data_kind),
            )
            # Timestamps in [publish] timezone; <feed>.html (and per-location files) with it.
            snap = in_zone(snap, self.config.publish.tz)
        except (ArithmeticError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise InvalidPayloadError(
                f"the snapshot cannot be built ({type(exc).__name__})", detail="unpublishable"
            ) from None
        problem = bounds.schema_problem(snap, vouched_at)
        if problem is not None:
            raise InvalidPayloadError(f"the snapshot does not match the schema at {problem}", detail="schema")
        return snap

    def write(self, feed: FeedConfig, snap: dict[str, Any]) -> None:
        """Write the snapshot and its companions; a disk fault is ``NotWritten``."""
        try:
            self.write_files(feed, snap)
        except OSError as exc:
            # Disk full, read-only, rights, a directory where the file should be: the old
            # snapshot stays in place; the feed's health says it was not written.
            raise NotWritten(snap, local_error("publish", exc)) from None
        self.remember_written(feed, snap)

    def set_aside(self, feed: FeedConfig, good: GoodData, exc: InvalidPayloadError) -> None:
        """Move stored data that can no longer be published out of the way (one ERROR line)."""
        logger.error(
            "stored data set aside feed=%s kind=invalid_payload detail=%s fetched_at=%s: %s",
            feed.name, exc.detail, _text(good.fetched_at), exc.message,
        )
        with contextlib.suppress(LocalError):
            self.store.set(
                f"setaside/{feed.name}",
                {"at": self.clock.now(), "detail": exc.detail, "reason": exc.message, "good": good},
            )
            if self.store.get(f"good/{feed.name}") is not None:
                self.store.delete(f"good/{feed.name}")

    def disk_state(self, feed: FeedConfig) -> tuple[datetime | None, dict[str, datetime]] | None:
        """The published file's ``fetched_at`` (and each weather location's), read only when
        the file changed since we last looked (``os.stat``): one small read after a restart."""
        path = snapshot_path(self.config.snapshot_dir, feed.name)
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._on_disk.get(feed.name)
        if seen is not None and seen[0] == key:
            return seen[1], seen[2]
        top, locs = None, {}
        try:
            if st.st_size <= MAX_SNAPSHOT_BYTES:
                doc = json.loads(path.read_bytes())
                if isinstance(doc, dict) and doc.get("feed") == feed.name:
                    top = _parse_time(doc.get("fetched_at"))
                    data = doc.get("data")
                    for loc in (data.get("locations") or []) if isinstance(data, dict) else []:
                        at = _parse_time(loc.get("fetched_at")) if isinstance(loc, dict) else None
                        if at is not None and isinstance(loc.get("id"), str):
                            locs[loc["id"]] = at
        except (OSError, ValueError, RecursionError, AttributeError):
            pass  # unreadable or garbage: nothing newer there
        self._on_disk[feed.name] = (key, top, locs)
        return top, locs

    def republish(self, feed: FeedConfig, next_update_at: datetime | None) -> tuple[str, dict[str, Any]]:
        """The feed's snapshot published from the store without fetching (the warm start),
        decided as a held-back attempt starting now: (the status written, the snapshot).
        Raises ``NotWritten`` (logged here) when its files could not be written."""
        now = self.clock.now()
        self.keep_newer(feed, now)  # recovers from the snapshot (and its state) if older or none
        state = self.store.get(f"snapshot/{feed.name}") or {}
        # No request made: decided as a held-back attempt starting now.
        decide = decider(feed, state, started=now, now=now, requested=False)
        try:
            snap, _, status, _, _, _ = self.compose(feed, None, None, decide, next_update_at, now)
            self.write(feed, snap)
        except NotWritten as nw:
            logger.error(
                "snapshot not written feed=%s kind=local detail=%s: %s",
                feed.name, nw.error.detail, nw.error.message,
            )
            raise
        return status, snap

    def adopt(self, other: Publisher) -> None:
        """Take over what ``other`` (the warm start's publisher, on the same store) knows of
        the published files, so the first attempt does not read them back (a 3,000-location
        snapshot: ~40 ms)."""
        self._on_disk.update(other._on_disk)

    def keep_newer(self, feed: FeedConfig, now: datetime) -> None:
        """Load the last good data (recovering it when the store has none) and replace it with
        the published file's where the file is newer (a restart after a cache-write outage)."""
        good = self.load_good(feed)
        newer = self.newer_on_disk(feed, good, now)
        if newer is None:
            return
        self.store.set(f"good/{feed.name}", newer)
        if not self.store.get(f"snapshot/{feed.name}"):
            # The file's own state: its stale_since is kept, its status recomputed.
            rec = read_snapshot(self.config.snapshot_dir, feed)
            if rec is not None:
                self.store.set(
                    f"snapshot/{feed.name}",
                    {"status": rec.status, "stale_since": rec.stale_since, "outcome": None},
                )

    def remember_written(self, feed: FeedConfig, snap: dict[str, Any]) -> None:
        try:
            st = snapshot_path(self.config.snapshot_dir, feed.name).stat()
        except OSError:
            self._on_disk.pop(feed.name, None)
            return
        data = snap.get("data")
        locs = {
            loc["id"]: at
            for loc in ((data or {}).get("locations") or [])
            if (at := _parse_time(loc.get("fetched_at"))) is not None
        }
        self._on_disk[feed.name] = (
            (st.st_ino, st.st_size, st.st_mtime_ns), _parse_time(snap.get("fetched_at")), locs
        )

    def newer_on_disk(self, feed: FeedConfig, good: GoodData | None, now: datetime) -> GoodData | None:
        """The published file's data where it is newer than ``good`` (per location for
        weather), or None when ``good`` may be written over it.

        A file time more than a day past the clock (a forged file, a clock far off) is not
        believed; the file's data is taken only if it reads back valid (feeds.recovery).
        """
        state = self.disk_state(feed)
        if state is None or good is None:
            return None
        top, locs = state
        # A file time ahead of the clock is no proof of newer data: the wall clock was stepped
        # back since it was written (NTP, a VM restore), or the file is forged.  Keeping it
        # would refuse every fetch until the clock caught up (issue 16: never silently frozen).
        limit = now + AHEAD_SLACK

        def newer(on_disk: datetime | None, ours: datetime | None) -> bool:
            if on_disk is None or on_disk > limit:
                return False
            return ours is None or on_disk > ours.replace(microsecond=0)

        if feed.data_kind == "weather":
            if _none_newer(locs, good, feed, limit):
                return None
            ours_locs = {
                loc.get("id"): _parse_time(loc.get("fetched_at"))
                for loc in (good.data.get("locations") or [])
                if isinstance(loc, dict)
            }
            wanted = _wanted(feed)
            if not any(newer(at, ours_locs.get(lid)) for lid, at in locs.items() if lid in wanted):
                return None
        else:
            ours_locs = {}
            if not newer(top, good.fetched_at):
                return None
        rec = read_snapshot(self.config.snapshot_dir, feed)
        if rec is None:
            return None
        try:
            bounds.check_good(rec.good)
        except InvalidPayloadError:
            return None
        if feed.data_kind != "weather":
            if not newer(rec.good.fetched_at, good.fetched_at):
                return None
            logger.warning(
                "published snapshot is newer than the data to publish, kept feed=%s file_fetched_at=%s "
                "data_fetched_at=%s", feed.name, _text(rec.good.fetched_at), _text(good.fetched_at),
            )
            return rec.good
        theirs = {loc["id"]: loc for loc in rec.good.data.get("locations") or []}
        ours = {loc.get("id"): loc for loc in good.data.get("locations") or [] if isinstance(loc, dict)}
        merged: list[dict[str, Any]] = []
        taken = 0
        for loc in feed.locations:
            mine, file_loc = ours.get(loc.id), theirs.get(loc.id)
            if file_loc is not None and newer(_parse_time(file_loc.get("fetched_at")), ours_locs.get(loc.id)):
                merged.append(file_loc)
                taken += 1
            elif mine is not None:
                merged.append(mine)
        if not taken or not merged:
            return None
        logger.warning(
            "published snapshot has newer locations than the data to publish, kept feed=%s locations=%d",
            feed.name, taken,
        )
        as_ofs = [t for t in (good.as_of, rec.good.as_of) if t is not None]
        oldest = min(at for m in merged if (at := _parse_time(m.get("fetched_at"))) is not None)
        return replace(good, data={**good.data, "locations": merged}, fetched_at=oldest,
                       as_of=min(as_ofs) if as_ofs else None)


def _none_newer(
    on_disk: Mapping[str, datetime], good: GoodData, feed: FeedConfig, limit: datetime
) -> bool:
    """True when, plainly, no location of the published file is newer than ``good``'s: every
    wanted one on disk is in ``good``, no time on disk is past ``limit``, and the newest on
    disk is no later than the oldest of ``good`` (whole seconds).  False means "look location
    by location" (``newer_on_disk``), never "newer".  Two passes in C-speed comprehensions
    instead of 3,000 comparisons in Python, twice per attempt (issue 20).
    """
    wanted = _wanted(feed)
    disk = [at for lid, at in on_disk.items() if lid in wanted]
    if not disk:
        return True
    newest = max(disk)
    if newest > limit:
        return False  # a time past the clock on disk: the location-by-location rules decide
    locations = good.data.get("locations") or []
    if not all(type(loc) is dict for loc in locations):
        return False
    ids = {lid for loc in locations if type(lid := loc.get("id")) is str}
    if not all(lid in ids for lid in on_disk if lid in wanted):
        return False
    texts = {text if type(text := loc.get("fetched_at")) is str else None for loc in locations}
    times = [_parse_time(text) for text in texts]
    if any(t is None for t in times):
        return False
    oldest = min(t for t in times if t is not None)
    return newest <= oldest.replace(microsecond=0)


def _wanted(feed: FeedConfig) -> frozenset[str]:
    """The ids of a feed's configured locations (a FeedConfig is frozen; its tuple is read once)."""
    found = _WANTED.get(id(feed.locations))
    if found is None or found[0] is not feed.locations:
        found = (feed.locations, frozenset(loc.id for loc in feed.locations))
        _WANTED[id(feed.locations)] = found
        if len(_WANTED) > 64:
            _WANTED.pop(next(iter(_WANTED)))
    return found[1]


_WANTED: dict[int, tuple[Any, frozenset[str]]] = {}


def _parse_time(text: Any) -> datetime | None:
    """An aware ISO 8601 time from a snapshot, or None."""
    if not isinstance(text, str):
        return None
    return _aware_time(text[:40])


@functools.lru_cache(maxsize=4096)
def _aware_time(text: str) -> datetime | None:
    """``_parse_time``'s reading, remembered: the 3,000 locations of a weather snapshot share a
    few times, read twice per attempt (never-older, and after the write; issue 20)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def _text(dt: datetime | None) -> str:
    try:
        return dt.isoformat() if dt is not None else "-"
    except (ValueError, OverflowError):
        return "?"


class NotWritten(Exception):
    """The snapshot could not be written (a local fault)."""

    def __init__(self, snapshot: dict[str, Any], error: LocalError) -> None:
        super().__init__(error.message)
        self.snapshot = snapshot
        self.error = error
