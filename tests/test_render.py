"""Issue 12, the server side: snapshot timestamps in Vietnam time, short province names, and the
``<feed>.html`` fragments (escaped, accessible, same texts/formats/icons as the JS widget)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.config import ConfigError
from feeds.models import Location
from feeds.portal import PublishConfig, WidgetConfig
from feeds.render import icon_path, icon_tables, render_fragment, vi_number, vi_time
from feeds.sources.conditions import CONDITION_KEYS
from feeds.sources.provinces import VIETNAM_PROVINCES
from feeds.timezone import in_zone, load_zone
from tests.helpers import Upstream, config_file, fail, make_coordinator, ok, vcb_fixture

VN = load_zone("Asia/Ho_Chi_Minh")
HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "\"' onmouseover=alert(1) x=\"", "&lt;b&gt;"]

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
min_interval = "0s"
"""

WEATHER = """
[feeds.weather]
kind = "open-meteo"
url = "https://api.open-meteo.com/v1/forecast"
locations = "vietnam-provinces"
"""

OPEN_METEO_FIX = Path(__file__).parent / "fixtures" / "weather"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def rates_snapshot(status: str = "fresh", rates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rates = rates if rates is not None else [
        {"code": "EUR", "name": "EURO", "name_vi": "Euro", "buy_cash": Decimal("27000.1"),
         "buy_transfer": Decimal("27100"), "sell": Decimal("28000.456")},
        {"code": "JPY", "name": "YEN", "name_vi": "Yên Nhật", "buy_cash": Decimal("162.3"),
         "buy_transfer": Decimal("164"), "sell": Decimal("171.5")},
        {"code": "USD", "name": "US DOLLAR", "name_vi": "Đô la Mỹ", "buy_cash": Decimal("26081.5"),
         "buy_transfer": Decimal("26111.5"), "sell": None},
    ]
    return {
        "schema_version": 1, "feed": "exchange-rates", "kind": "exchange_rates", "status": status,
        "generated_at": "2026-11-24T07:30:00+00:00",
        "fetched_at": None if status == "unavailable" else "2026-11-24T07:30:00+00:00",
        "as_of": None, "stale_since": None if status == "fresh" else "2026-11-24T07:45:00+00:00",
        "next_update_at": "2026-11-24T07:45:00+00:00",
        "source": None if status == "unavailable" else {"name": "Vietcombank", "url": "https://x.invalid/"},
        "data": None if status == "unavailable" else {"base": "VND", "rates": rates},
    }


def weather_snapshot(status: str = "fresh", names: tuple[str, str] = ("Thành phố Hà Nội", "Hà Nội")) -> dict[str, Any]:
    loc = {
        "id": "ha-noi", "name": names[0], "short_name": names[1], "lat": 21.03, "lon": 105.85,
        "fetched_at": "2026-11-24T07:30:00+00:00",
        "current": {"time": "2026-11-24T14:30:00+07:00", "temperature_c": 24.5, "apparent_temperature_c": None,
                    "humidity_pct": 71, "wind_speed_kmh": 8.3, "wind_direction_deg": 120, "precipitation_mm": 0.4,
                    "weather_code": 63, "condition": "rain", "condition_vi": "Mưa vừa"},
        "daily": [{"date": "2026-11-24", "temperature_min_c": 19.2, "temperature_max_c": 26.0,
                   "precipitation_mm": 0.4, "weather_code": 61, "condition": "rain_light", "condition_vi": "Mưa nhỏ"}],
    }
    other = {**loc, "id": "hue", "name": "Thành phố Huế", "short_name": "Huế",
             "current": {**loc["current"], "condition": "thunderstorm", "condition_vi": "Dông", "temperature_c": -0.4}}
    doc = rates_snapshot(status)
    doc.update(feed="weather", kind="weather",
               source=None if status == "unavailable" else {"name": "Open-Meteo", "url": "https://x.invalid/"},
               data=None if status == "unavailable" else {"locations": [loc, other]})
    return doc


def fragment(doc: dict[str, Any], widget: WidgetConfig | None = None, publish: PublishConfig | None = None) -> Any:
    html = render_fragment(doc, widget or WidgetConfig(), publish or PublishConfig())
    return html, lxml.html.fragment_fromstring(html)


def text_of(el: Any) -> str:
    return re.sub(r"\s+", " ", el.text_content()).strip()


def row_text(tr: Any) -> str:
    return " ".join(text_of(cell) for cell in tr)


# -- Vietnam time -------------------------------------------------------------------------

def test_in_zone_rewrites_every_timestamp_keeping_the_instant() -> None:
    doc = weather_snapshot("stale")
    out = in_zone(doc, VN)
    assert out["generated_at"] == "2026-11-24T14:30:00+07:00"
    assert out["stale_since"] == "2026-11-24T14:45:00+07:00"
    loc = out["data"]["locations"][0]
    assert loc["fetched_at"] == "2026-11-24T14:30:00+07:00"
    assert loc["current"]["time"] == "2026-11-24T14:30:00+07:00"
    assert loc["daily"][0]["date"] == "2026-11-24"
    for key in ("generated_at", "fetched_at", "stale_since", "next_update_at"):
        assert datetime.fromisoformat(out[key]) == datetime.fromisoformat(doc[key])
    assert doc["generated_at"].endswith("+00:00")  # the input is not modified


def test_published_snapshot_is_in_vietnam_time_by_default(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture(), headers={"Content-Type": "text/xml"}))
    coord, clock, _, _ = make_coordinator(cfg, up)
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    clock.advance(600)
    up.default = fail(OSError("boom"))
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["status"] == "stale"
    stamps = [snap[k] for k in ("generated_at", "fetched_at", "as_of", "stale_since", "next_update_at")]
    assert all(s.endswith("+07:00") for s in stamps), stamps
    # 08:00 UTC on the fake clock is 15:00 in Hà Nội.
    assert snap["fetched_at"] == "2026-11-24T15:00:00+07:00"


