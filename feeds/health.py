"""Feed health for admins: ``portal-feeds status`` and the ``check`` monitoring plugin.

Both read the shared store (diskcache is safe across processes), so they work while the
daemon runs and while it is stopped.  ``feed_rows`` is the one place a feed's health row is
assembled; the status table, its JSON form, ``check``, the systemd STATUS line and the
Prometheus metrics all use it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from feeds import trust
from feeds.clock import AHEAD_SLACK, Clock, SystemClock
from feeds.config import Config, FeedConfig
from feeds.localfaults import NOT_WRITTEN, probe_folder
from feeds.models import isoformat
from feeds.politeness import HostGuard
from feeds.recovery import MAX_SNAPSHOT_BYTES, read_snapshot, snapshot_path
from feeds.store import GoodData, Health, Store, open_store_readonly

if TYPE_CHECKING:
    from feeds.instance import DaemonState

__all__ = [
    "EX_CANNOT_READ",
    "CannotRead",
    "CheckResult",
    "FeedRow",
    "Published",
    "clock_warnings",
    "evaluate_check",
    "feed_rows",
    "format_table",
    "local_faults",
    "print_status",
    "published_files",
    "read_generated_at",
    "read_rows",
    "rewrite_deadline",
    "run_check",
    "status_line",
]

NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


@dataclass(frozen=True)
class FeedRow:
    """One feed's health, as shown to an admin."""

    feed: str
    kind: str
    status: str  # published status, or "unknown" when never attempted
    data_age_s: float | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    outcome: str | None
    detail: str | None
    consecutive_failures: int
    circuit: str
    next_attempt_at: datetime | None
    every_s: float
    source_used: str | None
    fallback_used: bool
    stale_dns_used: bool
    attempts: dict[str, int]
    #: The daemon's scheduler events for this feed (``missed``, ``job_error``, ``still_running``).
    scheduler_events: dict[str, int] = field(default_factory=dict)
    last_scheduler_event: str | None = None
    last_scheduler_event_at: datetime | None = None
    #: When last good data was last recovered from the published snapshot (issue 9).
    recovered_at: datetime | None = None
    recovered_fetched_at: datetime | None = None
    #: What is known about the upstream's trustworthiness (``feeds.trust``, issue 8).
    upstream: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "kind": self.kind,
            "status": self.status,
            # Never negative: fetched_at ahead of now (a clock step) reads 0 and is flagged.
            "data_age_s": None if self.data_age_s is None else max(round(self.data_age_s), 0),
            "fetched_at_in_future": self.data_age_s is not None and self.data_age_s < -FUTURE_SKEW,
            "last_success_at": isoformat(self.last_success_at),
            "last_attempt_at": isoformat(self.last_attempt_at),
            "outcome": self.outcome,
            "detail": self.detail,
            "consecutive_failures": self.consecutive_failures,
            "circuit": self.circuit,
            "next_attempt_at": isoformat(self.next_attempt_at),
            "every_s": self.every_s,
            "source_used": self.source_used,
            "fallback_used": self.fallback_used,
            "stale_dns_used": self.stale_dns_used,
            "attempts": dict(self.attempts),
            "scheduler_events": dict(self.scheduler_events),
            "last_scheduler_event": (
                {"event": self.last_scheduler_event, "at": isoformat(self.last_scheduler_event_at)}
                if self.last_scheduler_event
                else None
            ),
            "recovered": (
                {"at": isoformat(self.recovered_at), "fetched_at": isoformat(self.recovered_fetched_at)}
                if self.recovered_at
                else None
            ),
            "upstream": upstream_json(self.upstream),
        }


