/*! portal-feeds widget (MIT). <div data-portal-feeds="exchange-rates" data-src="/feeds/exchange-rates.json"></div>; docs/widgets.md. ASCII only (\u escapes): works on a page in any encoding. */
(function () {
"use strict";
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
var T = /*pf-texts*/{
"title_exchange_rates": "T\u1ef7 gi\u00e1 ngo\u1ea1i t\u1ec7",
"title_weather": "Th\u1eddi ti\u1ebft c\u00e1c v\u00f9ng",
"caption_rates": "T\u1ef7 gi\u00e1 mua v\u00e0 b\u00e1n (\u0111\u1ed3ng cho m\u1ed9t \u0111\u01a1n v\u1ecb ngo\u1ea1i t\u1ec7)",
"currency": "Ngo\u1ea1i t\u1ec7",
"asof_rates": "T\u1ef7 gi\u00e1",
"at": "l\u00fac",
"fresh": "C\u1eadp nh\u1eadt l\u00fac",
"stale": "C\u1eadp nh\u1eadt l\u1ea7n cu\u1ed1i l\u00fac",
"none": "T\u1ea1m th\u1eddi ch\u01b0a c\u00f3 d\u1eef li\u1ec7u",
"source": "Ngu\u1ed3n:",
"badge_stale": "D\u1eef li\u1ec7u c\u0169",
"badge_frozen": "Ngu\u1ed3n ch\u01b0a c\u1eadp nh\u1eadt",
"badge_overdue": "Qu\u00e1 h\u1ea1n c\u1eadp nh\u1eadt",
"badge_expired": "H\u1ebft hi\u1ec7u l\u1ef1c",
"expired": "S\u1ed1 li\u1ec7u \u0111\u00e3 qu\u00e1 c\u0169 n\u00ean kh\u00f4ng hi\u1ec3n th\u1ecb.",
"ago_updated": "c\u1eadp nh\u1eadt",
"ago_data": "s\u1ed1 li\u1ec7u t\u1eeb",
"just_now": "v\u1eeba xong",
"minutes": "ph\u00fat tr\u01b0\u1edbc",
"hours": "gi\u1edd tr\u01b0\u1edbc",
"days": "ng\u00e0y tr\u01b0\u1edbc",
"months": "th\u00e1ng tr\u01b0\u1edbc",
"years": "n\u0103m tr\u01b0\u1edbc"
}/*/pf-texts*/;
var COLS = /*pf-columns*/{
"exchange_rates": {"buy_cash": "Mua ti\u1ec1n m\u1eb7t", "buy_transfer": "Mua chuy\u1ec3n kho\u1ea3n", "sell": "B\u00e1n"},
"weather": {"condition": "Th\u1eddi ti\u1ebft", "temperature": "Nhi\u1ec7t \u0111\u1ed9", "humidity": "\u0110\u1ed9 \u1ea9m", "wind": "Gi\u00f3",
"precipitation": "L\u01b0\u1ee3ng m\u01b0a", "forecast": "H\u00f4m nay"}
}/*/pf-columns*/;
var DEFAULT_COLS = {exchange_rates: "buy_cash,buy_transfer,sell", weather: "condition,temperature,humidity"};
var TZ = "Asia/Ho_Chi_Minh", SVG = "http://www.w3.org/2000/svg", NONE = "\u2014", MIN = 60000, HOUR = 3600000;
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
function when(iso) {
var d = new Date(ms(iso)), p = {};
if (isNaN(d.getTime())) return "";
tf = tf || new Intl.DateTimeFormat("vi-VN", {timeZone: TZ, hourCycle: "h23", hour: "2-digit",
minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric"});
tf.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
return p.hour + ":" + p.minute + " " + p.day + "/" + p.month + "/" + p.year;
}
function ago(s) {
if (!(s >= 0)) return "";
var m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
return m < 1 ? T.just_now : m < 60 ? m + " " + T.minutes : h < 24 ? h + " " + T.hours :
d < 60 ? d + " " + T.days : d < 730 ? Math.floor(d / 30) + " " + T.months : Math.floor(d / 365) + " " + T.years;
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
cols.forEach(function (c) { add(tr, el("td", null, num(r[c], 2))); });
add(body, tr);
});
return table;
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
temperature: num(c.temperature_c, 0) + "\u00b0C", humidity: num(c.humidity_pct, 0) + "%",
wind: num(c.wind_speed_kmh, 0) + " km/h", precipitation: num(c.precipitation_mm, 1) + " mm",
forecast: num(t.temperature_min_c, 0) + "\u2013" + num(t.temperature_max_c, 0) + "\u00b0C"
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
function check(s) {
if (!s || typeof s !== "object" || s.schema_version !== 1) return "unsupported";
if (["fresh", "stale", "expired", "unavailable"].indexOf(s.status) < 0) return "unsupported";
if (s.kind !== "exchange_rates" && s.kind !== "weather") return "unsupported";
var d = s.data;
if ((s.status === "fresh" || s.status === "stale") && !(d && typeof d === "object" &&
Array.isArray(s.kind === "weather" ? d.locations : d.rates))) return "invalid";
return s.status;
}
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
function notice(st, s, now) {
if (st !== "expired" && !(SHOWN[st] && st !== "fresh")) return null;
var frozen = st === "frozen", age = ago((now - ms(frozen ? s.as_of : s.fetched_at)) / 1000);
var p = add(el("p", "pf-notice"), el("strong", "pf-badge", T["badge_" + st]));
if (age) add(p, " ", el("span", "pf-ago", T[frozen ? "ago_data" : "ago_updated"] + " " + age));
if (st === "expired") add(p, " ", el("span", "pf-note", T.expired));
return p;
}
function options(box, snap) {
var w = snap && snap.widget && typeof snap.widget === "object" ? snap.widget : {}, d = box.dataset, o = {};
["title", "heading", "currencies", "locations", "columns"].forEach(function (k) {
var v = d[k] != null ? d[k] : w[k];
o[k] = Array.isArray(v) ? v.join(",") : v == null ? "" : String(v);
});
return o;
}
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
if (typeof src === "string" && src) add(p, el("span", "pf-source", " \u00b7 " + T.source + " " + src));
} else {
p.className = "pf-status pf-status-none";
p.textContent = T.none;
}
add(sec, p);
put(box, sec);
box.setAttribute("data-pf-state", cls === "unavailable" && state !== "unavailable" ? state : cls);
}
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
function perf() { return window.performance ? performance.now() : Date.now(); }
function now(box) { var c = box.pfClock; return c ? c[0] + perf() - c[1] : Date.now(); }
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
