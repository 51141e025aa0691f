"""Bounds on what can be published: times, numbers, and the shipped schema (issue 16).

Publishing is total: nothing between "an answer arrived" and "the file is on disk" may raise.
So every timestamp and number is bounded where it is read, and a snapshot is checked against
the shipped schema before its data is stored as last good:

- **Times** (``as_of``, observation times): no earlier than ``EARLIEST`` (2000-01-01) and no
  later than ``AHEAD`` (one day) past the moment the data was fetched.  Parsers apply the
  clock-free part (``EARLIEST`` .. ``LATEST``), which also keeps every later calendar
  computation (``astimezone``, the frozen-source rule's next business day) far from
  ``datetime``'s year-1/9999 edges; the coordinator applies the part relative to its
  injected clock (``check_good``).  A time outside is ``invalid_payload/bad_time``.
- **Numbers**: finite and of sane magnitude before any arithmetic (``out_of_bounds``).
- **The schema** (``feeds/schemas/snapshot-v1.schema.json``) is read with ECMA-262
  regular-expression semantics, the ones JSON Schema's ``pattern`` means (and a browser or
  PHP's ``preg`` with ``u`` flag sees): ``\\d`` is ``[0-9]`` only (Python's ``re`` also takes
  full-width and other Unicode digits) and ``$`` is the end of the text (Python's also
  matches before a trailing newline).  ``ecma_pattern`` translates the schema's patterns
  once; the translated validator is compiled once (``snapshot_validator``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Container, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from feeds.errors import InvalidPayloadError

if TYPE_CHECKING:
    from feeds.store import GoodData

__all__ = [
    "AHEAD",
    "EARLIEST",
    "LATEST",
    "MAX_MAGNITUDE",
    "check_good",
    "check_location",
    "check_time",
    "document_ok",
    "ecma_pattern",
    "ecma_validator",
    "location_ok",
    "schema_problem",
    "snapshot_validator",
    "static_time",
]

#: No upstream time before this is current data (and none before 1911 has a whole-minute
#: offset in Vietnam: ``Asia/Ho_Chi_Minh`` was LMT +07:06:40).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: A clock-free ceiling, far from ``datetime.max``: calendar arithmetic on a bounded time
#: (days added, a zone applied) can never overflow.
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: How far past the moment it was fetched a time may be (zones, a slightly fast upstream).
AHEAD = timedelta(days=1)
#: No value we publish is anywhere near this (rates < 1e12, weather < 1e4, coordinates < 180).
MAX_MAGNITUDE = Decimal("1e15")
#: The same bound for ints and floats (1e15 is exact as a float; int/float comparisons are exact).
_MAX_FLOAT = 1e15


def _refuse(message: str, detail: str) -> InvalidPayloadError:
    return InvalidPayloadError(message, detail=detail)


def static_time(dt: datetime) -> datetime:
    """``dt`` if it lies in ``EARLIEST`` .. ``LATEST`` (the parsers' bound), else ``bad_time``."""
    try:
        ok = EARLIEST <= dt <= LATEST
    except (TypeError, OverflowError, ValueError):
        ok = False
    if not ok:
        raise _refuse("a time is outside 2000-01-01 .. 2200-01-01", "bad_time")
    return dt


def check_time(dt: datetime | None, reference: datetime, what: str) -> None:
    """Refuse ``dt`` (``bad_time``) unless it lies in ``EARLIEST`` .. ``reference + AHEAD``."""
    if dt is None:
        return
    try:
        ok = dt.tzinfo is not None and EARLIEST <= dt <= min(reference + AHEAD, LATEST)
    except (TypeError, OverflowError, ValueError):
        ok = False
    if not ok:
        raise _refuse(f"{what} is before 2000 or more than a day ahead", "bad_time")


def _time(text: Any, what: str) -> datetime | None:
    if text is None:
        return None
    if isinstance(text, datetime):
        return text
    try:
        dt = _iso(str(text)[:40])
    except ValueError:
        raise _refuse(f"{what} is not ISO 8601", "bad_time") from None
    if dt.tzinfo is None:
        raise _refuse(f"{what} has no offset", "bad_time")
    return dt


#: ``datetime.fromisoformat``, memoized: the locations of one attempt share a few distinct
#: times, read three times each per publish (datetimes are immutable; issue 20).
_iso = functools.lru_cache(maxsize=4096)(datetime.fromisoformat)


def _number(value: Any, what: str) -> None:
    t = type(value)
    if t is float or t is int:  # the common case first (hundreds of thousands per attempt)
        # NaN fails every comparison and an infinity the bound: both refused, no isfinite call.
        if -_MAX_FLOAT <= value <= _MAX_FLOAT:
            return
        raise _refuse(f"{what} is not a number of sane magnitude", "out_of_bounds")
    if value is None or isinstance(value, bool | str):
        return  # the schema judges types; only magnitudes are checked here
    if isinstance(value, int):
        ok = -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE
    elif isinstance(value, float):
        ok = math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
    elif isinstance(value, Decimal):
        ok = value.is_finite() and abs(value) <= MAX_MAGNITUDE
    else:
        return
    if not ok:
        raise _refuse(f"{what} is not a number of sane magnitude", "out_of_bounds")


def check_good(good: GoodData, now: datetime | None = None, *, locations: bool = True) -> None:
    """Refuse good data whose times or numbers cannot be published.

    ``now`` (the injected clock) is given for data just fetched: its ``as_of`` must not be
    more than ``AHEAD`` past it.  Without it (data stored earlier), the reference is the
    data's own newest ``fetched_at``, so a backward step of the wall clock never sets aside
    good data; observation times are always judged against their location's ``fetched_at``.  Raises ``InvalidPayloadError`` (``bad_time`` / ``out_of_bounds``).
    ``locations=False``: the weather locations were each checked by ``check_location``
    already (a fetched answer, ``Coordinator._drop_bad_locations``): only the rest is.
    """
    static_time(good.fetched_at)
    data = good.data if isinstance(good.data, Mapping) else {}
    newest = good.fetched_at
    for loc in data.get("locations") or ():
        loc_at = _time(loc.get("fetched_at"), "a location's fetched_at") if isinstance(loc, Mapping) else None
        if loc_at is not None:
            newest = max(newest, static_time(loc_at))
    check_time(good.as_of, newest if now is None else now, "as_of")
    for row in data.get("rates") or ():
        if isinstance(row, Mapping):
            for col in ("buy_cash", "buy_transfer", "sell"):
                _number(row.get(col), "a rate")
    if not locations:
        return  # each location was checked already (``check_location``, once per attempt)
    for loc in data.get("locations") or ():
        if isinstance(loc, Mapping):
            check_location(loc, good.fetched_at)


def check_location(loc: Mapping[str, Any], fetched_at: datetime) -> None:
    """Refuse one weather location entry whose times or numbers cannot be published.

    Its observation time is judged against its own ``fetched_at`` (``fetched_at`` when it
    has none), kept entries of earlier attempts included, so a wall-clock step never
    refuses it.
    """
    loc_at = _time(loc.get("fetched_at"), "a location's fetched_at")
    loc_ref = static_time(loc_at) if loc_at is not None else fetched_at
    _number(loc.get("lat"), "a latitude")
    _number(loc.get("lon"), "a longitude")
    cur = loc.get("current")
    if isinstance(cur, Mapping):
        check_time(_time(cur.get("time"), "current.time"), loc_ref, "current.time")
        _numbers(cur)
    for day in loc.get("daily") or ():
        if isinstance(day, Mapping):
            _numbers(day)


def _numbers(block: Mapping[str, Any]) -> None:
    """``_number`` of each value of ``block``; the common values (a float or int of sane
    magnitude, a string, null) passed without a call (3,000 locations x 31 values)."""
    for k, v in block.items():
        t = type(v)
        if t is float or t is int:
            if -_MAX_FLOAT <= v <= _MAX_FLOAT:
                continue
        elif t is str or v is None:
            continue
        _number(v, k)


# -- the schema, with ECMA-262 patterns ----------------------------------------------------------
#: ECMA-262 ``\s``: WhiteSpace and LineTerminator (Python's ``\s`` also takes \x1c-\x1f).
_ECMA_SPACE = (
    "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _ECMA_SPACE}
_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[A-Za-z0-9_]",
    "W": "[^A-Za-z0-9_]",
    "s": f"[{_ECMA_SPACE}]",
    "S": f"[^{_ECMA_SPACE}]",
}


def _class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the character class starting at ``pattern[i] == "["``; return it and its end."""
    j = i + 1
    negated = pattern[j : j + 1] == "^"
    j += negated
    parts: list[str] = []
    others: list[str] = []  # \\D \\W \\S: sets a Python class cannot hold beside others
    # ECMA-262: "]" right after "[" or "[^" closes the class ("[]" never matches).
    while j < len(pattern) and pattern[j] != "]":
        c = pattern[j]
        if c == "\\" and j + 1 < len(pattern):
            e = pattern[j + 1]
            if e in _CLASS_ESCAPES:
                parts.append(_CLASS_ESCAPES[e])
            elif e in "DWS":
                others.append(_CLASS_ESCAPES[e.lower()])
            else:
                parts.append(c + e)
            j += 2
        else:
            parts.append(c)
            j += 1
    if j >= len(pattern):
        raise ValueError("unterminated character class")
    alternatives = ([f"[{''.join(parts)}]"] if parts else []) + [f"[^{o}]" for o in others]
    if not alternatives:
        body = "[\\s\\S]" if negated else "(?!)"
    elif not negated:
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    elif not others:
        body = f"[^{''.join(parts)}]"
    else:
        body = "(?:(?!" + "|".join(alternatives) + ")[\\s\\S])"
    return body, j + 1


def ecma_pattern(pattern: str) -> str:
    """An ECMA-262 regular expression (no flags) as a Python ``re`` pattern, same meaning.

    Handles what differs for the patterns a JSON Schema uses: ``\\d \\w \\s`` and their
    negations are the ASCII/ECMA sets (in classes too), ``$`` is the end of the text
    (``\\Z``), ``.`` excludes every ECMA line terminator.  Compile the result with
    ``re.ASCII`` (``\\b``).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            out.append(_ESCAPES.get(e, c + e))
            i += 2
        elif c == "[":
            body, i = _class(pattern, i)
            out.append(body)
        else:
            out.append({"$": "\\Z", ".": "[^\\n\\r\\u2028\\u2029]"}.get(c, c))
            i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern), re.ASCII)


