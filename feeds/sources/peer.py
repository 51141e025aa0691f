"""A peer source (``kind = "portal-feeds"``): another instance's published snapshot over HTTP.

For tiers (a province's IT centre -> department portals on other machines) and warm
standbys, with nothing in between but HTTP and nginx caching.  The URL is the other
instance's ``<feed>.json`` as its nginx serves it.

A peer is an upstream like any other (issue 18): its body is decoded like a hostile one and
its data goes through the gate of the data's own source.  Whatever it says, a peer can at
worst make the feed ask its fallback (the bank).

Decoding (``invalid_payload``; ``parse`` raises nothing else):

- at most ``MAX_BODY`` bytes (``too_large``); UTF-8 JSON (``not_json``), without ``NaN`` or
  ``Infinity`` (``not_json``) and without a key twice in one object (``duplicate_key``: which
  of ``"status":"expired", ..., "status":"fresh"`` is meant cannot be told);
- every number bounded in digits while it is read: integers of at most ``MAX_DIGITS``
  digits, decimals of at most ``MAX_DIGITS`` digits with an exponent that keeps them within
  1e-12 .. 1e15 (``bad_number``: no 400-digit integer, no ``1e-400`` that JavaScript and PHP
  read as 0);
- the shipped schema, ``data`` shapes closed, with ECMA-262 pattern semantics
  (``feeds.bounds``: a full-width digit or a trailing newline is refused) -- ``schema``;
- every timestamp parsed here, strictly (``2026-13-01``, ``24:00``, ``+99:00``, a year outside
  2000 .. 2200: ``bad_time``).

The gate (as the data's own source):

- rates: at most ``vietcombank.MAX_ROWS`` rows (``too_many_rows``), codes three ASCII
  capitals, none twice (``duplicate_code``), codes outside ISO 4217 dropped and counted
  (``ExchangeRates.dropped``; more than ``MAX_UNKNOWN_CODES``: ``unknown_codes``), a rate of
  at most 12 integer digits and 6 decimals (``bad_number``), then ``feeds.validate.check_rates``
  (absolute bounds, USD present, buy <= sell: ``rejected``).  The relative rule
  (``moved_too_far`` against our last good data, with ``feeds.trust``'s recovery rule) is
  applied by ``feeds.peering``, which holds the store;
- weather: only the locations this instance configures, matched by ``id`` (the others are
  dropped and counted: ``PeerSnapshot.dropped_locations``; none of ours: ``rejected``,
  ``no_locations``; an id twice: ``duplicate_location``); at most ``MAX_DAYS`` days; a
  ``condition`` of our vocabulary (``schema``); then ``feeds.validate.check_weather``
  (physical ranges, min <= max: ``rejected``);
- every name and label through ``feeds.text.clean_name`` (control, bidi and zero-width
  characters removed, whitespace collapsed, at most 64 characters); one that is left empty
  takes our own (the code, the configured name, our condition label).  ``source.url`` is
  kept only as printable ASCII of at most 2,048 characters.

Freshness from age, never from the peer's word:

- ``fetched_at``, ``as_of``, ``stale_since`` and each location's ``fetched_at`` later than
  now + ``SKEW`` refuse the peer (``bad_time``): a future time would never age;
- an origin ``expired`` or ``unavailable`` is refused (``rejected``, ``peer_expired`` /
  ``peer_unavailable``), as is data older than ``max_stale``;
- an origin that stopped publishing (its daemon died while its nginx still serves the last
  file, still saying ``fresh``) is noticed from ``next_update_at``: more than
  ``OVERDUE_AFTER`` past it, the copy is refused (``peer_overdue``);
- the status carried is never better than the origin's (``stale`` stays ``stale`` with the
  origin's ``stale_since``), and data older than our own freshness window (``fresh_for``:
  two of the feed's intervals) is ``stale`` whatever the origin says, ``stale_since`` being
  the moment it left the window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from feeds.bounds import check_location, static_time
from feeds.errors import FeedError, InvalidPayloadError, RejectedError
from feeds.models import (
    CurrentWeather,
    DailyForecast,
    ExchangeRate,
    ExchangeRates,
    Location,
    LocationWeather,
    RequestSpec,
)
from feeds.sources.conditions import CONDITION_KEYS, wmo_condition
from feeds.sources.currencies import ISO4217_ACTIVE
from feeds.sources.vietcombank import MAX_DECIMALS, MAX_INT_DIGITS, MAX_ROWS, MAX_UNKNOWN_CODES
from feeds.text import clean_name

__all__ = [
    "DATA_KIND",
    "DEFAULT_URL",
    "HONOURS_EXPIRES",
    "KIND",
    "MAX_BODY",
    "MAX_DAYS",
    "MAX_DIGITS",
    "MIN_INTERVAL",
    "OVERDUE_AFTER",
    "SKEW",
    "SOURCE_NAME",
    "PeerSnapshot",
    "build_request",
    "parse",
]

KIND = "portal-feeds"
DATA_KIND = None  # whatever the peer's feed is (the feed's data_kind)
SOURCE_NAME = "portal-feeds peer"
#: How long past the origin's announced next update its snapshot is still taken.
OVERDUE_AFTER = timedelta(minutes=10)
#: How far ahead of our clock a peer's times may be (its clock a little fast).
SKEW = timedelta(minutes=2)
#: The largest body read, per data kind: a real rate snapshot is ~5 KB (200 rows would be
#: ~50 KB); a weather one ~50 KB per 100 locations (a centre's 3,000: ~1.5 MB).
MAX_BODY: dict[str, int] = {"exchange_rates": 1 << 20, "weather": 8 << 20}
#: Digits of any number in a peer's body.
MAX_DIGITS = 18
#: Days of forecast per location (Open-Meteo gives at most 16).
MAX_DAYS = 16
#: The longest ``source.url`` carried.
MAX_URL = 2048

_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(Z|([+-])([0-9]{2}):([0-9]{2}))", re.ASCII
)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_CODE = re.compile(r"[A-Z]{3}", re.ASCII)
#: A location id as feeds.config allows it (it names a per-location file).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_URL = re.compile(r"https?://[!-~]*", re.ASCII)
_NUMBERS = ("temperature_c", "apparent_temperature_c", "humidity_pct", "wind_speed_kmh",
            "wind_direction_deg", "precipitation_mm")


@dataclass(frozen=True)
class PeerSnapshot:
    """What is carried over from the origin's snapshot, after the gate."""

    data: dict[str, Any]
    #: The status to publish at most (``fresh`` or ``stale``): the origin's, or ``stale`` by age.
    status: str
    fetched_at: datetime
    as_of: datetime | None
    stale_since: datetime | None
    source_name: str
    source_url: str
    #: Rates: the table as the bank gate sees it (its ``dropped`` codes included).
    rates: ExchangeRates | None = None
    #: Weather: ids of the peer's locations this instance does not configure (dropped).
    dropped_locations: tuple[str, ...] = field(default_factory=tuple)


