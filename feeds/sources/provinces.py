"""Vietnam's 34 provincial-level units (from 2025-07-01) with their centres' coordinates.

Loaded from the packaged ``feeds/data/vn-provinces-2025.csv`` (a copy of
shared/upstream-samples/vn-provinces-2025.csv).  Provenance: names and mergers from
vietaustralia.com and vietnamnews.vn (2025-07-04); administrative centres from the
Resolution 60-NQ/TW list, verified for the 11 unchanged units and the first 7 merged ones
only.  **The coordinates are 2-decimal approximations of each centre, not verified against
a public source** (``coords_verified=no`` in the file).  The ``short_name`` column (display
names for page authors: "Hà Nội", "TP. Hồ Chí Minh") is portal-feeds' own addition — close enough for a weather grid
(Open-Meteo snaps to ~0.1°), not for anything else.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata

from feeds import pkgdata
from feeds.models import Location
from feeds.text import clean_name

__all__ = ["VIETNAM_PROVINCES", "slug"]


def slug(name: str) -> str:
    """ASCII id of a Vietnamese name: ``Thành phố Hồ Chí Minh`` -> ``ho-chi-minh``."""
    name = re.sub(r"^Thành phố\s+", "", name.strip())
    name = name.replace("Đ", "D").replace("đ", "d")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _data(name: str) -> bytes:
    """A file of the package's ``data`` folder (``feeds.pkgdata``: no ``importlib.resources``)."""
    return pkgdata.read(f"data/{name}")


def _load() -> tuple[Location, ...]:
    text = _data("vn-provinces-2025.csv").decode("utf-8")
    return tuple(
        Location(
            id=slug(row["name_vi"]),
            name=clean_name(row["name_vi"]),  # as every configured place name (feeds.config)
            short_name=clean_name(row["short_name"]) or None,
            lat=float(row["lat_approx"]),
            lon=float(row["lon_approx"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    )


#: The 34 units in the file's order (the two big cities and the unchanged units first).
VIETNAM_PROVINCES: tuple[Location, ...] = _load()