def _schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text("utf-8")
    )
    return doc


def _inline(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """``node`` with every local ``{"$ref": "#/$defs/x"}`` replaced by the definition.

    The same schema, validated about 3x faster: jsonschema resolves a ``$ref`` on every
    instance, and a 3,000-location snapshot meets ~100,000 of them.  Our schema has no
    recursive definitions; a deep or foreign one is left as a ``$ref``.
    """
    if isinstance(node, list):
        return [_inline(x, defs, depth) for x in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1 and depth < 16:
        target = defs.get(ref[len("#/$defs/"):])
        if target is not None:
            return _inline(target, defs, depth + 1)
    return {k: (v if k == "$defs" else _inline(v, defs, depth)) for k, v in node.items()}


def ecma_validator(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator of ``schema`` (its draft) whose ``pattern`` is ECMA-262's,
    with local ``$ref`` references inlined (same meaning, faster)."""
    from jsonschema import ValidationError, validators

    schema = _inline(schema, schema.get("$defs") or {})

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _compiled(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    base = validators.validator_for(schema)
    return validators.extend(base, {"pattern": pattern})(schema)


@lru_cache(maxsize=1)
def snapshot_validator() -> Any:
    """The shipped schema's validator (Draft 2020-12) with ECMA-262 ``pattern``, built once."""
    return ecma_validator(_schema())


# -- a fast path for the bulk of a weather snapshot ------------------------------------------
#: The schema's timestamp and condition patterns, as ECMA-262 reads them (ASCII digits, the
#: whole text): the same sets ``ecma_pattern`` gives, anchored by ``fullmatch``.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_CONDITION = re.compile(r"[a-z_]+", re.ASCII)
_CURRENT_NUMBERS = ("temperature_c", "apparent_temperature_c", "humidity_pct", "wind_speed_kmh",
                    "wind_direction_deg", "precipitation_mm")
_DAILY_NUMBERS = ("temperature_min_c", "temperature_max_c", "precipitation_mm")


def _matcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """``pattern.fullmatch(text) is not None``, remembered per text: a 3,000-location snapshot
    holds a few distinct times, dates and condition keys, each met thousands of times."""
    seen: dict[str, bool] = {}

    def matches(text: str) -> bool:
        ok = seen.get(text)
        if ok is None:
            ok = pattern.fullmatch(text) is not None
            if len(seen) >= 4096:
                seen.clear()
            seen[text] = ok
        return ok

    return matches


_is_stamp, _is_date, _is_condition = _matcher(_TIMESTAMP), _matcher(_DATE), _matcher(_CONDITION)
_NUMBER_TYPES = frozenset({int, float, Decimal})


def _conditions(block: Mapping[str, Any]) -> bool:
    code, key = block.get("weather_code"), block.get("condition")
    return (
        (code is None or type(code) is int)
        and type(key) is str and _is_condition(key)
        and type(block.get("condition_vi")) is str
    )


def location_ok(loc: Any) -> bool:
    """A conservative check of one ``data.locations[]`` entry: True only if the shipped
    schema accepts it (tested against jsonschema); False means "ask jsonschema"."""
    try:
        return _location_ok(loc)
    except ArithmeticError:  # Decimal("NaN") < 90 signals
        return False


def _location_ok(loc: Any) -> bool:
    if type(loc) is not dict:
        return False
    get = loc.get
    lat, lon, cur, daily, at = get("lat"), get("lon"), get("current"), get("daily"), get("fetched_at")
    numbers = _NUMBER_TYPES
    if not (
        type(get("id")) is str and type(get("name")) is str
        and ("short_name" not in loc or (type(loc["short_name"]) is str and loc["short_name"] != ""))
        and lat is not None and type(lat) in numbers and -90 <= lat <= 90
        and lon is not None and type(lon) in numbers and -180 <= lon <= 180
        and type(at) is str and _is_stamp(at)
        and type(cur) is dict and type(daily) is list
    ):
        return False
    time = cur.get("time", 0)
    if not (time is None or (type(time) is str and _is_stamp(time))):
        return False
    if not (_numbers_ok(cur, _CURRENT_NUMBERS) and "weather_code" in cur and _conditions(cur)):
        return False
    for day in daily:
        if type(day) is not dict:
            return False
        d = day.get("date")
        if not (
            type(d) is str and _is_date(d)
            and _numbers_ok(day, _DAILY_NUMBERS) and "weather_code" in day and _conditions(day)
        ):
            return False
    return True


def _numbers_ok(block: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Each of ``names`` is in ``block``: a number (int, float, Decimal) or null."""
    numbers = _NUMBER_TYPES
    for k in names:
        if k not in block:
            return False
        v = block[k]
        if v is not None and type(v) not in numbers:
            return False
    return True


_FEED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_CODE = re.compile(r"[A-Z]{3}", re.ASCII)
_COLUMN = re.compile(r"[a-z_]{1,40}", re.ASCII)
_REQUIRED = ("schema_version", "feed", "kind", "status", "generated_at", "fetched_at", "as_of",
             "stale_since", "next_update_at", "source", "data")
_TIMES_OR_NULL = ("fetched_at", "as_of", "stale_since", "next_update_at")
_OPTIONAL_TIMES = ("upstream_stale_since", "expires_at")
_VND = ("buy_cash", "buy_transfer", "sell")
_CHANGES = ("sell", "sell_pct", "buy_transfer", "buy_transfer_pct", "buy_cash", "buy_cash_pct")


def _stamp(v: Any) -> bool:
    return type(v) is str and _TIMESTAMP.fullmatch(v) is not None


def _vnd(v: Any) -> bool:
    """null, or a finite number above 0 (stricter than the schema: no infinity)."""
    t = type(v)
    if v is None:
        return True
    if t is int:
        return bool(v > 0)
    if t is float:
        return math.isfinite(v) and v > 0
    return t is Decimal and v.is_finite() and v > 0


def _finite_num(v: Any) -> bool:
    t = type(v)
    return v is None or t is int or (t is float and math.isfinite(v)) or (t is Decimal and v.is_finite())


def _rates_ok(data: Any) -> bool:
    if type(data) is not dict or data.get("base") != "VND" or type(data.get("base")) is not str:
        return False
    rates = data.get("rates")
    if type(rates) is not list or not rates:
        return False
    for r in rates:
        if not (
            type(r) is dict
            and type(r.get("code")) is str and _CODE.fullmatch(r["code"]) is not None
            and type(r.get("name")) is str and r["name"] != ""
            and type(r.get("name_vi")) is str and r["name_vi"] != ""
            and all(k in r and _vnd(r[k]) for k in _VND)
        ):
            return False
        if "previous" in r:
            prev = r["previous"]
            if not (type(prev) is dict and _stamp(prev.get("as_of")) and all(k in prev and _vnd(prev[k]) for k in _VND)):
                return False
        if "change" in r:
            change = r["change"]
            if not (type(change) is dict and all(_finite_num(change[k]) for k in _CHANGES if k in change)):
                return False
    return True


def _widget_ok(w: Any) -> bool:
    if w is None:
        return True
    if type(w) is not dict:
        return False
    if "title" in w and not (w["title"] is None or (type(w["title"]) is str and len(w["title"]) <= 200)):
        return False
    if "heading" in w and not (type(w["heading"]) is int and 2 <= w["heading"] <= 4):
        return False
    if "change" in w and type(w["change"]) is not bool:
        return False
    cur, locs, cols = w.get("currencies", []), w.get("locations", []), w.get("columns", [])
    return (
        type(cur) is list and len(cur) <= 200 and all(type(c) is str and _CODE.fullmatch(c) is not None for c in cur)
        and type(locs) is list and all(type(x) is str and len(x) <= 200 for x in locs)
        and type(cols) is list and len(cols) <= 10
        and all(type(c) is str and _COLUMN.fullmatch(c) is not None for c in cols)
    )


def document_ok(document: Any, vouched: Container[int] = ()) -> bool:
    """A conservative check of a whole snapshot: True only if the shipped schema accepts it
    (tested against jsonschema); False means "ask jsonschema".  Publishing then needs no
    jsonschema at all on the usual path (its import is ~35 ms of a start, issue 20).

    ``vouched``: positions in ``data.locations`` of entries ``location_ok`` already accepted.
    """
    try:
        return _document_ok(document, vouched)
    except ArithmeticError:
        return False


def _document_ok(doc: Any, vouched: Container[int]) -> bool:
    if type(doc) is not dict or not all(k in doc for k in _REQUIRED):
        return False
    feed, kind, status, source, data = doc["feed"], doc["kind"], doc["status"], doc["source"], doc["data"]
    if not (
        type(doc["schema_version"]) is int and doc["schema_version"] == 1
        and type(feed) is str and len(feed) <= 64 and _FEED.fullmatch(feed) is not None
        and kind in ("exchange_rates", "weather") and type(kind) is str
        and status in ("fresh", "stale", "expired", "unavailable") and type(status) is str
        and _stamp(doc["generated_at"])
        and all(doc[k] is None or _stamp(doc[k]) for k in _TIMES_OR_NULL)
        and all(doc[k] is None or _stamp(doc[k]) for k in _OPTIONAL_TIMES if k in doc)
        and _widget_ok(doc.get("widget"))
    ):
        return False
    if source is not None and not (
        type(source) is dict and type(source.get("name")) is str
        and type(source.get("url")) is str and source["url"].startswith(("http://", "https://"))
    ):
        return False
    if status == "unavailable":
        if data is not None or doc["fetched_at"] is not None:
            return False
    elif type(data) is not dict or type(doc["fetched_at"]) is not str or type(source) is not dict:
        return False
    if (status == "fresh") != (doc["stale_since"] is None):
        return False  # fresh: stale_since null; otherwise a time
    if data is None:
        return True
    if kind == "exchange_rates":
        return _rates_ok(data)
    locations = data.get("locations")
    return type(locations) is list and all(i in vouched or location_ok(loc) for i, loc in enumerate(locations))


def schema_problem(document: Mapping[str, Any], vouched: Container[int] = ()) -> str | None:
    """None when ``document`` validates against the shipped schema, else where it fails.

    A weather snapshot's locations (the bulk of a 3,000-location file) are checked by
    ``location_ok``; the rest of the document by jsonschema.  Any location it does not
    vouch for sends the whole document through jsonschema, so the answer is always the
    schema's.  ``vouched``: positions in ``data.locations`` of entries ``location_ok`` already
    accepted in this publish step (checked while their batch was parsed).
    """
    if document_ok(document, vouched):
        return None  # what the schema accepts, checked without jsonschema
    data = document.get("data")
    locations = data.get("locations") if isinstance(data, Mapping) else None
    if document.get("kind") == "weather" and type(locations) is list and all(
        i in vouched or location_ok(loc) for i, loc in enumerate(locations)
    ):
        document = {**document, "data": {**data, "locations": []}}  # type: ignore[dict-item]
    try:
        error = next(iter(snapshot_validator().iter_errors(document)), None)
    except Exception as exc:  # a validator failure is a refusal, never a crash
        return f"the schema check failed ({type(exc).__name__})"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    return f"{where}: {error.validator} failed"
