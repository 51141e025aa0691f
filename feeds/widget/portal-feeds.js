/*! portal-feeds widget: drop-in Vietnamese exchange-rate and weather boxes. MIT.
 * <script src="/widget/portal-feeds.js" defer></script>
 * <div data-portal-feeds="exchange-rates" data-src="/feeds/exchange-rates.json"></div>
 * Options and theming: docs/widgets.md. */
(function () {
  "use strict";
  // Icon parts (24x24, stroked) and the parts of each `condition` key. The server-side
  // fragments read these two tables from this file, so both forms draw the same icons.
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
})();
