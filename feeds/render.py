"""Server-side HTML fragments of the widgets: ``<feed>.html`` beside ``<feed>.json``.

Rendered with Jinja2, autoescape on: every string from a snapshot reaches the page as text.
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
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from feeds.portal import RATE_COLUMNS, WEATHER_COLUMNS, PublishConfig, WidgetConfig

__all__ = [
    "TEXTS",
    "check_templates",
    "fragment_context",
    "icon_path",
    "icon_tables",
    "render_fragment",
    "vi_number",
    "vi_time",
]

#: The Vietnamese texts both forms print (the JS widget has the same strings).
TEXTS = {
    "title_exchange_rates": "Tỷ giá ngoại tệ",
    "title_weather": "Thời tiết các vùng",
    "caption_rates": "Tỷ giá mua và bán (đồng cho một đơn vị ngoại tệ)",
    "currency": "Ngoại tệ",
    "place": "Địa phương",
    "fresh": "Cập nhật lúc",
    "stale": "Dữ liệu cập nhật lần cuối lúc",
    "none": "Tạm thời chưa có dữ liệu",
    "source": "Nguồn:",
}


@cache
def icon_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(parts, icons) as written in portal-feeds.js: part -> path data, condition -> part names."""
    js = files("feeds").joinpath("widget/portal-feeds.js").read_text(encoding="utf-8")
    tables = []
    for name in ("pf-parts", "pf-icons"):
        m = re.search(r"/\*" + name + r"\*/(\{.*?\})/\*/" + name + r"\*/", js, re.S)
        if not m:
            raise RuntimeError(f"portal-feeds.js has no {name} table")
        tables.append(json.loads(m.group(1)))
    return tables[0], tables[1]


def icon_path(condition: object) -> str:
    """The SVG path data of a ``condition`` key (unknown keys get the "unknown" icon)."""
    parts, icons = icon_tables()
    names = icons.get(condition, icons["unknown"]) if isinstance(condition, str) else icons["unknown"]
    return " ".join(parts[p] for p in names.split())


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | float):
        # Through the double a browser parses from the JSON, then its exact value: the
        # rounding Intl.NumberFormat does, so the fragment and the JS widget print the same.
        d = Decimal(float(value))
        return d if d.is_finite() else None
    return None


def vi_number(value: Any, decimals: int = 0) -> str:
    """``26081.5`` -> ``26.081,50`` (decimals=2): Intl.NumberFormat("vi-VN") in Python."""
    d = _decimal(value)
    if d is None:
        return "—"
    q = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    whole, _, frac = format(abs(q), "f").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    # Like Intl with signDisplay "negative": -0.4 rounds to "0", not "-0".
    return sign + ".".join(groups) + ("," + frac if frac else "")


def vi_time(value: Any, tz: tzinfo) -> str:
    """An ISO timestamp as ``14:30 24/11/2026`` in ``tz``."""
    if not isinstance(value, str):
        return ""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if dt.tzinfo is None:
        return ""
    return dt.astimezone(tz).strftime("%H:%M %d/%m/%Y")


def _time(value: Any, tz: tzinfo) -> dict[str, str] | None:
    text = vi_time(value, tz)
    return {"datetime": str(value), "text": text} if text else None


def _rates(data: Mapping[str, Any], widget: WidgetConfig) -> list[dict[str, Any]]:
    rows = [r for r in data.get("rates", []) if isinstance(r, Mapping)]
    if widget.currencies:
        by_code = {r.get("code"): r for r in rows}
        rows = [by_code[c] for c in widget.currencies if c in by_code]
    cols = widget.columns_for("exchange_rates")
    return [
        {
            "code": str(r.get("code", "")),
            "name": str(r.get("name_vi") or r.get("name") or ""),
            "values": [vi_number(r.get(c), 2) for c in cols],
        }
        for r in rows
    ]


def _weather(data: Mapping[str, Any], widget: WidgetConfig) -> list[dict[str, Any]]:
    locs = [x for x in data.get("locations", []) if isinstance(x, Mapping)]
    if widget.locations:
        by_id = {x.get("id"): x for x in locs}
        locs = [by_id[i] for i in widget.locations if i in by_id]
    out = []
    for loc in locs:
        raw_cur, daily = loc.get("current"), loc.get("daily")
        cur: Mapping[str, Any] = raw_cur if isinstance(raw_cur, Mapping) else {}
        first = daily[0] if isinstance(daily, list) and daily else None
        today: Mapping[str, Any] = first if isinstance(first, Mapping) else {}
        out.append(
            {
                "id": str(loc.get("id", "")),
                "name": str(loc.get("short_name") or loc.get("name") or ""),
                "full_name": str(loc.get("name") or ""),
                "condition": str(cur.get("condition") or "unknown"),
                "condition_vi": str(cur.get("condition_vi") or ""),
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


def fragment_context(
    document: Mapping[str, Any], widget: WidgetConfig, tz: tzinfo
) -> dict[str, Any]:
    """What a template gets (documented in docs/widgets.md)."""
    kind = "weather" if document.get("kind") == "weather" else "exchange_rates"
    status = document.get("status")
    data = document.get("data")
    show = status in ("fresh", "stale") and isinstance(data, Mapping)
    ctx: dict[str, Any] = {
        "snapshot": document,
        "feed": document.get("feed"),
        "kind": kind,
        "status": status if status in ("fresh", "stale", "expired", "unavailable") else "unavailable",
        "show": show,
        "title": widget.title or TEXTS[f"title_{kind}"],
        "texts": TEXTS,
        "updated": _time(document.get("fetched_at"), tz) if show else None,
        "source": (document.get("source") or {}).get("name") if show else None,
        "columns": [],
        "rows": [],
        "locations": [],
    }
    cols = widget.columns_for(kind)
    if kind == "exchange_rates":
        ctx["columns"] = [{"key": c, "label": RATE_COLUMNS[c]} for c in cols]
        if show:
            assert isinstance(data, Mapping)
            ctx["rows"] = _rates(data, widget)
    else:
        ctx["columns"] = [{"key": c, "label": WEATHER_COLUMNS[c]} for c in cols]
        if show:
            assert isinstance(data, Mapping)
            ctx["locations"] = _weather(data, widget)
    if show and not (ctx["rows"] or ctx["locations"]):
        ctx["show"] = False  # nothing selected is in the data: say so, do not show an empty box
        ctx["updated"] = None
    return ctx


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _finalize(value: Any) -> Any:
    """Every printed value: control characters (not valid in HTML text) are dropped."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):  # Markup: our macros
        return _CONTROL.sub("", value)
    return value


@cache
def _environment(templates_dir: Path | None) -> jinja2.Environment:
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
    ctx = fragment_context(document, widget, publish.tz)
    name = f"{ctx['kind']}.html.j2"
    try:
        return _environment(publish.templates_dir).get_template(name).render(ctx)
    except jinja2.TemplateError as exc:
        if publish.templates_dir is None:
            raise
        import logging

        logging.getLogger("feeds.render").error(
            "template %s in %s failed (%s); the shipped template was used",
            name, publish.templates_dir, type(exc).__name__,
        )
        return _environment(None).get_template(name).render(ctx)
