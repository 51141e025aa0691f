/*! portal-feeds widget (MIT): docs/widgets.md */
// ASCII once built (widget/build.py: \u escapes): it reads the same on a page in any encoding.
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
  // Every word both forms print; feeds/render.py reads this table too.
  var T = /*pf-texts*/{
    "title_exchange_rates": "Tỷ giá ngoại tệ",
    "title_weather": "Thời tiết các vùng",
    "caption_rates": "Tỷ giá mua và bán (đồng cho một đơn vị ngoại tệ)",
    "currency": "Ngoại tệ",
    "asof_rates": "Tỷ giá",
    "at": "lúc",
    "fresh": "Cập nhật lúc",
    "stale": "Cập nhật lần cuối lúc",
    "none": "Tạm thời chưa có dữ liệu",
    "source": "Nguồn:",
    "badge_stale": "Dữ liệu cũ",
    "badge_frozen": "Nguồn chưa cập nhật",
    "badge_overdue": "Quá hạn cập nhật",
    "badge_expired": "Hết hiệu lực",
    "expired": "Số liệu đã quá cũ nên không hiển thị.",
    "ago_updated": "cập nhật",
    "ago_data": "số liệu từ",
    "just_now": "vừa xong",
    "minutes": "phút trước",
    "hours": "giờ trước",
    "days": "ngày trước",
    "years": "năm trước",
    "up": "tăng",
    "down": "giảm",
    "same": "không đổi",
    "dong": "đồng"
  }/*/pf-texts*/;
  var COLS = /*pf-columns*/{
    "exchange_rates": {"buy_cash": "Mua tiền mặt", "buy_transfer": "Mua chuyển khoản", "sell": "Bán"},
    "weather": {"condition": "Thời tiết", "temperature": "Nhiệt độ", "humidity": "Độ ẩm", "wind": "Gió",
      "precipitation": "Lượng mưa", "forecast": "Hôm nay"}
  }/*/pf-columns*/;
  var DEFAULT_COLS = {exchange_rates: "buy_cash,buy_transfer,sell", weather: "condition,temperature,humidity"};
  var TZ = "Asia/Ho_Chi_Minh", SVG = "http://www.w3.org/2000/svg", NONE = "—", MIN = 60000, HOUR = 3600000;
  // The times a box is judged by; a server-rendered fragment carries them as data-* attributes.
  var TIMES = ["generated_at", "next_update_at", "expires_at", "fetched_at", "as_of", "upstream_stale_since"];
  var SHOWN = {fresh: 1, stale: 1, frozen: 1, overdue: 1};
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

  function ms(iso) { return typeof iso === "string" ? Date.parse(iso) : NaN; }

  // "14:30 24/11/2026", in Vietnam time whatever the visitor's zone.
  function when(iso) {
    var d = new Date(ms(iso)), p = {};
    if (isNaN(d.getTime())) return "";
    tf = tf || new Intl.DateTimeFormat("vi-VN", {timeZone: TZ, hourCycle: "h23", hour: "2-digit",
      minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric"});
    tf.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    return p.hour + ":" + p.minute + " " + p.day + "/" + p.month + "/" + p.year;
  }

  // "2 ngày trước": the rule of feeds/render.py ago().
  function ago(s) {
    if (!(s >= 0)) return "";
    var m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    return m < 1 ? T.just_now : m < 60 ? m + " " + T.minutes : h < 24 ? h + " " + T.hours :
      d < 730 ? d + " " + T.days : Math.floor(d / 365) + " " + T.years;
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
      if (c) parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }

  function time(iso) {
    var t = el("time", null, when(iso));
    t.setAttribute("datetime", iso);
    return t;
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
    items = (Array.isArray(items) ? items : []).filter(function (x) { return x && typeof x === "object"; });
    if (!wanted.length) return items;
    var by = {};
    items.forEach(function (x) { by["k" + x[key]] = x; });
    return wanted.filter(function (w) { return has(by, "k" + w); }).map(function (w) { return by["k" + w]; });
  }

  function str(v) { return typeof v === "string" || typeof v === "number" ? String(v) : ""; }

  function th(scope, text) {
    var h = el("th", null, text);
    h.setAttribute("scope", scope);
    return h;
  }

  function rates(data, o) {
    var cols = list(o.columns || DEFAULT_COLS.exchange_rates).filter(function (c) { return has(COLS.exchange_rates, c); });
    var rows = pick(data.rates, "code", list(o.currencies).map(function (c) { return c.toUpperCase(); }));
    if (!rows.length) return null;
    var table = el("table", "pf-table pf-cols-" + cols.length), head = el("tr"), body = el("tbody");
    add(table, el("caption", null, T.caption_rates));
    add(head, th("col", T.currency));
    cols.forEach(function (c) { add(head, th("col", COLS.exchange_rates[c])); });
    add(table, add(el("thead"), head), body);
    rows.forEach(function (r) {
      var tr = el("tr"), h = th("row");
      add(h, el("span", "pf-code", str(r.code)), " ", add(el("span", "pf-name"), el("bdi", null, str(r.name_vi) || str(r.name))));
      add(tr, h);
      cols.forEach(function (c) {
        add(tr, add(el("td", null, num(r[c], 2)), !/^(false|off)$/.test(o.change) && r.change && delta(r.change[c])));
      });
      add(body, tr);
    });
    return table;
  }

  // The day's change beside a rate: "▲ 20" shown, "tăng 20 đồng" read (feeds/render.py change_mark).
  function delta(v) {
    if (typeof v !== "number" || !isFinite(v)) return null;
    var a = num(Math.abs(v), Math.abs(v) % 1 ? 2 : 0), k = v > 0 ? "up" : v < 0 ? "down" : "same";
    var shown = el("span", null, k === "same" ? "=" : (v > 0 ? "▲ " : "▼ ") + a);
    shown.setAttribute("aria-hidden", "true");
    return add(el("span", "pf-change pf-" + k), shown, el("span", "pf-sr", k === "same" ? T.same : T[k] + " " + a + " " + T.dong));
  }

  // data-history="30": a sparkline of each currency's selling rate from <feed>.history.json.
  function spark(box, table) {
    var n = +box.dataset.history;
    if (n > 1 && table) fetch(box.getAttribute("data-src").replace(/\.json\b/, ".history.json"), {cache: "no-cache", credentials: "same-origin"}).then(function (r) {
      return r.json();
    }).then(function (h) {
      [].forEach.call(table.querySelectorAll("tbody th"), function (th) {
        var c = h.currencies[th.firstChild.textContent], v = (c && Array.isArray(c.sell) ? c.sell : []).slice(-n);
        var ok = v.filter(function (x) { return typeof x === "number"; }), lo = Math.min.apply(null, ok), hi = Math.max.apply(null, ok);
        var s = document.createElementNS(SVG, "svg"), p = document.createElementNS(SVG, "polyline"), pts = [];
        v.forEach(function (x, i) { if (typeof x === "number") pts.push(i * 60 / (v.length - 1) + "," + (hi > lo ? 14 - (x - lo) * 12 / (hi - lo) : 8)); });
        if (pts.length < 2) return;
        var a = {"class": "pf-spark", viewBox: "0 0 60 16", width: "60", height: "16", "aria-hidden": "true", focusable: "false"};
        for (var k in a) s.setAttribute(k, a[k]);
        p.setAttribute("points", pts.join(" "));
        th.appendChild(add(s, p));
      });
    }).catch(function () {});
  }

  function weather(data, o) {
    var cols = list(o.columns || DEFAULT_COLS.weather).filter(function (c) { return has(COLS.weather, c); });
    var locs = pick(data.locations, "id", list(o.locations));
    if (!locs.length) return null;
    var ul = el("ul", "pf-list");
    locs.forEach(function (l) {
      var c = l.current && typeof l.current === "object" ? l.current : {};
      var t = Array.isArray(l.daily) && l.daily[0] && typeof l.daily[0] === "object" ? l.daily[0] : {};
      var v = {
        temperature: num(c.temperature_c, 0) + "°C", humidity: num(c.humidity_pct, 0) + "%",
        wind: num(c.wind_speed_kmh, 0) + " km/h", precipitation: num(c.precipitation_mm, 1) + " mm",
        forecast: num(t.temperature_min_c, 0) + "–" + num(t.temperature_max_c, 0) + "°C"
      };
      var li = add(el("li", "pf-loc"), add(el("span", "pf-place"), el("bdi", null, str(l.short_name) || str(l.name))));
      cols.forEach(function (k) {
        if (k === "condition") {
          add(li, " ", add(el("span", "pf-condition"), icon(c.condition), " ", add(el("span"), el("bdi", null, str(c.condition_vi)))));
        } else if (k === "temperature") {
          add(li, " ", el("span", "pf-temperature", v[k]));
        } else {
          add(li, " ", add(el("span", "pf-" + k), el("span", "pf-label", COLS.weather[k]), " " + v[k]));
        }
      });
      add(ul, li);
    });
    return ul;
  }

  // Whether a snapshot can be read at all: its status, or why not.
  function check(s) {
    if (!s || typeof s !== "object" || s.schema_version !== 1) return "unsupported";
    if (["fresh", "stale", "expired", "unavailable"].indexOf(s.status) < 0) return "unsupported";
    if (s.kind !== "exchange_rates" && s.kind !== "weather") return "unsupported";
    var d = s.data;
    if ((s.status === "fresh" || s.status === "stale") && !(d && typeof d === "object" &&
        Array.isArray(s.kind === "weather" ? d.locations : d.rates))) return "invalid";
    return s.status;
  }

  // The state a citizen must see: the file's status, judged again by the clock. A file not
  // rewritten in time (the daemon stopped) is overdue; past expires_at it is expired.
  function judge(s, now) {
    var st = s.status, gen = ms(s.generated_at), due = ms(s.next_update_at);
    if (st !== "fresh" && st !== "stale" && st !== "expired") return st;
    if (st === "expired" || now > ms(s.expires_at)) return "expired";
    if (s.upstream_stale_since) return "frozen";
    if (isNaN(gen)) return "overdue";
    if (!(due >= gen)) due = gen + HOUR;
    due = Math.min(due, gen + 96 * HOUR);
    return now > due + Math.min(Math.max(due - gen, 10 * MIN), HOUR) ? "overdue" : st;
  }

  // The labelled badge of a state that is not current, with the age in words.
  function notice(st, s, now) {
    if (st !== "expired" && !(SHOWN[st] && st !== "fresh")) return null;
    var frozen = st === "frozen", age = ago((now - ms(frozen ? s.as_of : s.fetched_at)) / 1000);
    var p = add(el("p", "pf-notice"), el("strong", "pf-badge", T["badge_" + st]));
    if (age) add(p, " ", el("span", "pf-ago", T[frozen ? "ago_data" : "ago_updated"] + " " + age));
    if (st === "expired") add(p, " ", el("span", "pf-note", T.expired));
    return p;
  }

  // Page attributes first, then the feed's [widget] options carried by the snapshot.
  function options(box, snap) {
    var w = snap && snap.widget && typeof snap.widget === "object" ? snap.widget : {}, d = box.dataset, o = {};
    ["title", "heading", "currencies", "locations", "columns", "change"].forEach(function (k) {
      var v = d[k] != null ? d[k] : w[k];
      o[k] = Array.isArray(v) ? v.join(",") : v == null ? "" : String(v);
    });
    return o;
  }

  // The box in one state: the same markup as feeds/templates/ (fresh, stale, frozen, overdue,
  // expired, none = nothing selected is in the data; else unavailable).
  function render(box, snap, state, now) {
    var o = options(box, snap), d = box.dataset, src = snap && snap.source && snap.source.name;
    var kind = snap && (snap.kind === "weather" || snap.kind === "exchange_rates") ? snap.kind :
      d.kind === "weather" || /weather|thoi-tiet/i.test(d.portalFeeds || "") ? "weather" : "exchange_rates";
    var body = SHOWN[state] ? (kind === "weather" ? weather : rates)(snap.data, o) : null;
    if (SHOWN[state] && !body) state = "none";
    var cls = SHOWN[state] || state === "expired" || state === "none" ? state : "unavailable";
    var sec = el("section", "pf pf-" + (kind === "weather" ? "weather" : "rates") + " pf-" + cls);
    if (snap) {
      sec.setAttribute("data-feed", str(snap.feed));
      sec.setAttribute("data-status", str(snap.status));
      TIMES.forEach(function (k) { if (typeof snap[k] === "string") sec.setAttribute("data-" + k.replace(/_/g, "-"), snap[k]); });
    }
    sec.setAttribute("data-pf-state", cls);
    add(sec, el(/^[234]$/.test(o.heading) ? "h" + o.heading : "h2", "pf-title", o.title || T["title_" + kind]));
    add(sec, notice(state, snap || {}, now));
    if (body && kind === "exchange_rates" && when(snap.as_of)) {
      add(sec, add(el("p", "pf-asof"), T.asof_rates + " " + (typeof src === "string" && src ? src + " " : "") + T.at + " ", time(snap.as_of)));
    }
    add(sec, body);
    var p = el("p", "pf-status pf-status-" + (state === "fresh" ? "fresh" : "stale"));
    if ((body || state === "expired") && when(snap.fetched_at)) {
      add(p, T[state === "fresh" ? "fresh" : "stale"] + " ", time(snap.fetched_at));
      if (typeof src === "string" && src) add(p, el("span", "pf-source", " · " + T.source + " " + src));
    } else {
      p.className = "pf-status pf-status-none";
      p.textContent = T.none;
    }
    add(sec, p);
    put(box, sec);
    if (kind === "exchange_rates") spark(box, box.querySelector(".pf-table"));
    box.setAttribute("data-pf-state", cls === "unavailable" && state !== "unavailable" ? state : cls);
  }

  // A rendering equal to what the box already shows (the server's fragment) is not applied:
  // adopting a current fragment moves nothing.
  function sig(n) {
    if (n.nodeType === 3) return n.nodeValue.replace(/\s+/g, " ").trim();
    if (n.nodeType !== 1) return "";
    var a = [].map.call(n.attributes, function (x) { return x.name + "=" + x.value; }).sort(), s = "<" + n.tagName + " " + a;
    for (var c = n.firstChild; c; c = c.nextSibling) { var t = sig(c); if (t) s += "|" + t; }
    return s + ">";
  }

  function put(box, sec) {
    var old = box.querySelector(".pf");
    if (old && sig(old) === sig(sec)) return;
    box.textContent = "";
    add(box, sec);
  }

  // The snapshot cannot be read: judge the server's fragment by its own times, in place.
  function mark(box, now) {
    var sec = box.querySelector(".pf[data-status]"), s = {status: sec && sec.getAttribute("data-status")}, st, n, old;
    if (!sec) return false;
    TIMES.forEach(function (k) { s[k] = sec.getAttribute("data-" + k.replace(/_/g, "-")); });
    st = judge(s, now);
    if (SHOWN[st] || st === "expired") {
      if (st !== sec.getAttribute("data-pf-state")) {
        if ((old = sec.querySelector(".pf-notice"))) sec.removeChild(old);
        if ((n = notice(st, s, now))) sec.insertBefore(n, sec.firstElementChild.nextSibling);
        if (st === "expired") [].forEach.call(sec.querySelectorAll(".pf-table,.pf-list,.pf-asof"), function (e) { sec.removeChild(e); });
        sec.className = sec.className.replace(/ pf-[a-z]+$/, " pf-" + st);
        sec.setAttribute("data-pf-state", st);
      }
    }
    box.setAttribute("data-pf-state", sec.getAttribute("data-pf-state"));
    return true;
  }

  // The server's clock (the answer's Date), so a visitor's wrong clock cannot make data look current.
  function perf() { return window.performance ? performance.now() : Date.now(); }
  function now(box) { var c = box.pfClock; return c ? c[0] + perf() - c[1] : Date.now(); }

  // Reload just after next_update_at; else back off 30 s, 1, 2 ... 30 min (+-20 %).
  function later(box, snap, fails) {
    var next = snap ? ms(snap.next_update_at) : NaN, t = Date.now(), wait;
    if (!fails && next > t) wait = next - t + 5000 + Math.random() * 10000;
    else wait = Math.min(30000 * Math.pow(2, Math.max(fails - 1, 0)), 1800000) * (0.8 + Math.random() * 0.4);
    clearTimeout(box.pfTimer);
    box.pfTimer = setTimeout(function () { load(box, fails); }, Math.min(wait, HOUR));
  }

  function load(box, fails) {
    var src = box.getAttribute("data-src");
    if (!src) return mark(box, Date.now()) || render(box, null, "missing");
    fetch(src, {cache: "no-cache", credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw "missing";
      var d = Date.parse(r.headers.get("Date"));
      box.pfClock = isNaN(d) ? null : [d + 1000 * (parseInt(r.headers.get("Age"), 10) || 0), perf()];
      return r.json().catch(function () { throw "invalid"; });
    }).then(function (snap) {
      var state = check(snap);
      if (state === "unsupported" || state === "invalid") throw state;
      box.pfLast = snap;
      render(box, snap, judge(snap, now(box)), now(box));
      later(box, snap, ms(snap.next_update_at) > Date.now() ? 0 : fails + 1);
    }).catch(function (why) {
      var last = box.pfLast, t = now(box);
      // Data shown before stays, judged by its own times; else the server's fragment is judged.
      if (last) render(box, last, judge(last, t), t);
      else if (!mark(box, t)) render(box, null, typeof why === "string" ? why : "missing");
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