def upstream_json(entry: dict[str, Any]) -> dict[str, Any]:
    """``feeds.trust``'s entry for ``status --json``: timestamps as ISO 8601, no tables."""
    pending = entry.get("move_pending") or {}
    accepted = entry.get("move_accepted") or {}
    return {
        "upstream_stale_since": isoformat(entry.get("upstream_stale_since")),
        "dropped_codes": list(entry.get("dropped") or []),
        "move_pending": (
            {"since": isoformat(pending.get("since")), "answers": pending.get("count")} if pending else None
        ),
        "move_accepted": (
            {"at": isoformat(accepted.get("at")), "since": isoformat(accepted.get("since")),
             "answers": accepted.get("answers")}
            if accepted
            else None
        ),
    }


def upstream_notes(entry: dict[str, Any], now: datetime) -> list[str]:
    """Short notes for the status table's OUTCOME column."""
    notes = []
    if entry.get("upstream_stale_since"):
        notes.append(f"upstream data not updated since {_since(entry['upstream_stale_since'], now)}")
    if entry.get("dropped"):
        notes.append(f"{len(entry['dropped'])} unknown codes dropped")
    pending = entry.get("move_pending")
    if pending:
        notes.append(f"move > max_change seen {pending.get('count')}x")
    accepted = entry.get("move_accepted")
    if accepted and (now - accepted["at"]).total_seconds() < RECENT_SCHEDULER_EVENT:
        notes.append(f"move accepted {_since(accepted['at'], now)}")
    return notes


def _circuit(guard: HostGuard, feed: FeedConfig, now: datetime) -> str:
    import httpx

    host = httpx.URL(feed.source.url).host
    return guard.breaker(host, now).state


def feed_rows(config: Config, store: Store, now: datetime, names: Sequence[str] | None = None) -> list[FeedRow]:
    """Assemble the health row of each feed from the store."""
    guard = HostGuard(store, breaker_threshold=config.breaker_failures, breaker_cooldown=config.breaker_cooldown)
    rows = []
    for name in names or list(config.feeds):
        feed = config.feeds[name]
        h: Health = store.get(f"health/{name}") or Health(feed=name)
        good = store.get(f"good/{name}")
        if not isinstance(good, GoodData):
            # The cache lost it: the published snapshot still has it (what the daemon recovers).
            rec = read_snapshot(config.snapshot_dir, feed)
            good = rec.good if rec else None
        last_event: dict[str, Any] = store.get(f"scheduler/{name}/last") or {}
        recovered: dict[str, Any] = store.get(f"recovered/{name}") or {}
        rows.append(
            FeedRow(
                feed=name,
                kind=feed.data_kind,
                status=h.status or "unknown",
                data_age_s=(now - good.fetched_at).total_seconds() if good else None,
                last_success_at=h.last_success_at,
                last_attempt_at=h.last_attempt_at,
                outcome=h.outcome,
                detail=h.detail,
                consecutive_failures=h.consecutive_failures,
                circuit=_circuit(guard, feed, now),
                next_attempt_at=h.next_attempt_at,
                every_s=feed.every,
                source_used=h.source_used,
                fallback_used=h.fallback_used,
                stale_dns_used=h.stale_dns_used,
                attempts=dict(h.attempts),
                scheduler_events=dict(store.get(f"scheduler/{name}") or {}),
                last_scheduler_event=last_event.get("event"),
                last_scheduler_event_at=last_event.get("at"),
                recovered_at=recovered.get("at"),
                recovered_fetched_at=recovered.get("fetched_at"),
                upstream=trust.read(store, name),
            )
        )
    return rows


#: A scheduler event younger than this is shown in the status table.
RECENT_SCHEDULER_EVENT = 86400.0


#: A time this far ahead of now is "in the future": the clock was stepped back since it was
#: written (NTP, a VM restore).
FUTURE_SKEW = AHEAD_SLACK.total_seconds()
FUTURE = "in the future (clock stepped?)"