def build_request(url: str, *, user_agent: str | None = None) -> RequestSpec:
    headers: tuple[tuple[str, str], ...] = (("Accept", "application/json"),)
    if user_agent:
        headers += (("User-Agent", user_agent),)
    return RequestSpec(url=url, headers=headers)


# -- decoding ------------------------------------------------------------------------------
class _Refused(Exception):
    """Raised inside the JSON decoder's hooks; turned into InvalidPayloadError."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(message)
        self.detail = detail
        self.message = message


def _constant(name: str) -> Any:
    raise _Refused("not_json", "the peer's answer has NaN or Infinity (not JSON)")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused("bad_number", "a number of the peer's snapshot has too many digits")
    return int(text)


def _decimal(text: str) -> Decimal:
    if len(text) > 2 * MAX_DIGITS:
        raise _Refused("bad_number", "a number of the peer's snapshot has too many digits")
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError):
        raise _Refused("bad_number", "a number of the peer's snapshot is not a number") from None
    digits, exponent = d.as_tuple()[1:]
    if not (
        d.is_finite()
        and isinstance(exponent, int)
        and len(digits) <= MAX_DIGITS
        and exponent >= -12
        and (d.is_zero() or d.adjusted() <= 15)
    ):
        raise _Refused("bad_number", "a number of the peer's snapshot is out of any range")
    return d


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused("duplicate_key", "an object of the peer's snapshot has a key twice")
    return out


def _decode(body: bytes, data_kind: str) -> Any:
    if len(body) > MAX_BODY.get(data_kind, MAX_BODY["exchange_rates"]):
        raise InvalidPayloadError("the peer's answer is larger than any snapshot", detail="too_large")
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_constant=_constant,
            parse_int=_int,
            parse_float=_decimal,
            object_pairs_hook=_object,
        )
    except _Refused as exc:
        raise InvalidPayloadError(exc.message, detail=exc.detail) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidPayloadError("the peer's answer is not JSON", detail="not_json") from None


# -- times ---------------------------------------------------------------------------------
def _bad_time(what: str) -> InvalidPayloadError:
    return InvalidPayloadError(f"{what} of the peer's snapshot is not a usable time", detail="bad_time")


def _time(text: Any, what: str) -> datetime | None:
    """A schema timestamp read strictly (ASCII digits, real calendar values, an offset of at
    most 23:59), within 2000 .. 2200; else ``bad_time``.  None stays None."""
    if text is None:
        return None
    m = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise _bad_time(what)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        if m.group(7) == "Z":
            tz = UTC
        else:
            offset = timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
            tz = timezone(-offset if m.group(8) == "-" else offset)
        dt = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except (ValueError, OverflowError):  # month 13, 24:00, +99:00
        raise _bad_time(what) from None
    try:
        return static_time(dt)
    except InvalidPayloadError:
        raise _bad_time(what) from None


def _not_ahead(dt: datetime | None, now: datetime, what: str) -> None:
    if dt is not None and dt > now + SKEW:
        raise InvalidPayloadError(f"{what} of the peer's snapshot is ahead of our clock", detail="bad_time")


def _date(text: Any) -> date:
    m = _DATE.fullmatch(text) if isinstance(text, str) else None
    try:
        if m is None:
            raise ValueError(text)
        d = date(*(int(g) for g in m.groups()))
    except ValueError:
        raise _bad_time("a forecast date") from None
    if not 2000 <= d.year < 2200:
        raise _bad_time("a forecast date")
    return d


# -- the gate ------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _amount(value: Any) -> Decimal | None:
    """A rate as the bank's parser bounds it: at most 12 integer digits and 6 decimals."""
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(value)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, frac = text.lstrip("-").partition(".")
    if len(whole.lstrip("0")) > MAX_INT_DIGITS or len(frac) > MAX_DECIMALS:
        raise InvalidPayloadError("a rate of the peer's snapshot has too many digits", detail="bad_number")
    return Decimal(text)


