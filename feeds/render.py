"""Server-side HTML fragments of the widgets: ``<feed>.html`` beside ``<feed>.json``.

Rendered with Jinja2 (imported at the first render: a warm start sends READY=1 before its
fragments are rendered, ``feeds.portal.fragments_later``), autoescape on: every string from a snapshot reaches the page as text.
The templates are ``feeds/templates/<kind>.html.j2`` (kind = ``exchange_rates`` or
``weather``); a folder named by ``[publish] templates_dir`` is searched first, so a portal
can restyle or reword without forking.  The context a template gets is documented in
docs/widgets.md ("Your own templates").

The fragment and the JavaScript widget (``feeds/widget/portal-feeds.js``) print the same
markup, the same Vietnamese texts and formats, and the same icons: the icon tables are read
from the JavaScript file itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds import pkgdata
from feeds.settings import RATE_COLUMNS, WEATHER_COLUMNS, PublishConfig, WidgetConfig

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "SHOWN",
    "TEXTS",
    "TIMES",
    "ago",
    "change_mark",
    "check_templates",
    "fragment_claim",
    "fragment_context",
    "icon_path",
    "icon_tables",
    "render_fragment",
    "vi_number",
    "vi_time",
]

def _js_table(name: str) -> dict[str, Any]:
    """A table written in portal-feeds.js between ``/*name*/`` and ``/*/name*/`` (JSON)."""
    js = pkgdata.read("widget/portal-feeds.js").decode("ascii")  # no importlib.resources before READY
    m = re.search(r"/\*" + name + r"\*/(\{.*?\})/\*/" + name + r"\*/", js, re.S)
    if not m:
        raise RuntimeError(f"portal-feeds.js has no {name} table")
    table: dict[str, Any] = json.loads(m.group(1))
    return table


#: The Vietnamese texts both forms print: the JS widget's own table, read from it.
TEXTS: dict[str, str] = _js_table("pf-texts")


@cache
def icon_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(parts, icons) as written in portal-feeds.js: part -> path data, condition -> part names."""
    return _js_table("pf-parts"), _js_table("pf-icons")


def icon_path(condition: object) -> str:
    """The SVG path data of a ``condition`` key (unknown keys get the "unknown" icon)."""
    parts, icons = icon_tables()
    names = icons.get(condition, icons["unknown"]) if isinstance(condition, str) else icons["unknown"]
    return " ".join(parts[p] for p in names.split())


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | float):
        # Through the double a browser parses from the JSON, written as its shortest decimal
        # (what V8's Intl.NumberFormat rounds, half away from zero): 1.005 -> "1,01",
        # 1e26 -> "100.000...000,00", so the fragment and the JS widget print the same.
        d = Decimal(repr(float(value)))
        return d if d.is_finite() else None
    return None


def vi_number(value: Any, decimals: int = 0) -> str:
    """``26081.5`` -> ``26.081,50`` (decimals=2): Intl.NumberFormat("vi-VN") in Python."""
    d = _decimal(value)
    if d is None:
        return "—"
    with localcontext() as ctx:
        ctx.prec = 400  # a double's exact value has at most ~310 integer digits
        q = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        sign = "-" if q < 0 else ""
        whole, _, frac = format(q.copy_abs(), "f").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    # Like Intl with signDisplay "negative": -0.4 rounds to "0", not "-0".
    return sign + ".".join(groups) + ("," + frac if frac else "")


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def vi_time(value: Any, tz: tzinfo) -> str:
    """An ISO timestamp as ``14:30 24/11/2026`` in ``tz``."""
    dt = _instant(value)
    if dt is None:
        return ""
    try:
        return dt.astimezone(tz).strftime("%H:%M %d/%m/%Y")
    except (OverflowError, ValueError):  # year 1 or 9999 moved across a day boundary
        return ""


def _time(value: Any, tz: tzinfo) -> dict[str, str] | None:
    text = vi_time(value, tz)
    return {"datetime": str(value), "text": text} if text else None