def test_publish_timezone_is_configurable(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, '[publish]\ntimezone = "UTC"\n' + RATES)
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["generated_at"] == "2026-11-24T08:00:00+00:00"
    assert snap["as_of"].endswith("+00:00")


def test_bad_timezone_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="publish.timezone"):
        config_file(tmp_path, '[publish]\ntimezone = "Mars/Olympus"\n' + RATES)


# -- short names --------------------------------------------------------------------------

def test_every_province_has_a_short_name() -> None:
    names = {loc.name: loc.display_name for loc in VIETNAM_PROVINCES}
    assert len(names) == 34
    assert names["Thành phố Hà Nội"] == "Hà Nội"
    assert names["Thành phố Hồ Chí Minh"] == "TP. Hồ Chí Minh"
    assert names["Lai Châu"] == "Lai Châu"
    assert not any(n.startswith("Thành phố") for n in names.values())


def test_short_name_inline_and_derived(tmp_path: Path) -> None:
    assert Location("x", "Thành phố Đà Nẵng", 16, 108).display_name == "Đà Nẵng"
    assert Location("x", "Tỉnh Gia Lai", 14, 108).display_name == "Gia Lai"
    cfg = config_file(tmp_path, """
[feeds.weather]
kind = "open-meteo"
locations = [{ id = "hn", name = "Thành phố Hà Nội", short_name = "HN", lat = 21.03, lon = 105.85 },
             { id = "hue", name = "Thành phố Huế", lat = 16.46, lon = 107.59 }]
""")
    assert [loc.display_name for loc in cfg.feeds["weather"].locations] == ["HN", "Huế"]


def test_weather_snapshot_carries_short_names(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, WEATHER.replace('"vietnam-provinces"', '[{ id = "ha-noi", name = "Thành phố Hà Nội", lat = 40.71, lon = -74.0 }]'))
    body = (OPEN_METEO_FIX / "open-meteo-current-single.json").read_bytes()
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(body, headers={"Content-Type": "application/json"})))
    run(coord.refresh(cfg.feeds["weather"]))
    snap = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    (loc,) = snap["data"]["locations"]
    assert (loc["name"], loc["short_name"]) == ("Thành phố Hà Nội", "Hà Nội")
    assert loc["fetched_at"].endswith("+07:00")


# -- formats --------------------------------------------------------------------------------

# Like V8's Intl.NumberFormat: the shortest decimal of the double, half away from zero.
@pytest.mark.parametrize(("value", "decimals", "text"), [
    (Decimal("3474.5"), 2, "3.474,50"), (26081.5, 2, "26.081,50"), (Decimal("1234567.005"), 2, "1.234.567,01"), (Decimal("1234567.0049"), 2, "1.234.567,00"),
    (24.5, 0, "25"), (1e26, 2, "100.000.000.000.000.000.000.000.000,00"), (1.005, 2, "1,01"), (-0.4, 0, "0"), (-3.5, 0, "-4"), (0.4, 1, "0,4"), (None, 2, "—"), ("12", 2, "—"),
])
def test_vi_number(value: Any, decimals: int, text: str) -> None:
    assert vi_number(value, decimals) == text


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.decimals(min_value=-10**9, max_value=10**9, places=3, allow_nan=False, allow_infinity=False))
def test_vi_number_reads_back(d: Decimal) -> None:
    text = vi_number(d, 2)
    assert re.fullmatch(r"-?\d{1,3}(\.\d{3})*,\d{2}", text)
    back = Decimal(text.replace(".", "").replace(",", "."))
    assert abs(back - d) <= Decimal("0.005")