def _age(seconds: float | None) -> str:
    """A duration for a human; never negative (a time ahead of now says so)."""
    if seconds is None:
        return "-"
    if seconds < -FUTURE_SKEW:
        return FUTURE
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def _when(dt: datetime | None, now: datetime) -> str:
    """When a planned time comes (``in 14m``) or came (``5m ago``)."""
    if dt is None:
        return "never"
    delta = (now - dt).total_seconds()
    return f"{_age(delta)} ago" if delta >= 0 else f"in {_age(-delta)}"


def _since(dt: datetime | None, now: datetime) -> str:
    """How long ago a past event was (``5m ago``); one in the future says so, never ``in 5m``."""
    if dt is None:
        return "never"
    delta = (now - dt).total_seconds()
    return FUTURE if delta < -FUTURE_SKEW else f"{_age(delta)} ago"


def _future(dt: datetime | None, now: datetime) -> bool:
    return dt is not None and (dt - now).total_seconds() > FUTURE_SKEW


def clock_warnings(row: FeedRow, now: datetime) -> list[str]:
    """Times that should be past but are ahead of now: nothing can be proven about them."""
    notes = []
    if row.data_age_s is not None and row.data_age_s < -FUTURE_SKEW:
        notes.append(f"fetched_at {FUTURE}")
    if _future(row.last_attempt_at, now):
        notes.append(f"last attempt {FUTURE}")
    if _future(row.last_success_at, now):
        notes.append(f"last success {FUTURE}")
    since = row.upstream.get("upstream_stale_since")
    if isinstance(since, datetime) and _future(since, now):
        notes.append(f"upstream_stale_since {FUTURE}")
    return notes