def _rates(data: Mapping[str, Any]) -> ExchangeRates:
    rows = data["rates"]
    rates: list[ExchangeRate] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for row in rows:
        code = row["code"]
        if not _CODE.fullmatch(code):
            raise InvalidPayloadError("a currency code of the peer is not 3 ASCII capitals", detail="bad_code")
        if code in seen:
            raise InvalidPayloadError("a currency code appears twice", detail="duplicate_code")
        seen.add(code)
        if code not in ISO4217_ACTIVE:
            dropped.append(code)
            continue
        name = clean_name(row["name"]) or code
        rates.append(ExchangeRate(
            code=code,
            name=name,
            name_vi=clean_name(row["name_vi"]) or name,
            buy_cash=_amount(row["buy_cash"]),
            buy_transfer=_amount(row["buy_transfer"]),
            sell=_amount(row["sell"]),
        ))
    if len(dropped) > MAX_UNKNOWN_CODES:
        raise InvalidPayloadError("too many codes outside ISO 4217", detail="unknown_codes")
    return ExchangeRates(as_of=None, rates=tuple(rates), dropped=tuple(dropped))


def _condition(block: Mapping[str, Any]) -> str:
    if block["condition"] not in CONDITION_KEYS:
        raise InvalidPayloadError("a condition of the peer is not one of ours", detail="schema")
    code = block["weather_code"]
    if code is not None and not 0 <= code <= 99:
        raise InvalidPayloadError("a weather code of the peer is not a WMO code", detail="schema")
    return clean_name(block["condition_vi"]) or wmo_condition(code)[1]