def test_vi_time_is_vietnam_time_whatever_the_offset() -> None:
    assert vi_time("2026-11-24T07:30:00+00:00", VN) == "14:30 24/11/2026"
    assert vi_time("2026-11-24T14:30:00+07:00", VN) == "14:30 24/11/2026"
    assert vi_time("2026-11-24T17:30:00Z", VN) == "00:30 25/11/2026"
    assert vi_time("not a time", VN) == "" and vi_time(None, VN) == ""


# -- icons ----------------------------------------------------------------------------------

def test_every_condition_key_has_an_icon_drawn_from_known_parts() -> None:
    parts, icons = icon_tables()
    assert set(icons) == set(CONDITION_KEYS)
    for key, names in icons.items():
        assert names.split() and all(p in parts for p in names.split()), key
        assert re.fullmatch(r"[MmLlHhVvAaCcZz0-9 .\-]+", icon_path(key)), key
    assert icon_path("rain") != icon_path("snow")
    assert icon_path("<script>") == icon_path("unknown") == icon_path(None)


# -- the fragments --------------------------------------------------------------------------

def test_rates_fresh_fragment_is_an_accessible_table() -> None:
    html, root = fragment(rates_snapshot("fresh"))
    assert root.tag == "section" and root.get("data-status") == "fresh"
    table = root.find(".//table")
    assert text_of(table.find("caption")).startswith("Tỷ giá")
    assert [th.get("scope") for th in table.findall("./thead/tr/th")] == ["col"] * 4
    rows = table.findall("./tbody/tr")
    assert [r.find("th").get("scope") for r in rows] == ["row"] * 3
    assert row_text(rows[2]) == "USD Đô la Mỹ 26.081,50 26.111,50 —"
    assert row_text(rows[0]).endswith("28.000,46")
    status = root.find(".//p[@class='pf-status pf-status-fresh']")
    assert text_of(status).startswith("Cập nhật lúc 14:30 24/11/2026")
    assert status.find("time").get("datetime") == "2026-11-24T07:30:00+00:00"


def test_rates_stale_fragment_says_when_it_was_last_updated() -> None:
    _, root = fragment(rates_snapshot("stale"))
    assert root.find(".//table") is not None
    assert text_of(root.find(".//p[@class='pf-notice']/strong")) == "Dữ liệu cũ"  # a labelled badge
    assert text_of(root.find(".//p[@class='pf-status pf-status-stale']")).startswith("Cập nhật lần cuối lúc 14:30 24/11/2026")


@pytest.mark.parametrize("status", ["expired", "unavailable"])
@pytest.mark.parametrize("make", [rates_snapshot, weather_snapshot])
def test_no_data_states_say_only_that(status: str, make: Any) -> None:
    html, root = fragment(make(status))
    assert root.find(".//table") is None and root.find(".//ul") is None
    assert "27.000" not in html and "24" + "&#176;C" not in html
    if status == "unavailable":
        assert text_of(root.find(".//p")) == "Tạm thời chưa có dữ liệu"
        assert "Vietcombank" not in html and "Open-Meteo" not in html
    else:  # expired: figures hidden behind the notice; when the data was last updated stays
        assert text_of(root.find(".//p[@class='pf-notice']")).startswith("Hết hiệu lực")
        assert "Số liệu đã quá cũ nên không hiển thị." in text_of(root.find(".//p[@class='pf-notice']"))
        assert text_of(root.find(".//p[@class='pf-status pf-status-stale']")).startswith("Cập nhật lần cuối lúc 14:30 24/11/2026")


def test_rates_widget_options_pick_currencies_and_columns() -> None:
    widget = WidgetConfig(title="Tỷ giá hôm nay", currencies=("USD", "JPY", "XXX"), columns=("sell",))
    _, root = fragment(rates_snapshot(), widget)
    assert text_of(root.find("h2")) == "Tỷ giá hôm nay"
    assert [text_of(th) for th in root.findall(".//thead/tr/th")] == ["Ngoại tệ", "Bán"]
    assert [row_text(r) for r in root.findall(".//tbody/tr")] == ["USD Đô la Mỹ —", "JPY Yên Nhật 171,50"]


