"""Issue 8 §5: one protocol for every source, found through one registry; no import cycle
between the configuration and the daemon."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from feeds import config
from feeds.sources import registry

SOURCES = [k for k in registry.kinds() if k != registry.PEER]


@pytest.mark.parametrize("kind", SOURCES)
def test_every_source_implements_the_protocol(kind: str) -> None:
    mod = registry.source(kind)
    assert kind == mod.KIND
    assert mod.DATA_KIND in config.DATA_KINDS
    assert isinstance(mod.SOURCE_NAME, str) and mod.SOURCE_NAME
    assert mod.DEFAULT_URL.startswith("https://")
    assert mod.MIN_INTERVAL >= 0 and isinstance(mod.HONOURS_EXPIRES, bool)
    for fn in ("requests", "read", "check", "stale_after"):
        assert callable(getattr(mod, fn)), fn
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert mod.stale_after(now) > now
    specs = mod.requests(mod.DEFAULT_URL, [], user_agent="ua", batch_size=10)
    assert all(spec.url == mod.DEFAULT_URL for spec, _ in specs)


def test_the_configuration_takes_kinds_and_defaults_from_the_registry() -> None:
    assert registry.kinds() == config.KINDS
    for kind in SOURCES:
        mod = registry.source(kind)
        assert config.DATA_KIND[kind] == mod.DATA_KIND
        assert config.DEFAULT_URLS[kind] == mod.DEFAULT_URL
        assert config.DEFAULT_MIN_INTERVAL[kind] == mod.MIN_INTERVAL
    assert config.DEFAULT_MIN_INTERVAL["vietcombank"] == 300.0
    assert registry.source("met-no").HONOURS_EXPIRES and not registry.source("open-meteo").HONOURS_EXPIRES
    with pytest.raises(ValueError):
        registry.source("second-bank")
    assert registry.by_name("MET Norway") is registry.source("met-no")
    assert registry.by_name("nobody") is None


def test_config_does_not_import_the_daemon() -> None:
    code = (
        "import sys, feeds.config as c\n"
        "c.parse_config({'feeds': {'a': {'kind': 'vietcombank', 'at': '*/15 7-18 * * 1-6'}}}, __import__('pathlib').Path('.'))\n"
        "print('feeds.daemon' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_coordinator_orchestrates_without_http_or_source_names() -> None:
    import inspect

    import feeds.coordinator as c

    text = inspect.getsource(c)
    assert "from feeds.transport" not in text  # requests go through feeds.pipeline
    for kind in SOURCES:  # no if-chain on source kinds: the registry finds them
        assert f'"{kind}"' not in text
