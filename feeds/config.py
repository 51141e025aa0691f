"""Configuration: a TOML file (read with tomllib) turned into frozen, typed settings.

Lookup order: ``--config PATH``; else ``config/portal-feeds.toml`` under the working
directory; else ``/etc/portal-feeds/portal-feeds.toml``; else the embedded defaults
(``DEFAULT_TOML``, the same text as the shipped sample).  Relative paths inside a file
resolve against that file's own folder; the embedded defaults resolve against the working
directory (``./cache``, ``./snapshots``).

Every mistake raises ``ConfigError`` naming the key and what was expected; the CLI turns it
into one line and exit code 78 (EX_CONFIG), never a traceback.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feeds.models import Location
from feeds.settings import RATE_COLUMNS, SAFE_NAME, WEATHER_COLUMNS, PublishConfig, WidgetConfig
from feeds.sources import registry as _registry
from feeds.timezone import DEFAULT_TIMEZONE, load_zone

__all__ = [
    "PEER_KIND",
    "CONFIG_SEARCH_PATH",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BODY",
    "DEFAULT_USER_AGENT",
    "Config",
    "ConfigError",
    "DnsConfig",
    "FeedConfig",
    "SourceConfig",
    "UsageError",
    "default_config_text",
    "find_config",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_publish",
    "parse_size",
    "parse_widget",
]

#: Another portal-feeds instance's published snapshot, read over HTTP (feeds.sources.peer).
PEER_KIND = _registry.PEER
#: Every source kind and its defaults, from the one registry (feeds.sources.registry).
KINDS = _registry.kinds()
DATA_KINDS = ("exchange_rates", "weather")


# A kind's data kind, default URL and politeness interval are read from its module once a
# configuration names it: every source module imported up front (the peer's too, which a
# configuration without a peer feed never needs) was a few ms of every start (issue 20).
def _data_kind(kind: object) -> str | None:
    """The data kind of a known source kind; None for the peer's (its feed's) or an unknown kind."""
    if not isinstance(kind, str) or kind not in KINDS:
        return None
    value = _registry.source(kind).DATA_KIND
    return str(value) if value else None


def _default_url(kind: str) -> str:
    """The URL of a kind that has one (every kind but the peer's); KeyError for the others."""
    value = _registry.source(kind).DEFAULT_URL
    if not value:
        raise KeyError(kind)
    return str(value)


def _default_min_interval(kind: str) -> float:
    """Each source's terms (Vietcombank's own XML says "Only one request every 5 minutes!")."""
    return float(_registry.source(kind).MIN_INTERVAL)


def __getattr__(name: str) -> Any:
    """``DATA_KIND``, ``DEFAULT_URLS`` and ``DEFAULT_MIN_INTERVAL`` (kind -> value) as before,
    built when asked for (PEP 562): that imports every source module."""
    if name == "DATA_KIND":
        return {k: v for k in KINDS if (v := _data_kind(k))}
    if name == "DEFAULT_URLS":
        return {k: _default_url(k) for k in KINDS if _registry.source(k).DEFAULT_URL}
    if name == "DEFAULT_MIN_INTERVAL":
        return {k: _default_min_interval(k) for k in KINDS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_USER_AGENT = "portal-feeds/0.1 (+https://github.com/portal-feeds; webmaster@localhost)"
DEFAULT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 20.0
DEFAULT_MAX_BODY = 2_000_000
DEFAULT_MAX_CHANGE = 0.20
CONFIG_SEARCH_PATH = (Path("config/portal-feeds.toml"), Path("/etc/portal-feeds/portal-feeds.toml"))
BUILTIN_LOCATIONS = ("vietnam-provinces",)
#: The circuit breaker's defaults: those of ``feeds.politeness`` (the same numbers, written
#: here so that reading a configuration does not import the politeness machinery, its
#: dataclasses and the store under it before READY=1: issue 20; ``tests/test_start_lazy.py``
#: checks they agree).
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 600.0
EX_CONFIG = 78


class ConfigError(Exception):
    """A configuration mistake, phrased for the admin: ``key: expected ..., got ...``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class UsageError(Exception):
    """A command line naming something that does not exist (exit 2, not 78).

    Here beside ``ConfigError`` so that the commands (``feeds.cli``, ``feeds.history_cli``)
    share it without importing each other (no import circle, issue 20)."""


@dataclass(frozen=True)
class SourceConfig:
    """One upstream a feed can read: its kind and endpoint."""

    kind: str
    url: str
    #: A peer's data kind (a peer serves whatever its feed is); None for the others.
    data: str | None = None
    #: What snapshots publish as ``source.url`` (else the URL without secrets, feeds.redact).
    public_url: str | None = None

    @property
    def data_kind(self) -> str:
        data = self.data or _data_kind(self.kind)
        if data is None:
            raise KeyError(self.kind)  # a peer without its data kind (never from parse_config)
        return data


@dataclass(frozen=True)
class FeedConfig:
    """One ``[feeds.NAME]`` table."""

    name: str
    source: SourceConfig
    every: float
    max_stale: float
    timeout: float
    deadline: float
    min_interval: float
    max_change: float
    locations: tuple[Location, ...] = ()
    fallback: tuple[SourceConfig, ...] = ()
    at: str | None = None
    batch_size: int = 100
    #: What the server-side fragment <feed>.html shows (issue 12).
    widget: WidgetConfig = field(default_factory=WidgetConfig)
    #: Weather: also publish <feed>/<location id>.json (issue 11).
    per_location_files: bool = False
    #: Share of the attempt's time the primary gets when a fallback exists (feeds.batching).
    primary_share: float = 0.5
    #: Rates: also publish <feed>.xml in the shape of the bank's pXML.aspx (issue 22).
    mirror: str | None = None
    #: Rates history (issue 21): days the archive keeps (0 = no history), days in <feed>.history.json.
    history_keep: int = 400
    history_days: int = 30

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def data_kind(self) -> str:
        return self.source.data_kind

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        """The primary source then its fallbacks, in the order they are tried."""
        return (self.source, *self.fallback)


@dataclass(frozen=True)
class DnsConfig:
    """``[dns]``: the resolver seam's settings."""

    nameservers: tuple[str, ...] = ()
    timeout: float = 5.0
    stale_max: float = 7 * 86400.0
    #: RFC 8767 client response timer: answer from the last known addresses after this.
    stale_answer_after: float = 1.8


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path | None
    cache_dir: Path
    snapshot_dir: Path
    feeds: Mapping[str, FeedConfig]
    user_agent: str = DEFAULT_USER_AGENT
    max_body: int = DEFAULT_MAX_BODY
    breaker_failures: int = DEFAULT_BREAKER_THRESHOLD
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    proxy: str | None = None
    #: ``[http] retry_after_max``: the longest a Retry-After may hold a host back.
    retry_after_max: float = 3600.0
    #: ``[http] follow_redirects_to``: other hosts (``host`` or ``host:port``) a redirect may lead to.
    follow_redirects_to: tuple[str, ...] = ()
    dns: DnsConfig = field(default_factory=DnsConfig)
    metrics_file: Path | None = None
    check_stale_warning: bool = True
    check_missed_intervals: float = 3.0
    #: ``[monitoring] check_require_daemon``: ``check`` is CRITICAL when the daemon is not
    #: running (false: ``fetch`` runs from cron instead; the files are still judged).
    check_require_daemon: bool = True
    publish: PublishConfig = field(default_factory=PublishConfig)
    per_host_concurrency: int = 10


#: The longest duration any key accepts (a year): beyond it a value is a typo, and inf or
#: 1e308 would overflow the scheduler's and the clock's arithmetic.
MAX_DURATION = 365 * 86400.0
#: The largest ``max_body``.
MAX_BODY_LIMIT = 1024**3
#: A feed name becomes a file name (``<name>.json``) and a metric label.
FEED_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
MAX_USER_AGENT = 512

# ASCII digits only: int()/float() would also read full-width or Arabic-Indic digits.
_DURATION = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h|d)?\s*", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"\s*([0-9]{1,15}(?:\.[0-9]{1,9})?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*", re.IGNORECASE | re.ASCII)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: object, key: str) -> float:
    """Parse ``"90s"``, ``"15m"``, ``"48h"``, ``"7d"`` or a bare number of seconds.

    Finite, from 0 to ``MAX_DURATION``, ASCII digits only.
    """
    seconds: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(key, f"expected a positive duration, got {_show(value)}")
        # Compared before any float(): an integer of 400 digits would overflow it.
        seconds = float(value) if value <= MAX_DURATION else math.inf
    else:
        m = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise ConfigError(key, f'expected a duration like "30m", got {_show(value)}')
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 0 <= seconds <= MAX_DURATION:  # nan fails too
        raise ConfigError(key, f"expected a duration from 0 to 365d, got {_show(value)}")
    return seconds


def parse_size(value: object, key: str) -> int:
    """Parse ``"2MB"``, ``"512KiB"`` or a bare number of bytes: above 0, at most 1 GiB."""
    size: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value if 0 < value <= MAX_BODY_LIMIT else None
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if m:
            size = float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    if size is None or not 1 <= size <= MAX_BODY_LIMIT:
        raise ConfigError(key, f'expected a size like "2MB", from 1 byte to 1GiB, got {_show(value)}')
    return int(size)


def _show(value: object) -> str:
    """The value as the admin wrote it, shortened: an error message stays one short line."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):  # TOML's words, not Python's
        return "true" if value else "false"
    try:
        text = f'"{value}"' if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):  # an integer too long to print, a deep structure
        text = f"a {type(value).__name__} too large to show"
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= 80 else text[:77] + "..."


def ascii_header_value(value: str, key: str) -> str:
    """Make a header value ASCII: Vietnamese letters lose their marks, others are %-encoded.

    HTTP header values are ASCII in practice (httpx encodes them as ASCII and raises on
    anything else), and an admin will write ``"Cổng thông tin điện tử ..."``.  Letters
    with diacritics become their base letter (``ổ`` -> ``o``, ``đ`` -> ``d``); anything
    without an ASCII base (``☎``) is percent-encoded as UTF-8.  Control characters
    (line breaks, tabs) are refused: they could split the header.
    """
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ConfigError(key, "control characters (line breaks, tabs) are not allowed")
    out: list[str] = []
    for ch in value:
        if ch.isascii():
            out.append(ch)
            continue
        if ch in "đĐ":  # no Unicode decomposition: a letter of its own
            out.append("d" if ch == "đ" else "D")
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base.isascii() and base.isprintable():
            out.append(base)
        else:
            out.append(urllib.parse.quote(ch, safe=""))
    return "".join(out)


def _table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table, got {_show(value)}")
    return value


def _str(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty string, got {_show(value)}")
    return value.strip()


def _place_name(value: object, key: str) -> str:
    """A configured place name, cleaned as an upstream's (``feeds.text.clean_name``: no control,
    bidi or zero-width characters, whitespace collapsed, at most 64 characters)."""
    from feeds.text import clean_name

    name = clean_name(_str(value, key))
    if not name:
        raise ConfigError(key, f"expected a name with printable characters, got {_show(value)}")
    return name


def _number(value: object, key: str, lo: float, hi: float) -> float:
    # nan fails both comparisons; inf and 1e308 fail the bound.
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(key, f"expected a number from {lo:g} to {hi:g}, got {_show(value)}")
    return float(value)


def _url(value: object, key: str) -> str:
    """An http(s) URL httpx accepts whole: host, port 1-65535, no spaces or control characters.

    Checked by ``feeds.urlcheck`` (httpx's own rules without loading httpx before READY=1,
    issue 20): the same URLs pass, the same are refused with the same sentence."""
    from feeds.urlcheck import parse_host_port

    url = _str(value, key)
    problem = None
    if not re.match(r"https?://[^/\s]+", url, re.ASCII):
        problem = "expected an http:// or https:// URL"
    elif any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        problem = "spaces and control characters are not allowed in a URL (write %20)"
    else:
        try:
            host, port = parse_host_port(url)  # as httpx.URL and httpx.Request("GET", url)
        except ValueError as exc:  # httpx.InvalidURL; idna's errors are ValueErrors too
            problem = f"not a valid URL ({_show(str(exc))})"
        else:
            if not host or "%" in host:
                problem = "the URL has no valid host name"
            elif port is not None and not 1 <= port <= 65535:
                problem = f"port {port} is not from 1 to 65535"
    if problem:
        raise ConfigError(key, f"{problem}, got {_show(value)}")
    return url


def _nameserver(value: object, key: str) -> str:
    """``"1.1.1.1"``, ``"::1"``, ``"127.0.0.1:5353"`` or ``"[::1]:5353"``."""
    text = value if isinstance(value, str) else ""
    addr, port = text, "53"
    if text.startswith("[") and "]:" in text:
        addr, port = text[1:].split("]:", 1)
    elif text.count(":") == 1:
        addr, port = text.split(":")
    try:
        ipaddress.ip_address(addr)
        ok = port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            key, f'expected IP addresses like ["1.1.1.1", "127.0.0.1:5353", "[::1]:53"], got {_show(value)}'
        )
    return text


def _path(value: object, key: str) -> str:
    text = _str(value, key)
    if "\0" in text:
        raise ConfigError(key, "a path cannot hold a NUL character")
    return text


def _proxy(value: object) -> str:
    url = _str(value, "http.proxy")
    if not re.match(r"^http://([^@/\s]+@)?(\[[0-9A-Fa-f:.]+\]|[^:/@\s\[\]]+)(:\d+)?/?$", url):
        shown = re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)  # never echo a password
        raise ConfigError("http.proxy", f'expected an http://[user:password@]host:port URL, got "{shown}"')
    return url


def _unknown(table: Mapping[str, object], allowed: set[str], prefix: str) -> None:
    for k in table:
        if k not in allowed:
            shown = k if FEED_NAME.match(k) else _show(k)
            raise ConfigError(f"{prefix}.{shown}" if prefix else shown, "unknown key")


def _source(table: Mapping[str, Any], key: str) -> SourceConfig:
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{key}.kind", f"expected one of {', '.join(KINDS)}, got {_show(kind)}")
    if kind == PEER_KIND and "url" not in table:
        raise ConfigError(f"{key}.url", "missing: the URL of the other instance's <feed>.json")
    url = _url(table["url"], f"{key}.url") if "url" in table else _default_url(kind)
    public = _url(table["public_url"], f"{key}.public_url") if "public_url" in table else None
    return SourceConfig(kind=kind, url=url, public_url=public)


def _peer_data_kind(table: Mapping[str, Any], key: str) -> str:
    """A peer primary's data kind: ``data_kind``, else that of its first fallback."""
    if "data_kind" in table:
        value = table["data_kind"]
        if value not in DATA_KINDS:
            raise ConfigError(f"{key}.data_kind", f"expected one of {', '.join(DATA_KINDS)}, got {_show(value)}")
        return str(value)
    raw_fb = table.get("fallback")
    first = raw_fb[0].get("kind") if isinstance(raw_fb, list) and raw_fb and isinstance(raw_fb[0], dict) else None
    if (data := _data_kind(first)) is not None:
        return data
    raise ConfigError(
        f"{key}.data_kind", 'missing: "exchange_rates" or "weather" (or a non-peer fallback to take it from)'
    )


def _locations(value: object, key: str) -> tuple[Location, ...]:
    if value == "vietnam-provinces":
        from feeds.sources.provinces import VIETNAM_PROVINCES

        return VIETNAM_PROVINCES
    if not isinstance(value, list) or not value:
        raise ConfigError(
            key, f'expected "vietnam-provinces" or a list of {{id, name, lat, lon}}, got {_show(value)}'
        )
    out: list[Location] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        t = _table(item, k)
        _unknown(t, {"id", "name", "short_name", "lat", "lon"}, k)
        for req in ("id", "name", "lat", "lon"):
            if req not in t:
                raise ConfigError(f"{k}.{req}", "missing")
        loc = Location(
            id=_str(t["id"], f"{k}.id"),
            name=_place_name(t["name"], f"{k}.name"),
            lat=_number(t["lat"], f"{k}.lat", -90, 90),
            lon=_number(t["lon"], f"{k}.lon", -180, 180),
            short_name=_place_name(t["short_name"], f"{k}.short_name") if "short_name" in t else None,
        )
        if loc.id in seen:
            raise ConfigError(f"{k}.id", f'duplicate location id "{loc.id}"')
        seen.add(loc.id)
        out.append(loc)
    return tuple(out)


def _valid_cron(expr: str) -> bool:
    from feeds.schedule import cron_trigger

    try:
        cron_trigger(expr)
    except (ValueError, TypeError):
        return False
    return True


_FEED_KEYS = {
    "kind",
    "url",
    "public_url",
    "every",
    "at",
    "max_stale",
    "timeout",
    "deadline",
    "min_interval",
    "max_change",
    "locations",
    "fallback",
    "batch_size",
    "widget",
    "per_location_files",
    "primary_share",
    "data_kind",
    "mirror",
    "history_keep",
    "history_days",
}


def _feed(name: str, table: Mapping[str, Any]) -> FeedConfig:
    key = f"feeds.{name}"
    if not FEED_NAME.match(name):
        raise ConfigError(
            f"feeds.{_show(name)}",
            "a feed name is 1 to 64 ASCII letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    _unknown(table, _FEED_KEYS, key)
    source = _source(table, key)
    if source.kind == PEER_KIND:
        source = SourceConfig(source.kind, source.url, _peer_data_kind(table, key), source.public_url)
    elif "data_kind" in table:
        raise ConfigError(f"{key}.data_kind", f"not used by kind {source.kind}")
    every = parse_duration(table.get("every", "15m"), f"{key}.every")
    if every < 1:
        raise ConfigError(f"{key}.every", "expected at least 1s")
    at = table.get("at")
    if at is not None:
        if "every" in table:
            raise ConfigError(f"{key}.at", "set either at (a cron expression) or every, not both")
        at = _str(at, f"{key}.at")
        if len(at.split()) != 5 or not _valid_cron(at):
            raise ConfigError(f"{key}.at", f'expected a 5-field cron expression like "*/15 7-18 * * 1-6", got {_show(at)}')
    timeout = parse_duration(table.get("timeout", DEFAULT_TIMEOUT), f"{key}.timeout")
    deadline = parse_duration(table.get("deadline", DEFAULT_DEADLINE), f"{key}.deadline")
    if timeout <= 0:
        raise ConfigError(f"{key}.timeout", "expected a duration above 0")
    if deadline < timeout:
        raise ConfigError(f"{key}.deadline", "expected a duration no shorter than timeout")
    fallback: list[SourceConfig] = []
    raw_fb = table.get("fallback", [])
    if not isinstance(raw_fb, list):
        raise ConfigError(f"{key}.fallback", f"expected a list of {{kind, url}}, got {_show(raw_fb)}")
    for i, item in enumerate(raw_fb):
        k = f"{key}.fallback[{i}]"
        t = _table(item, k)
        _unknown(t, {"kind", "url", "public_url"}, k)
        fb = _source(t, k)
        if fb.kind == PEER_KIND:
            fb = SourceConfig(fb.kind, fb.url, source.data_kind, fb.public_url)
        if fb.data_kind != source.data_kind:
            raise ConfigError(f"{k}.kind", f"expected a {source.data_kind} source, got {_show(fb.kind)}")
        fallback.append(fb)
    locations: tuple[Location, ...] = ()
    only_peers = all(s.kind == PEER_KIND for s in (source, *fallback))
    if source.data_kind == "weather" and not (only_peers and "locations" not in table):
        if "locations" not in table:
            raise ConfigError(f"{key}.locations", 'missing: "vietnam-provinces" or a list of {id, name, lat, lon}')
        locations = _locations(table["locations"], f"{key}.locations")
    elif "locations" in table:
        raise ConfigError(f"{key}.locations", f"not used by kind {source.kind}")
    # The politest default of the feed's sources (a peer with the bank behind it: 5 minutes).
    default_min = max(_default_min_interval(s.kind) for s in (source, *fallback))
    min_interval = parse_duration(table.get("min_interval", default_min), f"{key}.min_interval")
    if at is None and every < min_interval:
        # Every attempt in between would be held back by politeness: the schedule would lie.
        raise ConfigError(
            f"{key}.every",
            f"{_show(table.get('every', '15m'))} is shorter than min_interval ({min_interval:g}s, "
            f"the upstream's limit): set every to at least that, or lower min_interval",
        )
    batch = table.get("batch_size", 100)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
        raise ConfigError(f"{key}.batch_size", f"expected a whole number from 1 to 1000, got {_show(batch)}")
    per_location = table.get("per_location_files", False)
    if not isinstance(per_location, bool):
        raise ConfigError(f"{key}.per_location_files", f"expected true or false, got {_show(per_location)}")
    if per_location and source.data_kind != "weather":
        raise ConfigError(f"{key}.per_location_files", f"not used by kind {source.kind}")
    if per_location:
        bad = [loc.id for loc in locations if not SAFE_NAME.match(loc.id)]
        if bad:
            raise ConfigError(f"{key}.locations", f"id {bad[0]!r} cannot name a file (letters, digits, '.', '_', '-')")
    mirror = _mirror(table, key, source.data_kind)
    widget = (
        parse_widget(table["widget"], f"{key}.widget", source.data_kind, [loc.id for loc in locations])
        if "widget" in table
        else WidgetConfig()
    )
    return FeedConfig(
        name=name,
        source=source,
        every=every,
        at=at,
        max_stale=parse_duration(table.get("max_stale", "48h"), f"{key}.max_stale"),
        timeout=timeout,
        deadline=deadline,
        min_interval=min_interval,
        max_change=_number(table.get("max_change", DEFAULT_MAX_CHANGE), f"{key}.max_change", 0, 100),
        locations=locations,
        fallback=tuple(fallback),
        batch_size=batch,
        widget=widget,
        per_location_files=per_location,
        primary_share=_number(table.get("primary_share", 0.5), f"{key}.primary_share", 0.1, 0.9),
        mirror=mirror,
        **_history(table, key, source.data_kind),
    )


def _history(table: Mapping[str, Any], key: str, data_kind: str) -> dict[str, int]:
    """``history_keep`` (days the archive keeps, 0 = none) and ``history_days`` (<feed>.history.json)."""
    out = {}
    for name, high in (("history_keep", 36500), ("history_days", 366)):
        if name not in table:
            continue
        if data_kind != "exchange_rates":
            raise ConfigError(f"{key}.{name}", f"not used by a {data_kind} feed: history is kept for rates, remove the key")
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ConfigError(f"{key}.{name}", f"expected a number of days from 0 to {high}, got {_show(value)}")
        out[name] = value
    return out


def _mirror(table: Mapping[str, Any], key: str, data_kind: str) -> str | None:
    """``mirror = "vietcombank-xml"``: a rates feed also writes <feed>.xml (feeds.mirror)."""
    if "mirror" not in table:
        return None
    from feeds.mirror import MIRRORS

    value = table["mirror"]
    if data_kind != "exchange_rates":
        raise ConfigError(
            f"{key}.mirror", f"not used by a {data_kind} feed: it copies Vietcombank's rate table, remove the key"
        )
    if value not in MIRRORS:
        raise ConfigError(f"{key}.mirror", f'expected "vietcombank-xml", got {_show(value)}')
    return str(value)


def parse_config(data: Mapping[str, Any], base_dir: Path, path: Path | None = None) -> Config:
    """Validate a decoded TOML document; relative paths resolve against ``base_dir``."""
    _unknown(data, {"paths", "http", "dns", "feeds", "monitoring", "publish"}, "")
    paths = _table(data.get("paths", {}), "paths")
    _unknown(paths, {"cache_dir", "snapshot_dir"}, "paths")
    cache_dir = base_dir / _path(paths.get("cache_dir", "cache"), "paths.cache_dir")
    snapshot_dir = base_dir / _path(paths.get("snapshot_dir", "snapshots"), "paths.snapshot_dir")

    http = _table(data.get("http", {}), "http")
    _unknown(
        http,
        {"user_agent", "max_body", "breaker_failures", "breaker_cooldown", "proxy", "retry_after_max",
         "follow_redirects_to", "per_host_concurrency"},
        "http",
    )
    user_agent = ascii_header_value(_str(http.get("user_agent", DEFAULT_USER_AGENT), "http.user_agent"), "http.user_agent")
    if len(user_agent) > MAX_USER_AGENT:
        raise ConfigError("http.user_agent", f"expected at most {MAX_USER_AGENT} characters, got {len(user_agent)}")
    max_body = parse_size(http.get("max_body", DEFAULT_MAX_BODY), "http.max_body")
    breaker_failures = http.get("breaker_failures", DEFAULT_BREAKER_THRESHOLD)
    if isinstance(breaker_failures, bool) or not isinstance(breaker_failures, int) or not 1 <= breaker_failures <= 1000:
        raise ConfigError("http.breaker_failures", f"expected a whole number from 1 to 1000, got {_show(breaker_failures)}")
    breaker_cooldown = parse_duration(http.get("breaker_cooldown", DEFAULT_BREAKER_COOLDOWN), "http.breaker_cooldown")
    proxy = _proxy(http["proxy"]) if "proxy" in http else None
    retry_after_max = parse_duration(http.get("retry_after_max", "1h"), "http.retry_after_max")
    if not 1 <= retry_after_max <= 86400:
        raise ConfigError("http.retry_after_max", f"expected a duration from 1s to 24h, got {_show(http.get('retry_after_max'))}")
    follow = http.get("follow_redirects_to", [])
    if not isinstance(follow, list) or not all(
        isinstance(x, str) and re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", x.strip()) for x in follow
    ):
        raise ConfigError(
            "http.follow_redirects_to", f'expected a list of host names like ["www.example.vn"], got {_show(follow)}'
        )
    per_host = http.get("per_host_concurrency", 10)
    if isinstance(per_host, bool) or not isinstance(per_host, int) or not 1 <= per_host <= 100:
        raise ConfigError("http.per_host_concurrency", f"expected a whole number from 1 to 100, got {_show(per_host)}")

    dns_t = _table(data.get("dns", {}), "dns")
    _unknown(dns_t, {"nameservers", "timeout", "stale_max", "stale_answer_after"}, "dns")
    ns = dns_t.get("nameservers", [])
    if not isinstance(ns, list):
        raise ConfigError("dns.nameservers", f'expected a list of addresses like ["1.1.1.1"], got {_show(ns)}')
    dns_timeout = parse_duration(dns_t.get("timeout", "5s"), "dns.timeout")
    if not 0.1 <= dns_timeout <= 60:
        raise ConfigError("dns.timeout", f"expected a duration from 0.1s to 60s, got {_show(dns_t.get('timeout'))}")
    dns = DnsConfig(
        nameservers=tuple(_nameserver(x, "dns.nameservers") for x in ns),
        timeout=dns_timeout,
        stale_max=parse_duration(dns_t.get("stale_max", "7d"), "dns.stale_max"),
        stale_answer_after=parse_duration(dns_t.get("stale_answer_after", "1.8s"), "dns.stale_answer_after"),
    )

    mon = _table(data.get("monitoring", {}), "monitoring")
    _unknown(mon, {"metrics_file", "check_stale_warning", "check_missed_intervals", "check_require_daemon"}, "monitoring")
    metrics_file = (
        base_dir / _path(mon["metrics_file"], "monitoring.metrics_file") if "metrics_file" in mon else None
    )
    stale_warning = mon.get("check_stale_warning", True)
    if not isinstance(stale_warning, bool):
        raise ConfigError("monitoring.check_stale_warning", f"expected true or false, got {_show(stale_warning)}")
    missed = _number(mon.get("check_missed_intervals", 3), "monitoring.check_missed_intervals", 1, 1000)
    require_daemon = mon.get("check_require_daemon", True)
    if not isinstance(require_daemon, bool):
        raise ConfigError("monitoring.check_require_daemon", f"expected true or false, got {_show(require_daemon)}")

    publish = parse_publish(_table(data.get("publish", {}), "publish"), base_dir)

    feeds_t = _table(data.get("feeds", {}), "feeds")
    if not feeds_t:
        raise ConfigError("feeds", "expected at least one [feeds.NAME] table")
    feeds = {name: _feed(name, _table(t, f"feeds.{name}")) for name, t in feeds_t.items()}
    return Config(
        path=path,
        cache_dir=cache_dir,
        snapshot_dir=snapshot_dir,
        feeds=feeds,
        user_agent=user_agent,
        max_body=max_body,
        breaker_failures=breaker_failures,
        breaker_cooldown=breaker_cooldown,
        proxy=proxy,
        retry_after_max=retry_after_max,
        follow_redirects_to=tuple(x.strip().lower() for x in follow),
        dns=dns,
        metrics_file=metrics_file,
        check_stale_warning=stale_warning,
        check_missed_intervals=missed,
        check_require_daemon=require_daemon,
        publish=publish,
        per_host_concurrency=per_host,
    )


def default_config_text() -> str:
    """The embedded default configuration (the shipped sample, packaged with the code)."""
    from importlib.resources import files

    return files("feeds").joinpath("data/portal-feeds.toml").read_text(encoding="utf-8")


def find_config(explicit: str | Path | None, cwd: Path | None = None) -> Path | None:
    """Return the config file to read, or None for the embedded defaults."""
    if explicit is not None:
        return Path(explicit)
    cwd = cwd or Path.cwd()
    for candidate in CONFIG_SEARCH_PATH:
        p = candidate if candidate.is_absolute() else cwd / candidate
        if p.is_file():
            return p
    return None


# -- [publish] and [feeds.NAME.widget] (the settings: feeds.settings) ----------------------
def _widget_names(value: object, key: str) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string (``"USD,EUR,JPY"``)."""
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",")]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        items = [x.strip() for x in value]
    else:
        raise ConfigError(key, f'expected a list like ["USD", "EUR"] or "USD,EUR", got {value!r}')
    if not items or not all(items):
        raise ConfigError(key, "expected at least one non-empty name")
    return tuple(dict.fromkeys(items))


def parse_publish(table: Mapping[str, Any], base_dir: Path) -> PublishConfig:
    """Validate ``[publish]``; a templates folder must exist and its templates compile."""
    for k in table:
        if k not in ("timezone", "templates_dir"):
            raise ConfigError(f"publish.{k}", "unknown key")
    name = table.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(name, str):
        raise ConfigError("publish.timezone", f'expected a zone name like "Asia/Ho_Chi_Minh", got {name!r}')
    try:
        tz = load_zone(name.strip())
    except ValueError as exc:
        raise ConfigError("publish.timezone", str(exc)) from None
    templates_dir = None
    if "templates_dir" in table:
        raw = table["templates_dir"]
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError("publish.templates_dir", f"expected a folder, got {raw!r}")
        templates_dir = base_dir / raw.strip()
        if not templates_dir.is_dir():
            raise ConfigError("publish.templates_dir", f"{templates_dir} is not a folder")
        from feeds.render import check_templates

        problem = check_templates(templates_dir)
        if problem:
            raise ConfigError("publish.templates_dir", problem)
    return PublishConfig(timezone=name.strip(), templates_dir=templates_dir, tz=tz)


def parse_widget(value: object, key: str, data_kind: str, location_ids: Sequence[str]) -> WidgetConfig:
    """Validate ``[feeds.NAME.widget]`` for a feed of ``data_kind``."""
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table, got {value!r}")
    allowed = {"title", "columns", "heading"} | ({"currencies", "change"} if data_kind == "exchange_rates" else {"locations"})
    for k in value:
        if k not in allowed:
            raise ConfigError(f"{key}.{k}", "unknown key" if k not in ("currencies", "locations", "change")
                         else f"not used by a {data_kind} feed")
    title = value.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise ConfigError(f"{key}.title", f"expected a non-empty string, got {title!r}")
    currencies: tuple[str, ...] = ()
    if "currencies" in value:
        currencies = tuple(c.upper() for c in _widget_names(value["currencies"], f"{key}.currencies"))
        bad = [c for c in currencies if not re.fullmatch(r"[A-Z]{3}", c)]
        if bad:
            raise ConfigError(f"{key}.currencies", f"expected ISO 4217 codes like USD, got {bad[0]!r}")
    locations: tuple[str, ...] = ()
    if "locations" in value:
        locations = _widget_names(value["locations"], f"{key}.locations")
        unknown = [x for x in locations if x not in location_ids]
        if unknown:
            raise ConfigError(f"{key}.locations", f"no location with id {unknown[0]!r} in this feed")
    columns: tuple[str, ...] = ()
    if "columns" in value:
        known = RATE_COLUMNS if data_kind == "exchange_rates" else WEATHER_COLUMNS
        columns = _widget_names(value["columns"], f"{key}.columns")
        bad = [c for c in columns if c not in known]
        if bad:
            raise ConfigError(f"{key}.columns", f"expected some of {', '.join(known)}, got {bad[0]!r}")
    heading = value.get("heading", 2)
    if isinstance(heading, bool) or heading not in (2, 3, 4):
        raise ConfigError(f"{key}.heading", f"expected 2, 3 or 4 (the title as <h2> .. <h4>), got {heading!r}")
    change = value.get("change", True)
    if not isinstance(change, bool):
        raise ConfigError(f"{key}.change", "expected true or false (show the day's change beside each rate)")
    return WidgetConfig(
        heading=heading,
        change=change,
        title=title.strip() if isinstance(title, str) else None,
        currencies=currencies,
        locations=locations,
        columns=columns,
    )


def load_config(explicit: str | Path | None = None, cwd: Path | None = None) -> Config:
    """Find, read and validate the configuration."""
    path = find_config(explicit, cwd)
    if path is None:
        text, base, origin = default_config_text(), (cwd or Path.cwd()), None
        # The sample's paths point from config/ to the project folder; the embedded
        # defaults use the same names under the working directory.
        base = base / "config"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("", f"config file {path} does not exist") from None
        except UnicodeDecodeError:
            raise ConfigError("", f"config file {path} cannot be read (it is not UTF-8 text)") from None
        except OSError as exc:
            raise ConfigError("", f"config file {path} cannot be read ({_os_words(exc)})") from None
        # A BOM (Windows Notepad saves one) is not TOML, but it is not the admin's mistake either.
        text = text.removeprefix("\ufeff")
        base, origin = path.absolute().parent, path
    where = origin or "embedded defaults"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError("", f"{where}: not valid TOML (nested too deeply)") from None
    except ValueError:  # e.g. an integer longer than Python converts (4300 digits)
        raise ConfigError("", f"{where}: not valid TOML (a number too long)") from None
    cfg = parse_config(data, base, origin)
    cfg = Config(
        **{**cfg.__dict__, "cache_dir": _norm(cfg.cache_dir), "snapshot_dir": _norm(cfg.snapshot_dir)}
    )
    refuse_system_paths(cfg)
    return cfg


#: Folders the daemon must never write into: configuration lives in /etc, the package's own
#: files under /usr and /opt/portal-feeds (a relative path in a file copied to /etc resolves
#: into /etc: ``../cache`` -> ``/etc/cache``).
SYSTEM_FOLDERS = (Path("/etc"), Path("/usr"), Path("/opt/portal-feeds"), Path("/boot"), Path("/proc"), Path("/sys"))


def refuse_system_paths(cfg: Config) -> None:
    """Raise ``ConfigError`` for a configured folder inside /etc or the package's own folders."""
    folders = [("paths.cache_dir", cfg.cache_dir), ("paths.snapshot_dir", cfg.snapshot_dir)]
    if cfg.metrics_file is not None:
        folders.append(("monitoring.metrics_file", _norm(cfg.metrics_file)))
    for key, path in folders:
        for system in SYSTEM_FOLDERS:
            if path == system or system in path.parents:
                raise ConfigError(
                    key,
                    f"{path} is inside {system}, which holds configuration or installed files, not data; "
                    "use an absolute path under /var/lib/portal-feeds (relative paths resolve against the "
                    "configuration file's folder)",
                )


_OS_WORDS = {
    PermissionError: "permission denied",
    IsADirectoryError: "it is a folder, not a file",
    NotADirectoryError: "a part of its path is not a folder",
}


def _os_words(exc: OSError) -> str:
    """An OS error in words (``permission denied``), never a Python class name."""
    for cls, words in _OS_WORDS.items():
        if isinstance(exc, cls):
            return words
    return (exc.strerror or "input/output error").lower()


def _norm(p: Path) -> Path:
    """Collapse ``..`` without touching the disk (the folders may not exist yet)."""
    import os.path

    return Path(os.path.normpath(p))