def _text(value: Any) -> str:
    """A string field as text; numbers as written; anything else (null, objects) as nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return ""


def change_mark(value: Any) -> dict[str, str] | None:
    """``{dir, mark, spoken}`` of a day's change: "▲ 20" shown, "tăng 20 đồng" read (the JS's ``delta``)."""
    d = _decimal(value)
    if d is None:
        return None
    amount = abs(float(d))
    text = vi_number(amount, 2 if amount % 1 else 0)
    if d > 0:
        return {"dir": "up", "mark": f"▲ {text}", "spoken": f"{TEXTS['up']} {text} {TEXTS['dong']}"}
    if d < 0:
        return {"dir": "down", "mark": f"▼ {text}", "spoken": f"{TEXTS['down']} {text} {TEXTS['dong']}"}
    return {"dir": "same", "mark": "=", "spoken": TEXTS["same"]}


def _rate_rows(data: Mapping[str, Any], widget: WidgetConfig) -> list[Mapping[str, Any]]:
    """The rates a fragment shows: ``[widget] currencies`` in their order, else all."""
    rows = [r for r in data.get("rates", []) if isinstance(r, Mapping)]
    if widget.currencies:
        by_code = {_text(r.get("code")): r for r in rows}
        rows = [by_code[c] for c in widget.currencies if c in by_code]
    return rows


def _rates(data: Mapping[str, Any], widget: WidgetConfig) -> list[dict[str, Any]]:
    cols = widget.columns_for("exchange_rates")
    out = []
    for r in _rate_rows(data, widget):
        change = r.get("change") if widget.change else None
        out.append({
            "code": _text(r.get("code")),
            "name": _text(r.get("name_vi")) or _text(r.get("name")),
            "values": [vi_number(r.get(c), 2) for c in cols],
            # The day's change beside each value (issue 21), aligned with ``values``.
            "changes": [change_mark(change.get(c)) if isinstance(change, Mapping) else None for c in cols],
        })
    return out


#: A fragment with no ``[widget] locations`` shows the feed's first locations, this many: all
#: 63 provinces fit; a feed of thousands (a district grid) is read by pages through its JSON
#: or per-location files, and rendering 3,000 rows (1.7 MB of HTML) into every attempt only
#: slowed it down (issue 20).  Configured ``locations`` are always shown, however many.
FRAGMENT_LOCATIONS = 64


def _weather_locations(data: Mapping[str, Any], widget: WidgetConfig) -> list[Mapping[str, Any]]:
    """The places a fragment shows: ``[widget] locations`` in their order, else the first ones."""
    all_locs = data.get("locations")
    all_locs = all_locs if isinstance(all_locs, list) else []
    if widget.locations:
        by_id = {_text(x.get("id")): x for x in all_locs if isinstance(x, Mapping)}
        return [by_id[i] for i in widget.locations if i in by_id]
    return [x for x in all_locs[:FRAGMENT_LOCATIONS] if isinstance(x, Mapping)]


def _weather(data: Mapping[str, Any], widget: WidgetConfig) -> list[dict[str, Any]]:
    out = []
    for loc in _weather_locations(data, widget):
        raw_cur, daily = loc.get("current"), loc.get("daily")
        cur: Mapping[str, Any] = raw_cur if isinstance(raw_cur, Mapping) else {}
        first = daily[0] if isinstance(daily, list) and daily else None
        today: Mapping[str, Any] = first if isinstance(first, Mapping) else {}
        out.append(
            {
                "id": _text(loc.get("id")),
                "name": _text(loc.get("short_name")) or _text(loc.get("name")),
                "full_name": _text(loc.get("name")),
                "condition": _text(cur.get("condition")) or "unknown",
                "condition_vi": _text(cur.get("condition_vi")),
                "icon": icon_path(cur.get("condition")),
                "temperature": vi_number(cur.get("temperature_c")) + "°C",
                "humidity": vi_number(cur.get("humidity_pct")) + "%",
                "wind": vi_number(cur.get("wind_speed_kmh")) + " km/h",
                "precipitation": vi_number(cur.get("precipitation_mm"), 1) + " mm",
                "forecast": vi_number(today.get("temperature_min_c")) + "–"
                + vi_number(today.get("temperature_max_c")) + "°C",
            }
        )
    return out


#: States in which the figures are shown; ``expired`` hides them behind its notice.
SHOWN = ("fresh", "stale", "frozen", "overdue")
#: The snapshot times a fragment carries as ``data-*`` attributes: the JS widget judges a
#: server-rendered box by them (``overdue``, ``expired``) when it cannot read the snapshot.
TIMES = ("generated_at", "next_update_at", "expires_at", "fetched_at", "as_of", "upstream_stale_since")


def ago(seconds: float) -> str:
    """``2 ngày trước``: an age in words, the rule of the JS widget's ``ago``; "" when negative."""
    if not seconds >= 0:
        return ""
    m = int(seconds // 60)
    h, d = m // 60, m // 1440
    if m < 1:
        return TEXTS["just_now"]
    if m < 60:
        return f"{m} {TEXTS['minutes']}"
    if h < 24:
        return f"{h} {TEXTS['hours']}"
    if d < 730:
        return f"{d} {TEXTS['days']}"
    return f"{d // 365} {TEXTS['years']}"


def _notice(state: str, document: Mapping[str, Any]) -> dict[str, str] | None:
    """The labelled badge of a state that is not current, the age in words as of the file's writing."""
    if state not in ("stale", "frozen", "expired"):
        return None  # fresh needs none; overdue is the page's judgement (the file cannot know)
    frozen = state == "frozen"
    now, then = _instant(document.get("generated_at")), _instant(document.get("as_of" if frozen else "fetched_at"))
    age = ago((now - then).total_seconds()) if now is not None and then is not None else ""
    return {
        "badge": TEXTS[f"badge_{state}"],
        "ago": f"{TEXTS['ago_data' if frozen else 'ago_updated']} {age}" if age else "",
        "note": TEXTS["expired"] if state == "expired" else "",
    }


def fragment_claim(document: Mapping[str, Any], widget: WidgetConfig) -> tuple[str, str, str]:
    """``(state, status, age in words)`` of the fragment of ``document``, as ``fragment_context``
    gives them (``state``, ``status``, ``notice.ago``), without building its rows: what the
    fragment claims about the data's freshness (``feeds.portal.fragment_may_wait``)."""
    kind = "weather" if document.get("kind") == "weather" else "exchange_rates"
    status = document.get("status")
    data = document.get("data")
    state = status if status in ("fresh", "stale", "expired", "unavailable") else "unavailable"
    if state in ("fresh", "stale") and document.get("upstream_stale_since"):
        state = "frozen"
    if state in SHOWN and not isinstance(data, Mapping):
        state = "unavailable"
    if state in SHOWN:
        assert isinstance(data, Mapping)
        if not (_rate_rows(data, widget) if kind == "exchange_rates" else _weather_locations(data, widget)):
            state = "none"
    notice = _notice(state, document)
    return state, status if status in ("fresh", "stale", "expired", "unavailable") else "unavailable", (
        notice["ago"] if notice else ""
    )


def fragment_context(
    document: Mapping[str, Any], widget: WidgetConfig, tz: tzinfo
) -> dict[str, Any]:
    """What a template gets (documented in docs/widgets.md).

    ``state`` is the one the JS widget would show for the same file, less the clock's
    judgement (``overdue``, and ``expired`` by ``expires_at``), which only the page can make.
    """
    kind = "weather" if document.get("kind") == "weather" else "exchange_rates"
    status = document.get("status")
    data = document.get("data")
    state = status if status in ("fresh", "stale", "expired", "unavailable") else "unavailable"
    if state in ("fresh", "stale") and document.get("upstream_stale_since"):
        state = "frozen"  # the upstream's own table stopped moving
    if state in SHOWN and not isinstance(data, Mapping):
        state = "unavailable"
    raw_source = document.get("source")
    source = raw_source.get("name") if isinstance(raw_source, Mapping) else None
    source = source if isinstance(source, str) and source else None
    cols = widget.columns_for(kind)
    labels = RATE_COLUMNS if kind == "exchange_rates" else WEATHER_COLUMNS
    ctx: dict[str, Any] = {
        "snapshot": document,
        "feed": document.get("feed"),
        "kind": kind,
        "status": status if status in ("fresh", "stale", "expired", "unavailable") else "unavailable",
        "state": state,
        "show": False,
        "title": widget.title or TEXTS[f"title_{kind}"],
        "heading": widget.heading,
        "texts": TEXTS,
        "times": [(f"data-{k.replace('_', '-')}", document[k]) for k in TIMES if isinstance(document.get(k), str)],
        "notice": None,
        "asof": None,
        "updated": None,
        "source": None,
        "columns": [{"key": c, "label": labels[c]} for c in cols],
        "rows": [],
        "locations": [],
    }
    if state in SHOWN:
        assert isinstance(data, Mapping)
        if kind == "exchange_rates":
            ctx["rows"] = _rates(data, widget)
        else:
            ctx["locations"] = _weather(data, widget)
        if not (ctx["rows"] or ctx["locations"]):
            state = ctx["state"] = "none"  # nothing selected is in the data: say so, not an empty box
    ctx["show"] = show = state in SHOWN
    ctx["notice"] = _notice(state, document)
    if show and kind == "exchange_rates":
        asof = _time(document.get("as_of"), tz)
        if asof:
            lead = f"{TEXTS['asof_rates']} {source} {TEXTS['at']}" if source else f"{TEXTS['asof_rates']} {TEXTS['at']}"
            ctx["asof"] = {**asof, "lead": lead}
    if show or state == "expired":
        updated = _time(document.get("fetched_at"), tz)
        if updated:
            ctx["updated"] = {**updated, "label": TEXTS["fresh" if state == "fresh" else "stale"]}
            ctx["source"] = source
    return ctx


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _finalize(value: Any) -> Any:
    """Every printed value: control characters (not valid in HTML text) are dropped."""
    if isinstance(value, str) and not isinstance(value, _markup()):  # Markup: our macros
        return _CONTROL.sub("", value)
    return value


@cache
def _markup() -> type[str]:
    import markupsafe

    return markupsafe.Markup


@cache
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.PackageLoader("feeds", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
    )


def check_templates(templates_dir: Path) -> str | None:
    """None if every template in the folder compiles, else one sentence naming the first that does not."""
    import jinja2

    env = _environment(templates_dir)
    for path in sorted(templates_dir.glob("*.j2")):
        try:
            env.get_template(path.name)
        except jinja2.TemplateSyntaxError as exc:
            return f"template {path.name} line {exc.lineno}: {exc.message}"
    return None


def render_fragment(document: Mapping[str, Any], widget: WidgetConfig, publish: PublishConfig) -> str:
    """The HTML fragment of one snapshot.

    A portal's own template that fails at render time (an unknown variable, say) is logged
    and the shipped template is used instead: the fragment is always written.
    """
    import jinja2

    ctx = fragment_context(document, widget, publish.tz)
    name = f"{ctx['kind']}.html.j2"
    try:
        return _ascii(_environment(publish.templates_dir).get_template(name).render(ctx))
    except jinja2.TemplateError as exc:
        if publish.templates_dir is None:
            raise
        import logging

        logging.getLogger("feeds.render").error(
            "template %s in %s failed (%s); the shipped template was used",
            name, publish.templates_dir, type(exc).__name__,
        )
        return _ascii(_environment(None).get_template(name).render(ctx))


def _ascii(html: str) -> str:
    """Every character outside ASCII as a numeric reference (``&#7927;``).

    The fragment is then the same text on a page in any ASCII-based encoding — UTF-8,
    windows-1258, ISO-8859-1 — included by SSI, PHP or ASP.NET without recoding; what the
    host page declares cannot contradict it.  (Fragments hold no ``<script>``/``<style>``.)
    """
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")