def _location(entry: Mapping[str, Any], ours: Location | None, now: datetime) -> tuple[dict[str, Any], LocationWeather, datetime]:
    """One of our locations from the peer: checked, cleaned, and as the weather gate sees it."""
    fetched_at = _time(entry["fetched_at"], "a location's fetched_at")
    assert fetched_at is not None
    _not_ahead(fetched_at, now, "a location's fetched_at")
    cur = entry["current"]
    cur_time = _time(cur["time"], "current.time")
    daily = entry["daily"]
    if len(daily) > MAX_DAYS:
        raise InvalidPayloadError("more forecast days than any source gives", detail="schema")
    days = [_date(d["date"]) for d in daily]
    name = clean_name(entry["name"]) or (ours.name if ours else entry["id"])
    out = {
        "id": entry["id"],
        "name": name,
        "short_name": clean_name(entry.get("short_name")) or (ours.display_name if ours else name),
        "lat": entry["lat"],
        "lon": entry["lon"],
        "fetched_at": entry["fetched_at"],
        "current": {**{k: cur[k] for k in ("time", *_NUMBERS, "weather_code", "condition")},
                    "condition_vi": _condition(cur)},
        "daily": [
            {**{k: d[k] for k in ("date", "temperature_min_c", "temperature_max_c", "precipitation_mm",
                                  "weather_code", "condition")},
             "condition_vi": _condition(d)}
            for d in daily
        ],
    }
    check_location(out, fetched_at)  # current.time no more than a day past the location's fetch
    lw = LocationWeather(
        location=Location(entry["id"], name, float(entry["lat"]), float(entry["lon"])),
        current=CurrentWeather(
            time=cur_time,
            weather_code=cur["weather_code"],
            condition=cur["condition"],
            condition_vi=out["current"]["condition_vi"],
            **{k: _number(cur[k]) for k in _NUMBERS},
        ),
        daily=tuple(
            DailyForecast(day, _number(d["temperature_min_c"]), _number(d["temperature_max_c"]),
                          _number(d["precipitation_mm"]), d["weather_code"], d["condition"], "")
            for day, d in zip(days, daily, strict=True)
        ),
    )
    return out, lw, fetched_at


def _weather(doc: dict[str, Any], locations: Sequence[Location]) -> tuple[str, ...]:
    """Keep only our locations in ``doc`` (before the schema: the others are never read);
    return the ids dropped.  Refuses an id twice and an answer with none of ours.

    A feed that configures no locations (a peer-only feed may not) takes every location
    whose id could be one of ours (``_ID``: it names a file)."""
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("locations"), list):
        return ()
    locs: list[Any] = data["locations"]
    wanted = {loc.id for loc in locations}
    kept: list[Any] = []
    dropped: list[str] = []
    seen: set[Any] = set()
    for entry in locs:
        lid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(lid, str):
            raise InvalidPayloadError("a location of the peer has no id", detail="schema")
        if lid in seen:
            raise InvalidPayloadError("a location appears twice", detail="duplicate_location")
        seen.add(lid)
        if lid in wanted or (not wanted and _ID.fullmatch(lid)):
            kept.append(entry)
        else:
            dropped.append(clean_name(lid))
    if not kept:
        raise RejectedError("the peer has none of our locations", detail="no_locations")
    data["locations"] = kept
    return tuple(dropped)


# -- parse -----------------------------------------------------------------------------------
def parse(
    body: bytes,
    *,
    data_kind: str,
    max_stale: timedelta,
    now: datetime,
    fresh_for: timedelta | None = None,
    locations: Sequence[Location] = (),
) -> PeerSnapshot:
    """Decode, validate and gate a peer's snapshot; raise ``InvalidPayloadError`` or
    ``RejectedError`` (and nothing else) when it cannot be used.

    ``fresh_for`` is our own freshness window (data older is ``stale``); ``locations`` the
    weather locations this instance configures.
    """
    try:
        return _parse(body, data_kind, max_stale, now, fresh_for, locations)
    except FeedError:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        # A case the checks above did not foresee (a bug of ours): still a refusal, never a
        # crash.  The hostile-peer suite asserts it is never reached.
        raise InvalidPayloadError("the peer's snapshot could not be read", detail="parser_error") from None


