"""Every module of the package declares ``__all__`` and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import feeds


def test_all_modules_declare_existing_names() -> None:
    seen = 0
    for info in pkgutil.walk_packages(feeds.__path__, "feeds."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        if info.ispkg and not hasattr(mod, "__all__"):
            continue
        assert hasattr(mod, "__all__"), info.name
        for name in mod.__all__:
            assert hasattr(mod, name), f"{info.name}.{name}"
        seen += 1
    assert seen >= 25