def test_nothing_selected_in_the_data_is_no_data() -> None:
    _, root = fragment(rates_snapshot(), WidgetConfig(currencies=("XXX",)))
    assert root.find(".//table") is None
    assert text_of(root.find(".//p")) == "Tạm thời chưa có dữ liệu"


def test_weather_fragment_is_a_list_with_icons_and_short_names() -> None:
    widget = WidgetConfig(columns=("condition", "temperature", "humidity", "wind", "precipitation", "forecast"))
    _, root = fragment(weather_snapshot("fresh"), widget)
    items = root.findall(".//ul/li")
    assert [text_of(li.find("span")) for li in items] == ["Hà Nội", "Huế"]
    assert text_of(items[0]) == "Hà Nội Mưa vừa 25°C Độ ẩm 71% Gió 8 km/h Lượng mưa 0,4 mm Hôm nay 19–26°C"
    assert text_of(items[1]).startswith("Huế Dông 0°C")
    svg = items[0].find(".//svg")
    assert svg.get("aria-hidden") == "true" and svg.find("path").get("d") == icon_path("rain")
    assert items[1].find(".//svg/path").get("d") == icon_path("thunderstorm")
    _, root = fragment(weather_snapshot("fresh"), WidgetConfig(locations=("hue",), columns=("temperature",)))
    assert [text_of(li) for li in root.findall(".//ul/li")] == ["Huế 0°C"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=40)))
def test_any_string_from_a_snapshot_is_text_in_the_fragment(evil: str) -> None:
    evil_rates = rates_snapshot(rates=[{"code": "USD", "name": evil, "name_vi": evil, "buy_cash": None,
                                        "buy_transfer": Decimal(1), "sell": Decimal(2)}])
    evil_rates["source"]["name"] = evil
    for doc in (evil_rates, weather_snapshot(names=(evil, evil))):
        doc["feed"] = "f"
        if doc["kind"] == "weather":
            doc["data"]["locations"][0]["current"]["condition_vi"] = evil
            doc["data"]["locations"][0]["current"]["condition"] = evil
        html, root = fragment(doc)
        # Exactly the elements the template makes; the string is in the text, whole.
        tags = {el.tag for el in root.iter() if isinstance(el.tag, str)}
        assert tags <= {"section", "h2", "table", "caption", "thead", "tbody", "tr", "th", "td", "span",
                        "p", "time", "ul", "li", "svg", "path", "bdi", "strong"}
        assert not any(k.startswith("on") for el in root.iter() if isinstance(el.tag, str) for k in el.attrib)
        clean = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]", "", evil)
        if clean.strip():
            assert re.sub(r"\s+", " ", clean.strip()) in text_of(root)
    for bad in HOSTILE[:2]:
        assert bad not in render_fragment(
            rates_snapshot(rates=[{"code": "USD", "name": bad, "name_vi": bad, "buy_cash": None,
                                   "buy_transfer": Decimal(1), "sell": Decimal(2)}]), WidgetConfig(), PublishConfig())


# -- published with the JSON, overridable templates -----------------------------------------

def test_html_is_published_with_the_json(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES + '\n[feeds.exchange-rates.widget]\ncurrencies = "USD,EUR"\n')
    coord, clock, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    html = (tmp_path / "snapshots" / "exchange-rates.html").read_text(encoding="utf-8")
    _, root = fragment(json.loads((tmp_path / "snapshots" / "exchange-rates.json").read_text()),
                       cfg.feeds["exchange-rates"].widget)
    assert lxml.html.tostring(lxml.html.fragment_fromstring(html)) == lxml.html.tostring(root)
    assert [r.find("th/span").text for r in root.findall(".//tbody/tr")] == ["USD", "EUR"]
    assert oct((tmp_path / "snapshots" / "exchange-rates.html").stat().st_mode & 0o777) == "0o644"
    assert not list((tmp_path / "snapshots").glob(".*.tmp"))
    # A failure later: the fragment follows the JSON to "stale", not a word of the error.
    clock.advance(900)
    coord.client._transport = __import__("httpx").MockTransport(  # type: ignore[attr-defined]
        fail(OSError("The remote name could not be resolved: 'www.vietcombank.com.vn'")))
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    html = (tmp_path / "snapshots" / "exchange-rates.html").read_text(encoding="utf-8")
    assert 'data-status="stale"' in html and "Cập nhật lần cuối lúc" in __import__("html").unescape(html)
    assert "resolved" not in html and "vietcombank.com" not in html


