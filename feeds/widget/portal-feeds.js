/*! portal-feeds widget (MIT): <div data-portal-feeds="exchange-rates" data-src="/feeds/exchange-rates.json">, docs/widgets.md */
(function () {
  "use strict";
  // Icon parts (24x24) and each condition's parts; feeds/render.py reads both tables here.
  var PARTS = /*pf-parts*/{
    "sun": "M12 7.5a4.5 4.5 0 1 0 0 9a4.5 4.5 0 1 0 0-9zM12 1.5V4M12 20v2.5M1.5 12H4M20 12h2.5M4.6 4.6l1.8 1.8M17.6 17.6l1.8 1.8M4.6 19.4l1.8-1.8M17.6 6.4l1.8-1.8",
    "sunlet": "M8 5a3 3 0 1 0 0 6a3 3 0 1 0 0-6zM8 1v1.8M1 8h1.8M3 3l1.2 1.2M13 3l-1.2 1.2",
    "cloud": "M7 19h10.5a4 4 0 0 0 .6-8A6 6 0 0 0 6.5 12.1A3.5 3.5 0 0 0 7 19z",
    "cloudbit": "M13 21h6.5a2.5 2.5 0 0 0 .3-5a3.7 3.7 0 0 0-7 1.3A1.9 1.9 0 0 0 13 21z",
    "cloudup": "M7 15h10.5a3.6 3.6 0 0 0 .5-7.2A5.5 5.5 0 0 0 7.3 9A3 3 0 0 0 7 15z",
    "fog": "M4 18h16M6 21.5h12",
    "dots": "M8 18.5v.1M12 20.5v.1M16 18.5v.1",
    "drops1": "M9 18l-1 3M15 18l-1 3",
    "drops2": "M8 18l-1 3M12 18l-1 3M16 18l-1 3",
    "drops3": "M8 17.5l-1.8 4.5M12 17.5l-1.8 4.5M16 17.5l-1.8 4.5",
    "flakes": "M8 17.5v4M6 19.5h4M16 17.5v4M14 19.5h4",
    "grains": "M8 19h.1M12 21h.1M16 19h.1M10 22.5h.1M14 22.5h.1",
    "ice": "M12 17.5v4M10 19.5h4",
    "bolt": "M13 15.5l-3 4h4l-3 4",
    "hail": "M7 20h.1M17 20h.1",
    "question": "M9.2 9a2.8 2.8 0 1 1 4 2.5c-.8.4-1.2 1-1.2 1.8v.7M12 17.5v.1"
  }/*/pf-parts*/;
  var ICONS = /*pf-icons*/{
    "clear": "sun",
    "mainly_clear": "sunlet cloudbit",
    "partly_cloudy": "sunlet cloud",
    "overcast": "cloud",
    "fog": "cloudup fog",
    "drizzle": "cloudup dots",
    "freezing_drizzle": "cloudup dots ice",
    "rain_light": "cloudup drops1",
    "rain": "cloudup drops2",
    "rain_heavy": "cloudup drops3",
    "freezing_rain": "cloudup drops1 ice",
    "snow": "cloudup flakes",
    "snow_grains": "cloudup grains",
    "rain_showers_light": "sunlet cloudup drops1",
    "rain_showers": "sunlet cloudup drops2",
    "rain_showers_heavy": "sunlet cloudup drops3",
    "snow_showers": "sunlet cloudup flakes",
    "thunderstorm": "cloudup bolt",
    "thunderstorm_hail": "cloudup bolt hail",
    "unknown": "question"
  }/*/pf-icons*/;

  var TZ = "Asia/Ho_Chi_Minh", SVG = "http://www.w3.org/2000/svg", NONE = "—";
  var T = {
    exchange_rates: "Tỷ giá ngoại tệ", weather: "Thời tiết các vùng",
    caption: "Tỷ giá mua và bán (đồng cho một đơn vị ngoại tệ)", currency: "Ngoại tệ",
    fresh: "Cập nhật lúc", stale: "Dữ liệu cập nhật lần cuối lúc",
    none: "Tạm thời chưa có dữ liệu", source: "Nguồn:"
  };
  var COLS = {
    exchange_rates: {buy_cash: "Mua tiền mặt", buy_transfer: "Mua chuyển khoản", sell: "Bán"},
    weather: {condition: "Thời tiết", temperature: "Nhiệt độ", humidity: "Độ ẩm", wind: "Gió",
      precipitation: "Lượng mưa", forecast: "Hôm nay"}
  };
  var DEFAULT_COLS = {exchange_rates: "buy_cash,buy_transfer,sell", weather: "condition,temperature,humidity"};
  var has = function (o, k) { return Object.prototype.hasOwnProperty.call(o, k); };
  var nf = {}, tf;

  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return NONE;
    if (!nf[digits]) {
      var o = {minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: "negative"};
      try { nf[digits] = new Intl.NumberFormat("vi-VN", o); } catch (e) {
        delete o.signDisplay; nf[digits] = new Intl.NumberFormat("vi-VN", o);
      }
    }
    return nf[digits].format(v);
  }

  // "14:30 24/11/2026", in Vietnam time whatever the visitor's zone.
  function when(iso) {
    var d = new Date(iso), p = {};
    if (typeof iso !== "string" || isNaN(d.getTime())) return "";
    tf = tf || new Intl.DateTimeFormat("vi-VN", {timeZone: TZ, hourCycle: "h23", hour: "2-digit",
      minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric"});
    tf.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    return p.hour + ":" + p.minute + " " + p.day + "/" + p.month + "/" + p.year;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }

  function icon(cond) {
    var names = (typeof cond === "string" && has(ICONS, cond) ? ICONS[cond] : ICONS.unknown).split(" ");
    var s = document.createElementNS(SVG, "svg"), p = document.createElementNS(SVG, "path");
    var a = {"class": "pf-icon", viewBox: "0 0 24 24", width: "24", height: "24", "aria-hidden": "true",
      focusable: "false", fill: "none", stroke: "currentColor", "stroke-width": "1.8",
      "stroke-linecap": "round", "stroke-linejoin": "round"};
    for (var k in a) s.setAttribute(k, a[k]);
    p.setAttribute("d", names.map(function (n) { return PARTS[n]; }).join(" "));
    s.appendChild(p);
    return s;
  }

  function list(v) {
    return v ? v.split(",").map(function (x) { return x.trim(); }).filter(Boolean) : [];
  }

  function pick(items, key, wanted) {
    if (!wanted.length) return items;
    var by = {};
    items.forEach(function (x) { if (x && typeof x === "object") by["k" + x[key]] = x; });
    return wanted.filter(function (w) { return has(by, "k" + w); }).map(function (w) { return by["k" + w]; });
  }

  function str(v) { return v == null ? "" : String(v); }

  function rates(sec, data, o) {
    var cols = list(o.columns || DEFAULT_COLS.exchange_rates).filter(function (c) { return has(COLS.exchange_rates, c); });
    var rows = pick(data.rates, "code", list(o.currencies).map(function (c) { return c.toUpperCase(); }));
    if (!rows.length) return false;
    var table = el("table", "pf-table"), head = el("tr"), body = el("tbody");
    add(table, el("caption", null, T.caption));
    add(head, th("col", T.currency));
    cols.forEach(function (c) { add(head, th("col", COLS.exchange_rates[c])); });
    add(table, add(el("thead"), head), body);
    rows.forEach(function (r) {
      var tr = el("tr"), h = th("row");
      add(h, el("span", "pf-code", str(r.code)), " ", el("span", "pf-name", str(r.name_vi || r.name)));
      add(tr, h);
      cols.forEach(function (c) { add(tr, el("td", null, num(r[c], 2))); });
      add(body, tr);
    });
    add(sec, table);
    return true;
  }

  function th(scope, text) {
    var h = el("th", null, text);
    h.setAttribute("scope", scope);
    return h;
  }

  function weather(sec, data, o) {
    var cols = list(o.columns || DEFAULT_COLS.weather).filter(function (c) { return has(COLS.weather, c); });
    var locs = pick(data.locations, "id", list(o.locations));
    if (!locs.length) return false;
    var ul = el("ul", "pf-list");
    locs.forEach(function (l) {
      var c = l.current && typeof l.current === "object" ? l.current : {};
      var t = Array.isArray(l.daily) && l.daily[0] && typeof l.daily[0] === "object" ? l.daily[0] : {};
      var v = {
        temperature: num(c.temperature_c, 0) + "°C", humidity: num(c.humidity_pct, 0) + "%",
        wind: num(c.wind_speed_kmh, 0) + " km/h", precipitation: num(c.precipitation_mm, 1) + " mm",
        forecast: num(t.temperature_min_c, 0) + "–" + num(t.temperature_max_c, 0) + "°C"
      };
      var li = add(el("li", "pf-loc"), el("span", "pf-place", str(l.short_name || l.name)));
      cols.forEach(function (k) {
        if (k === "condition") {
          add(li, " ", add(el("span", "pf-condition"), icon(c.condition), " ", el("span", null, str(c.condition_vi))));
        } else if (k === "temperature") {
          add(li, " ", el("span", "pf-temperature", v[k]));
        } else {
          add(li, " ", add(el("span", "pf-" + k), el("span", "pf-label", COLS.weather[k]), " " + v[k]));
        }
      });
      add(ul, li);
    });
    add(sec, ul);
    return true;
  }

  // What a snapshot can be shown as: its status, or why it cannot be read at all.
  function check(s) {
    if (!s || typeof s !== "object" || s.schema_version !== 1) return "unsupported";
    if (["fresh", "stale", "expired", "unavailable"].indexOf(s.status) < 0) return "unsupported";
    if (s.kind !== "exchange_rates" && s.kind !== "weather") return "unsupported";
    var d = s.data;
    if ((s.status === "fresh" || s.status === "stale") && !(d && typeof d === "object" &&
        Array.isArray(s.kind === "weather" ? d.locations : d.rates))) return "invalid";
    return s.status;
  }

  function render(box, snap, state) {
    var o = box.dataset, ok = state === "fresh" || state === "stale";
    var kind = snap && (snap.kind === "weather" || snap.kind === "exchange_rates") ? snap.kind :
      (o.kind || (/weather|thoi-tiet/i.test(o.portalFeeds || "") ? "weather" : "exchange_rates"));
    var status = ok || state === "expired" ? state : "unavailable";
    var sec = el("section", "pf pf-" + (kind === "weather" ? "weather" : "rates") + " pf-" + status);
    sec.setAttribute("data-status", status);
    add(sec, el("h2", "pf-title", o.title || T[kind]));
    ok = ok && (kind === "weather" ? weather : rates)(sec, snap.data, o);
    var p = el("p", "pf-status pf-status-" + (ok ? status : "none")), at = ok && when(snap.fetched_at);
    if (at) {
      var t = el("time", null, at);
      t.setAttribute("datetime", snap.fetched_at);
      add(p, T[status] + " ", t);
      var src = snap.source && snap.source.name;
      if (src) add(p, el("span", "pf-source", " · " + T.source + " " + src));
    } else {
      p.textContent = T.none;
    }
    add(sec, p);
    box.textContent = "";
    add(box, sec);
    box.setAttribute("data-pf-state", at ? state : (state === "fresh" || state === "stale" ? "none" : state));
  }

  // Reload just after next_update_at; else back off 30 s, 1, 2 ... 30 min (±20 %).
  function later(box, snap, fails) {
    var next = snap ? Date.parse(snap.next_update_at) : NaN, now = Date.now(), wait;
    if (!fails && next > now) wait = next - now + 5000 + Math.random() * 10000;
    else wait = Math.min(30000 * Math.pow(2, Math.max(fails - 1, 0)), 1800000) * (0.8 + Math.random() * 0.4);
    clearTimeout(box.pfTimer);
    box.pfTimer = setTimeout(function () { load(box, fails); }, Math.min(wait, 3600000));
  }

  function load(box, fails) {
    var src = box.getAttribute("data-src");
    if (!src) return render(box, null, "missing");
    fetch(src, {cache: "no-cache", credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw "missing";
      return r.json().catch(function () { throw "invalid"; });
    }).then(function (snap) {
      var state = check(snap);
      if (state === "unsupported" || state === "invalid") throw state;
      render(box, snap, state);
      box.pfLast = snap;
      later(box, snap, Date.parse(snap.next_update_at) > Date.now() ? 0 : fails + 1);
    }).catch(function (why) {
      var last = box.pfLast;
      // A passing failure after good data: keep it, worded as stale.
      if (last && fails < 3 && (last.status === "fresh" || last.status === "stale")) render(box, last, "stale");
      else render(box, null, typeof why === "string" ? why : "missing");
      later(box, null, fails + 1);
    });
  }

  function scan() {
    var boxes = document.querySelectorAll("[data-portal-feeds]");
    for (var i = 0; i < boxes.length; i++) {
      if (!boxes[i].pfStarted) { boxes[i].pfStarted = true; load(boxes[i], 0); }
    }
  }

  window.PortalFeeds = {scan: scan};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
