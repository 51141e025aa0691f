"""A file shipped inside the package, read by the loader that loaded it (a folder or a zip
archive alike), as ``pkgutil.get_data`` does.

``importlib.resources`` would import its readers and ``zipfile`` (~1.5 ms of a start before
READY=1, issue 20) for the two files a start reads: the provinces table and the widget's
Vietnamese texts.
"""

from __future__ import annotations

import os
from typing import Protocol, cast

import feeds

__all__ = ["read"]


class _DataLoader(Protocol):
    def get_data(self, path: str) -> bytes: ...


def read(relative: str) -> bytes:
    """The bytes of ``relative`` (``/``-separated, under the ``feeds`` package)."""
    spec = feeds.__spec__
    assert spec is not None and spec.loader is not None and feeds.__file__ is not None
    loader = cast(_DataLoader, spec.loader)  # every file or zip loader has get_data
    return loader.get_data(os.path.join(os.path.dirname(feeds.__file__), *relative.split("/")))