def _parse(
    body: bytes,
    data_kind: str,
    max_stale: timedelta,
    now: datetime,
    fresh_for: timedelta | None,
    locations: Sequence[Location],
) -> PeerSnapshot:
    from feeds.recovery import _validator
    from feeds.validate import check_rates, check_weather

    doc = _decode(body, data_kind)
    if not isinstance(doc, dict):
        raise InvalidPayloadError("the peer's answer is not a snapshot", detail="schema")
    rows = (doc.get("data") or {}).get("rates") if isinstance(doc.get("data"), dict) else None
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise InvalidPayloadError("more rows than any real table", detail="too_many_rows")
    dropped_locations: tuple[str, ...] = ()
    if doc.get("kind") == data_kind == "weather" and doc.get("data") is not None:
        dropped_locations = _weather(doc, locations)
    try:
        valid = _validator().is_valid(doc)
    except Exception:  # a validator failure refuses, it never takes the attempt down
        valid = False
    if not valid:
        raise InvalidPayloadError("the peer's snapshot does not match the schema", detail="schema")
    if doc["kind"] != data_kind:
        raise RejectedError("the peer's snapshot is of another kind", detail="peer_kind")
    # Every time of the snapshot is read here, strictly, whether it is carried or not.
    times = {k: _time(doc.get(k), k) for k in
             ("generated_at", "fetched_at", "as_of", "stale_since", "next_update_at", "upstream_stale_since")}
    status = doc["status"]
    if status == "unavailable" or doc["data"] is None or doc["fetched_at"] is None:
        raise RejectedError("the peer has no data", detail="peer_unavailable")
    fetched_at, as_of, stale_since = times["fetched_at"], times["as_of"], times["stale_since"]
    assert fetched_at is not None
    for what in ("fetched_at", "as_of", "stale_since"):
        _not_ahead(times[what], now, what)
    if status == "expired" or now - fetched_at > max_stale:
        raise RejectedError("the peer's data is expired", detail="peer_expired")
    next_update = times["next_update_at"]
    if next_update is not None and now > next_update + OVERDUE_AFTER:
        raise RejectedError("the peer stopped publishing", detail="peer_overdue")
    data: dict[str, Any] = doc["data"]
    rates: ExchangeRates | None = None
    if data_kind == "exchange_rates":
        rates = _rates(data)
        check_rates(rates)  # the bank's gate, but the relative rule (feeds.peering)
        data = {"base": data["base"], "rates": [r.to_data() for r in rates.rates]}
        rates = ExchangeRates(as_of=as_of, rates=rates.rates, dropped=rates.dropped)
    else:
        ours = {loc.id: loc for loc in locations}
        entries = [_location(entry, ours.get(entry["id"]), now) for entry in data["locations"]]
        check_weather([lw for _, lw, _ in entries], ours or [entry["id"] for entry in data["locations"]])
        data = {"locations": [out for out, _, _ in entries]}
        fetched_at = min([fetched_at, *(at for _, _, at in entries)])
    if now - fetched_at > max_stale:  # the oldest location taken
        raise RejectedError("the peer's data is expired", detail="peer_expired")
    # Never fresher than the origin, nor than the data's age says.
    if status == "fresh":
        stale_since = None
        if fresh_for is not None and now - fetched_at > fresh_for:
            status, stale_since = "stale", fetched_at + fresh_for
    source = doc.get("source") or {}
    url = source.get("url") or ""
    return PeerSnapshot(
        data=data,
        status=status,
        fetched_at=fetched_at,
        as_of=as_of,
        stale_since=stale_since,
        source_name=clean_name(source.get("name")) or SOURCE_NAME,
        source_url=url if len(url) <= MAX_URL and _URL.fullmatch(url) else "",
        rates=rates,
        dropped_locations=dropped_locations,
    )


# -- registry data (feeds.sources.registry); a peer is fetched by feeds.peering ----------
DEFAULT_URL = None
MIN_INTERVAL = 0.0
HONOURS_EXPIRES = False
