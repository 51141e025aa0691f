"""Configured place names go through the same cleaning as an upstream's (issue 18 item 2).

A right-to-left override in a configured place name makes "27°C · 77%" read "C°72 … %77"
on a page without the shipped stylesheet: a spoofed temperature from the configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from feeds.config import ConfigError
from feeds.sources.provinces import VIETNAM_PROVINCES
from feeds.text import MAX_NAME, clean_name
from tests.helpers import config_file


def weather_cfg(tmp_path: Path, name: str, short_name: str | None = None) -> str:
    short = f', short_name = "{short_name}"' if short_name is not None else ""
    return f"""
[feeds.w]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
locations = [{{ id = "ha-noi", name = "{name}", lat = 21.03, lon = 105.85{short} }}]
"""


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("H\\u00e0 N\\u1ed9i\\u202e", "Hà Nội"),  # a right-to-left override
        ("\\u2067H\\u00e0\\u200b N\\u1ed9i\\u2069", "Hà Nội"),  # an isolate, a zero-width space
        ("Hu\\u1ebf\\ufeff\\u200d", "Huế"),  # BOM, zero-width joiner
        ("  C\\u1ea7n   Th\\u01a1\\t", "Cần Thơ"),  # whitespace collapsed
        ("Tha\\u0300nh pho\\u0302\\u0301 Hue\\u0302\\u0301", "Thành phố Huế"),  # NFC
        ("<b>Hu\\u1ebf</b>", "bHuế/b"),
    ],
)
def test_configured_names_are_cleaned(tmp_path: Path, name: str, cleaned: str) -> None:
    cfg = config_file(tmp_path, weather_cfg(tmp_path, name, short_name=name))
    (loc,) = cfg.feeds["w"].locations
    assert loc.name == cleaned and loc.short_name == cleaned
    assert loc.display_name == cleaned


def test_a_huge_configured_name_is_capped(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, weather_cfg(tmp_path, "Huế " + "x" * 100_000))
    (loc,) = cfg.feeds["w"].locations
    assert len(loc.name) <= MAX_NAME and loc.name.startswith("Huế x")


def test_a_name_of_nothing_printable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name"):
        config_file(tmp_path, weather_cfg(tmp_path, "\\u202e\\u200b"))
    with pytest.raises(ConfigError, match="short_name"):
        config_file(tmp_path, weather_cfg(tmp_path, "Huế", short_name="\\u2066\\u2069"))


def test_builtin_provinces_are_clean() -> None:
    for loc in VIETNAM_PROVINCES:
        assert loc.name == clean_name(loc.name) and loc.short_name == clean_name(loc.short_name)