def format_table(rows: Sequence[FeedRow], now: datetime, *, daemon_running: bool = True) -> str:
    """An aligned, readable table, one row per feed.  With no daemon running nothing is
    scheduled: NEXT RUN says ``no daemon`` rather than a planned time nobody will keep."""
    header = ["FEED", "STATUS", "AGE", "LAST SUCCESS", "LAST ATTEMPT", "OUTCOME", "FAILS", "CIRCUIT", "NEXT RUN"]
    body = []
    for r in rows:
        outcome = r.outcome or "-"
        if r.detail:
            outcome += f" ({r.detail})"
        notes = []
        if r.fallback_used and r.source_used:
            notes.append(f"via {r.source_used}")
        if r.stale_dns_used:
            notes.append("stale dns")
        at = r.last_scheduler_event_at
        if r.last_scheduler_event and at is not None and (now - at).total_seconds() < RECENT_SCHEDULER_EVENT:
            notes.append(f"scheduler {r.last_scheduler_event} {_since(at, now)}")
        rec = r.recovered_at
        if rec is not None and (now - rec).total_seconds() < RECENT_SCHEDULER_EVENT:
            notes.append(f"recovered from snapshot {_since(rec, now)}")
        notes += upstream_notes(r.upstream, now)
        notes += clock_warnings(r, now)
        if notes:
            outcome += " [" + ", ".join(notes) + "]"
        body.append(
            [
                r.feed,
                r.status,
                _age(r.data_age_s),
                _since(r.last_success_at, now),
                _since(r.last_attempt_at, now),
                outcome,
                str(r.consecutive_failures),
                r.circuit,
                _when(r.next_attempt_at, now) if daemon_running else "no daemon",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    return "\n".join(lines)


def status_line(rows: Sequence[FeedRow]) -> str:
    """One-line summary: ``2 feeds: 1 fresh, 1 stale (exchange-rates: dns)``."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    order = ["fresh", "stale", "expired", "unavailable", NOT_WRITTEN, "unknown"]
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    bad = [f"{r.feed}: {r.outcome}" for r in rows if r.outcome not in (None, "ok", "held_back")]
    text = f"{len(rows)} feeds: " + ", ".join(parts)
    if bad:
        text += " (" + "; ".join(bad) + ")"
    return text


def local_faults(config: Config) -> list[str]:
    """What on this machine keeps snapshots or the cache from being written, seen from here.

    The daemon records a failed write in the feed's health, but not when the cache itself
    is on the full or read-only disk; so ``status`` and ``check`` look at the folders too
    (without writing anything).
    """
    faults = []
    for label, folder in (("snapshot folder", config.snapshot_dir), ("cache folder", config.cache_dir)):
        reason = probe_folder(folder)
        # "permission" is this reader's, not the daemon's (status may run as another user).
        if reason and reason != "permission":
            faults.append(f"{label} {folder}: {reason}")
    for name in config.feeds:
        path = snapshot_path(config.snapshot_dir, name)
        try:
            if path.is_dir():
                faults.append(f"snapshot {path}: is_a_directory")
        except OSError:
            continue  # a user who may not look there: nothing seen (status says it cannot read)
    return faults


#: ``status`` could not read the feed health (the Nagios UNKNOWN code, for symmetry with ``check``).
EX_CANNOT_READ = 3


class CannotRead(Exception):
    """The feed health could not be read; the message is one sentence for the admin."""


def read_rows(config: Config, now: datetime, names: Sequence[str] | None = None) -> list[FeedRow]:
    """Read every feed's health row, or raise ``CannotRead`` with a sentence saying why.

    Opens the cache read-only (``feeds.store.open_store_readonly``): never creates, writes or
    repairs it.  A missing folder means the daemon has not run yet (or this is not the
    configuration it reads); a damaged cache is repaired by ``fetch`` or the daemon.
    """
    where = f"paths.cache_dir {config.cache_dir}"
    try:
        if not config.cache_dir.exists():
            raise CannotRead(
                f"{where} does not exist: the daemon has not run yet with "
                f"{config.path or 'the built-in defaults'}, or it reads another configuration"
            )
        if not config.cache_dir.is_dir():
            raise CannotRead(f"{where} exists and is not a folder")
        from feeds.store import DB_NAME

        if not (config.cache_dir / DB_NAME).exists():
            # A reader never creates the database: say there is nothing yet.
            raise CannotRead(f"{where} holds no feed health yet: the daemon has not completed a start")
        store = open_store_readonly(config.cache_dir)
        try:
            rows = feed_rows(config, store, now, names)
        finally:
            store.close()
        problem = store.problem
    except CannotRead:
        raise
    except PermissionError:
        problem = "permission"
    except OSError as exc:
        raise CannotRead(f"{where} cannot be read ({type(exc).__name__}: {str(exc)[:120]})") from None
    if problem == "permission":
        from feeds.folders import current_user

        raise CannotRead(f"{where} cannot be read by {current_user()} (run as the service's user)")
    if problem is not None:
        raise CannotRead(
            f"{where} could not be read ({problem}); `portal-feeds fetch` or the running daemon "
            "moves a damaged cache aside and recovers the data from the published snapshots"
        )
    return rows


# -- the published files (issue 16 §4) ------------------------------------------------------
@dataclass(frozen=True)
class Published:
    """When a feed's published file was last rewritten, read from the file itself."""

    feed: str
    path: Path
    generated_at: datetime | None
    #: Why ``generated_at`` could not be read (``missing``, ``unreadable``, ``not_json``,
    #: ``no_generated_at``), else None.
    problem: str | None
    #: The file must have been rewritten at or after this time (``rewrite_deadline``).
    not_before: datetime
    now: datetime

    @property
    def limit_s(self) -> float:
        """The longest the file may go unrewritten, in seconds."""
        return max((self.now - self.not_before).total_seconds(), 0.0)

    @property
    def age_s(self) -> float | None:
        """Seconds since the file was written; never negative (None when unknown or ahead)."""
        if self.generated_at is None or self.in_future:
            return None
        return max((self.now - self.generated_at).total_seconds(), 0.0)

    @property
    def in_future(self) -> bool:
        return _future(self.generated_at, self.now)

    def verdict(self) -> str | None:
        """Why this file proves nothing about a recent rewrite, or None when it does."""
        if self.problem is not None:
            return f"file {self.problem.replace('_', ' ')} ({self.path})"
        if self.in_future:
            return f"file generated_at {FUTURE}: when it was last rewritten cannot be told"
        assert self.generated_at is not None
        if self.generated_at < self.not_before:
            return f"file not rewritten for {_age(self.age_s)} (limit {_age(self.limit_s)})"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "generated_at": isoformat(self.generated_at),
            "age_s": None if self.age_s is None else round(self.age_s),
            "generated_at_in_future": self.in_future,
            "rewrite_limit_s": round(self.limit_s),
            "problem": self.verdict(),
        }


def read_generated_at(snapshot_dir: Path, feed: str) -> tuple[datetime | None, str | None]:
    """The ``generated_at`` of the feed's published file, or None and why not; never raises."""
    path = snapshot_path(snapshot_dir, feed)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SNAPSHOT_BYTES + 1)
    except FileNotFoundError:
        return None, "missing"
    except OSError:
        return None, "unreadable"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "not_json"
    value = doc.get("generated_at") if isinstance(doc, dict) else None
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return None, "no_generated_at"
    return when, None