def test_widget_options_are_validated(tmp_path: Path) -> None:
    for body, key in [
        (RATES + '[feeds.exchange-rates.widget]\ncurrencies = "USD,dollars"\n', "widget.currencies"),
        (RATES + '[feeds.exchange-rates.widget]\ncolumns = ["sell", "temperature"]\n', "widget.columns"),
        (RATES + '[feeds.exchange-rates.widget]\nlocations = ["ha-noi"]\n', "widget.locations"),
        (RATES + '[feeds.exchange-rates.widget]\ncolour = "red"\n', "widget.colour"),
        (WEATHER + '[feeds.weather.widget]\nlocations = ["ha-noi", "atlantis"]\n', "widget.locations"),
        (WEATHER + '[feeds.weather.widget]\ntitle = ""\n', "widget.title"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            config_file(tmp_path, body)
    cfg = config_file(tmp_path, WEATHER + '[feeds.weather.widget]\nlocations = ["ha-noi", "hue"]\ncolumns = "temperature, humidity"\n')
    assert cfg.feeds["weather"].widget == WidgetConfig(locations=("ha-noi", "hue"), columns=("temperature", "humidity"))


def test_templates_dir_overrides_and_broken_templates_are_caught(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "exchange_rates.html.j2").write_text(
        '<div class="mine">{{ title }}{% for r in rows %}<b>{{ r.name }}</b>{% endfor %}</div>\n', encoding="utf-8")
    cfg = config_file(tmp_path, '[publish]\ntemplates_dir = "tpl"\n' + RATES)
    evil = rates_snapshot(rates=[{"code": "USD", "name": HOSTILE[0], "name_vi": HOSTILE[0], "buy_cash": None,
                                  "buy_transfer": Decimal(1), "sell": Decimal(2)}])
    html = render_fragment(evil, WidgetConfig(), cfg.publish)
    assert html == '<div class="mine">T&#7927; gi&#225; ngo&#7841;i t&#7879;<b>&lt;img src=x onerror=alert(1)&gt;</b></div>\n'
    # The weather template was not overridden: the shipped one serves.
    assert "pf-weather" in render_fragment(weather_snapshot(), WidgetConfig(), cfg.publish)

    (tpl / "exchange_rates.html.j2").write_text("{% for r in rows %}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"publish.templates_dir: template exchange_rates.html.j2 line 1"):
        config_file(tmp_path, '[publish]\ntemplates_dir = "tpl"\n' + RATES)
    with pytest.raises(ConfigError, match="publish.templates_dir"):
        config_file(tmp_path, '[publish]\ntemplates_dir = "nowhere"\n' + RATES)

    # Compiles, fails at render time: logged, and the shipped template serves.
    tpl2 = tmp_path / "tpl2"
    tpl2.mkdir()
    (tpl2 / "exchange_rates.html.j2").write_text("{{ no_such_thing.x }}", encoding="utf-8")
    cfg = config_file(tmp_path, '[publish]\ntemplates_dir = "tpl2"\n' + RATES)
    with caplog.at_level(logging.ERROR, logger="feeds.render"):
        html = render_fragment(rates_snapshot(), WidgetConfig(), cfg.publish)
    assert "pf-rates" in html and "the shipped template was used" in caplog.text


def test_fragment_and_json_are_the_same_moment(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = json.loads((tmp_path / "snapshots" / "exchange-rates.json").read_text())
    html = (tmp_path / "snapshots" / "exchange-rates.html").read_text()
    assert f'<time datetime="{snap["fetched_at"]}">' in html
    assert datetime.fromisoformat(snap["fetched_at"]) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert datetime.fromisoformat(snap["next_update_at"]) - datetime.fromisoformat(snap["fetched_at"]) == timedelta(minutes=15)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(
        ["code", "name", "name_vi", "sell", "id", "short_name", "current", "daily", "condition",
         "temperature_c", "temperature_min_c", "x"]), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from(["fresh", "stale"]), st.lists(JSONISH, max_size=4), st.lists(JSONISH, max_size=4), JSONISH)
def test_odd_shapes_in_a_v1_snapshot_never_break_the_fragment(status: str, rates: list[Any], locs: list[Any], when: Any) -> None:
    """The daemon renders only what it validated, but a template must not be the weak point."""
    r = rates_snapshot(status)
    r["data"]["rates"] = rates
    r["fetched_at"] = when
    w = weather_snapshot(status)
    w["data"]["locations"] = locs
    for doc in (r, w):
        for widget in (WidgetConfig(), WidgetConfig(currencies=("USD",), locations=("ha-noi",))):
            html, root = fragment(doc, widget)
            assert root.tag == "section"
            status_line = [p for p in root.iter("p") if "pf-status" in (p.get("class") or "")][0]
            assert text_of(status_line).startswith(("Cập nhật", "Tạm thời"))
