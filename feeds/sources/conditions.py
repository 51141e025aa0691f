"""Weather conditions: WMO codes -> a stable condition key and a Vietnamese label.

Open-Meteo reports WMO 4677 "present weather" codes (the subset in its docs); MET Norway
reports ``symbol_code`` names, which are mapped to the closest WMO code so both sources give
the same ``condition`` keys.  The Vietnamese labels started from one public project's
translation (shared/upstream-samples/wmo-weather-codes.csv); no official table exists, so
portal-feeds owns these.  Icons should key on ``condition``, never on the label.
"""

from __future__ import annotations

__all__ = ["CONDITION_KEYS", "METNO_TO_WMO", "UNKNOWN", "WMO_CONDITIONS", "metno_to_wmo", "wmo_condition"]

UNKNOWN = ("unknown", "Không xác định")

#: WMO code -> (condition key, Vietnamese label)
WMO_CONDITIONS: dict[int, tuple[str, str]] = {
    0: ("clear", "Trời quang"),  # Clear sky
    1: ("mainly_clear", "Ít mây"),  # Mainly clear
    2: ("partly_cloudy", "Có mây"),  # Partly cloudy
    3: ("overcast", "Nhiều mây"),  # Overcast
    45: ("fog", "Sương mù"),  # Fog
    48: ("fog", "Sương mù đóng băng"),  # Depositing rime fog
    51: ("drizzle", "Mưa phùn nhẹ"),  # Drizzle: light
    53: ("drizzle", "Mưa phùn"),  # Drizzle: moderate
    55: ("drizzle", "Mưa phùn dày"),  # Drizzle: dense
    56: ("freezing_drizzle", "Mưa phùn băng giá nhẹ"),  # Freezing drizzle: light
    57: ("freezing_drizzle", "Mưa phùn băng giá"),  # Freezing drizzle: dense
    61: ("rain_light", "Mưa nhỏ"),  # Rain: slight
    63: ("rain", "Mưa vừa"),  # Rain: moderate
    65: ("rain_heavy", "Mưa to"),  # Rain: heavy
    66: ("freezing_rain", "Mưa băng giá nhẹ"),  # Freezing rain: light
    67: ("freezing_rain", "Mưa băng giá"),  # Freezing rain: heavy
    71: ("snow", "Tuyết rơi nhẹ"),  # Snow fall: slight
    73: ("snow", "Tuyết rơi vừa"),  # Snow fall: moderate
    75: ("snow", "Tuyết rơi dày"),  # Snow fall: heavy
    77: ("snow_grains", "Hạt tuyết"),  # Snow grains
    80: ("rain_showers_light", "Mưa rào nhẹ"),  # Rain showers: slight
    81: ("rain_showers", "Mưa rào"),  # Rain showers: moderate
    82: ("rain_showers_heavy", "Mưa rào rất to"),  # Rain showers: violent
    85: ("snow_showers", "Mưa tuyết nhẹ"),  # Snow showers: slight
    86: ("snow_showers", "Mưa tuyết dày"),  # Snow showers: heavy
    95: ("thunderstorm", "Dông"),  # Thunderstorm: slight or moderate
    96: ("thunderstorm_hail", "Dông kèm mưa đá nhỏ"),  # Thunderstorm with slight hail
    99: ("thunderstorm_hail", "Dông kèm mưa đá lớn"),  # Thunderstorm with heavy hail
}

CONDITION_KEYS: tuple[str, ...] = tuple(dict.fromkeys([k for k, _ in WMO_CONDITIONS.values()] + [UNKNOWN[0]]))

#: MET Norway symbol (without _day/_night/_polartwilight) -> closest WMO code.
METNO_TO_WMO: dict[str, int] = {
    "clearsky": 0,
    "fair": 1,
    "partlycloudy": 2,
    "cloudy": 3,
    "fog": 45,
    "lightrain": 61,
    "rain": 63,
    "heavyrain": 65,
    "lightrainshowers": 80,
    "rainshowers": 81,
    "heavyrainshowers": 82,
    "lightsleet": 66,
    "sleet": 67,
    "heavysleet": 67,
    "lightsleetshowers": 66,
    "sleetshowers": 67,
    "heavysleetshowers": 67,
    "lightsnow": 71,
    "snow": 73,
    "heavysnow": 75,
    "lightsnowshowers": 85,
    "snowshowers": 85,
    "heavysnowshowers": 86,
    # Every "...andthunder" symbol is a thunderstorm; WMO's 95 is the plain one.
    "lightrainandthunder": 95,
    "rainandthunder": 95,
    "heavyrainandthunder": 95,
    "lightrainshowersandthunder": 95,
    "rainshowersandthunder": 95,
    "heavyrainshowersandthunder": 95,
    "lightsleetandthunder": 95,
    "sleetandthunder": 95,
    "heavysleetandthunder": 95,
    "lightssleetshowersandthunder": 95,  # sic: MET's legend spells it with "ss"
    "lightsleetshowersandthunder": 95,
    "sleetshowersandthunder": 95,
    "heavysleetshowersandthunder": 95,
    "lightsnowandthunder": 95,
    "snowandthunder": 95,
    "heavysnowandthunder": 95,
    "lightssnowshowersandthunder": 95,  # sic, as above
    "lightsnowshowersandthunder": 95,
    "snowshowersandthunder": 95,
    "heavysnowshowersandthunder": 95,
}


def wmo_condition(code: int | None) -> tuple[str, str]:
    """(condition key, Vietnamese label) of a WMO code; unknown codes -> ("unknown", ...)."""
    if code is None:
        return UNKNOWN
    return WMO_CONDITIONS.get(code, UNKNOWN)


def metno_to_wmo(symbol: str | None) -> int | None:
    """The closest WMO code of a MET Norway ``symbol_code`` (``rainshowers_day`` -> 81)."""
    if not symbol:
        return None
    base = symbol
    for suffix in ("_day", "_night", "_polartwilight"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return METNO_TO_WMO.get(base)