def rewrite_deadline(feed: FeedConfig, now: datetime) -> datetime:
    """The earliest ``generated_at`` that proves the feed's file is being rewritten.

    Every attempt rewrites the file, so a file older than ``2 × every + deadline`` means at
    least one whole run was missed (one late or failed-to-start run is tolerated).  A feed
    on a cron expression (``at``) is judged by its own schedule: the file must have been
    rewritten since the second-to-last run due before ``now - deadline`` (quiet hours of the
    expression are not an alarm).
    """
    if not feed.at:
        return now - timedelta(seconds=2 * feed.every + feed.deadline)
    from feeds.schedule import build_trigger

    trigger = build_trigger(feed)
    until = now - timedelta(seconds=feed.deadline)
    span = timedelta(hours=1)
    while span <= timedelta(days=800):
        fires: list[datetime] = []
        t = trigger.get_next_fire_time(None, until - span)
        while t is not None and t <= until and len(fires) < 100_000:
            fires.append(t)
            t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
        if len(fires) >= 2:
            return fires[-2] - timedelta(seconds=1)
        span *= 4
    return now - timedelta(days=800)


def published_files(config: Config, names: Sequence[str], now: datetime) -> list[Published]:
    """Read each named feed's published file (for ``status`` and ``check``)."""
    out = []
    for name in names:
        feed = config.feeds[name]
        when, problem = read_generated_at(config.snapshot_dir, name)
        out.append(Published(name, snapshot_path(config.snapshot_dir, name), when, problem,
                             rewrite_deadline(feed, now), now))
    return out


def _daemon_faults(daemon: DaemonState | None) -> list[str]:
    """Local faults the running daemon itself reported in its heartbeat record."""
    if daemon is None or not daemon.daemon:
        return []
    return [f"{n} (seen by the daemon)" for n in daemon.notes]


def print_status(config: Config, *, as_json: bool = False, clock: Clock | None = None, out: TextIO | None = None) -> int:
    """``portal-feeds status``: 0 when every feed is fresh, every file was rewritten in time,
    no time is in the future and no local fault is seen; 1 otherwise; 3 when health cannot be
    read."""
    out = out or sys.stdout
    from feeds.instance import daemon_state

    now = (clock or SystemClock()).now()
    daemon = daemon_state(config.cache_dir)
    origin = str(config.path) if config.path else "built-in defaults"
    try:
        rows = read_rows(config, now)
    except CannotRead as exc:
        notes = "".join(f"; local fault: {f}" for f in _daemon_faults(daemon))
        sys.stderr.write(
            f"portal-feeds: cannot read the feed health: {exc} (config {origin}; {daemon.describe(now)}{notes})\n"
        )
        return EX_CANNOT_READ
    faults = local_faults(config) + _daemon_faults(daemon)
    files = {p.feed: p for p in published_files(config, list(config.feeds), now)}
    beat = daemon.heartbeat_problem(now)
    if as_json:
        feeds = []
        for r in rows:
            doc = r.to_json()
            doc["published"] = files[r.feed].to_json()
            doc["clock_warnings"] = clock_warnings(r, now)
            feeds.append(doc)
        daemon_doc = daemon.to_json()
        daemon_doc["heartbeat_problem"] = beat
        body = {
            "generated_at": isoformat(now),
            "config": origin,
            "daemon": daemon_doc,
            "summary": status_line(rows),
            "feeds": feeds,
            "local_faults": faults,
        }
        out.write(json.dumps(_in_zone(body, config.publish.tz), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(f"config {origin}; {daemon.describe(now)}{'; ' + beat if beat else ''}\n\n")
        out.write(format_table(rows, now, daemon_running=daemon.running is None or daemon.daemon) + "\n")
        for fault in faults:
            out.write(f"local fault: {fault}\n")
        for pub in files.values():
            why = pub.verdict()
            if why:
                out.write(f"{pub.feed}: {why}\n")
    doubtful = any(clock_warnings(r, now) for r in rows) or any(p.verdict() for p in files.values())
    return 0 if all(r.status == "fresh" for r in rows) and not faults and not doubtful else 1


_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)$")


def _in_zone(doc: Any, tz: tzinfo) -> Any:
    """Every ISO 8601 time in ``doc`` re-expressed in the publish zone ([publish] timezone),
    so that ``status --json`` never mixes ``+00:00`` and ``+07:00``."""
    if isinstance(doc, dict):
        return {k: _in_zone(v, tz) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_in_zone(v, tz) for v in doc]
    if isinstance(doc, str) and _ISO_TIME.match(doc):
        when = datetime.fromisoformat(doc.replace("Z", "+00:00")).astimezone(tz)
        return isoformat(when) if when.microsecond == 0 else when.isoformat()
    return doc


@dataclass(frozen=True)
class CheckResult:
    """A Nagios plugin answer."""

    code: int
    line: str
    #: What made it WARNING or worse, one phrase each.
    problems: tuple[str, ...] = ()


def evaluate_check(
    rows: Sequence[FeedRow], now: datetime, *, stale_warning: bool = True, missed_intervals: float = 3.0,
    faults: Sequence[str] = (), published: Sequence[Published] = (), daemon: DaemonState | None = None,
    require_daemon: bool = False,
) -> CheckResult:
    """Apply the plugin thresholds.

    CRITICAL: the daemon is not running (``require_daemon``), wedged, or not known to run; a
    feed's file was not rewritten within ``2 × every + deadline`` (or is missing, unreadable,
    or says it was written in the future); a local fault; a feed expired/unavailable, not
    attempted, never attempted.  WARNING: stale, the upstream's data frozen, a time in the
    future (the clock was stepped back).  Nothing is OK that cannot be proven.
    """
    code = 2 if faults else 0
    problems: list[str] = [f"local fault: {f}" for f in faults]
    if daemon is not None and require_daemon:
        if daemon.running is None:
            code, problems = 2, [*problems, f"daemon state unknown ({daemon.problem})"]
        elif not daemon.daemon:
            code, problems = 2, [*problems, "daemon down"]
    if daemon is not None:
        beat = daemon.heartbeat_problem(now)
        if beat is not None:
            level = 1 if "future" in beat else 2
            code, problems = max(code, level), [*problems, f"daemon {beat}"]
    perf: list[str] = []
    files = {p.feed: p for p in published}
    for r in rows:
        level = 0
        head = ""  # the health's reason, followed by the outcome
        extra: list[str] = []  # what the file and the clock say
        attempt_future = _future(r.last_attempt_at, now)
        if r.last_attempt_at is None:
            level, head = 2, "never attempted"
        elif not attempt_future and (now - r.last_attempt_at).total_seconds() > missed_intervals * r.every_s:
            level, head = 2, f"not attempted for {_age((now - r.last_attempt_at).total_seconds())}"
        elif r.outcome == "local":
            # Our machine, not the upstream: an admin must act now, whatever the data's age.
            level, head = 2, "not written" if r.status == NOT_WRITTEN else "local fault"
        elif r.status in ("expired", "unavailable"):
            level, head = 2, r.status
        elif r.status == "stale" and stale_warning:
            level, head = 1, "stale"
        elif r.upstream.get("upstream_stale_since") is not None:
            # Fetched on time, but the upstream's own data has not moved (feeds.frozen).
            since = r.upstream["upstream_stale_since"]
            level, head = 1, f"upstream data stale for {_age((now - since).total_seconds())}"
        pub = files.pop(r.feed, None)
        verdict = pub.verdict() if pub is not None else None
        if verdict is not None:
            # The file on disk is what portals read: not rewritten means not refreshed.
            level = 2
            extra.append(verdict)
        # A time ahead of now proves nothing: at least a WARNING.
        for note in clock_warnings(r, now):
            level = max(level, 1)
            extra.append(note)
        if level:
            reason = f"{r.feed} {head}" if head else f"{r.feed}"
            if head and r.outcome not in (None, "ok", "held_back"):
                reason += f" ({r.outcome}{'/' + r.detail if r.detail else ''})"
            if extra:
                reason += (", " if head else " ") + ", ".join(extra)
            problems.append(reason)
        code = max(code, level)
        label = r.feed.replace("'", "")
        age = "U" if r.data_age_s is None else f"{max(int(r.data_age_s), 0)}s"
        perf.append(f"'{label}_age'={age}")
        perf.append(f"'{label}_failures'={r.consecutive_failures}")
    for pub in files.values():  # files of feeds without a health row (the cache unreadable)
        verdict = pub.verdict()
        if verdict is not None:
            code, problems = 2, [*problems, f"{pub.feed} {verdict}"]
    fresh = sum(1 for r in rows if r.status == "fresh")
    summary = f"{fresh}/{len(rows)} feeds fresh"
    if problems:
        summary += "; " + ", ".join(problems)
    return CheckResult(code, f"PORTAL-FEEDS {NAGIOS[code]} - {summary} | {' '.join(perf)}", tuple(problems))


def run_check(config: Config, names: Sequence[str], *, clock: Clock | None = None, out: TextIO | None = None) -> int:
    """``portal-feeds check``: print the plugin line, return its exit code."""
    out = out or sys.stdout
    from feeds.instance import daemon_state

    now = (clock or SystemClock()).now()
    daemon = daemon_state(config.cache_dir)
    about = f"{daemon.describe(now)}; config {config.path or 'built-in defaults'}"
    files = published_files(config, list(names) or list(config.feeds), now)
    faults = local_faults(config) + _daemon_faults(daemon)
    try:
        rows = read_rows(config, now, names)
    except CannotRead as exc:
        # What can be told without the health still counts: a dead daemon, an old file.
        known = evaluate_check(
            [], now, faults=faults, published=files, daemon=daemon, require_daemon=config.check_require_daemon,
        )
        if known.code == 2:
            out.write(f"PORTAL-FEEDS CRITICAL - {', '.join(known.problems)}; cannot read the feed health: "
                      f"{exc}; {about} |\n")
            return 2
        out.write(f"PORTAL-FEEDS UNKNOWN - cannot read the feed health: {exc}; {about}\n")
        return 3
    result = evaluate_check(
        rows, now, stale_warning=config.check_stale_warning, missed_intervals=config.check_missed_intervals,
        faults=faults, published=files, daemon=daemon, require_daemon=config.check_require_daemon,
    )
    text, _, perf = result.line.partition(" | ")
    out.write(f"{text}; {about} | {perf}\n")
    return result.code
