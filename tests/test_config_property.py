"""Property (issue 10 §1): every configuration either is refused with exit 78 naming a key, or
passes ``check-config`` and then runs -- one attempt at each feed publishes a snapshot.

Configurations are the shipped sample with random mutations over its TOML structure: values
replaced by other types, odd strings, huge or non-finite numbers, keys added or removed,
feeds added, tables nested.  Written as TOML text, so the parser's own limits are in scope.
"""

from __future__ import annotations

import asyncio
import math
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from feeds.cli import main
from feeds.clock import FakeClock
from feeds.config import ConfigError, default_config_text, load_config
from feeds.coordinator import Coordinator, source_module
from feeds.daemon import build_trigger
from feeds.folders import require_folders
from feeds.resolver import NameserverResolver
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from feeds.transport import build_client

SAMPLE: dict[str, Any] = tomllib.loads(default_config_text())
# Safe places for paths: inside the example's folder, or things that must be refused.
PATHS = ["cache", "../cache", "snaps", "a/b/c", "/dev/null", "afile", "x\u0000y", "", " ", "afile/sub"]


def toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\u{o:04x}" if o < 0xD800 else "?")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict[str, Any]) -> str:
    return "".join(f"{toml_str(k)} = {toml_value(v)}\n" for k, v in doc.items())


durations = st.one_of(
    st.sampled_from(["15m", "1s", "0", "0s", "90s", "48h", "7d", "365d", "366d", "1000000000d", "１５m",
                     "nan", "inf", "1.5h", " 5m ", "5 m", "-5m", "5ms", "0.0001s", "banana", ""]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
)
strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["Cổng thông tin điện tử Đà Nẵng", "a\r\nb", "http://[::1:8766/x", "http://127.0.0.1:99999/x",
                     "http://127.0.0.1:abc/x", "http://☃.net/", "http://127.0.0.1:8/x", "https://hà-nội.vn/",
                     "1.1.1.1:abc", "1.1.1.1", "[::1]:53", "*/15 7-18 * * 1-6", "61 * * * *", "* * * * 8",
                     "vietnam-provinces", "vietcombank", "open-meteo", "met-no", "2MB", "0", "1GiB", "2GiB"]),
)
plausible = st.sampled_from(["15m", "5m", "30s", "2h", "2MB", 3, 60, 0.5, True, "http://127.0.0.1:8/z",
                             "portal-feeds/1.0 (webmaster@example.gov.vn)", ["1.1.1.1"], "vietnam-provinces"])
scalars = st.one_of(plausible, durations, strings, st.booleans(),
                    st.integers(min_value=-(10**4000), max_value=10**4000))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
FEED_KEYS = ["kind", "url", "every", "at", "max_stale", "timeout", "deadline", "min_interval", "max_change",
             "locations", "fallback", "batch_size"]
SECTION_KEYS = {
    "http": ["user_agent", "max_body", "breaker_failures", "breaker_cooldown", "proxy", "retry_after_max",
             "follow_redirects_to"],
    "dns": ["nameservers", "timeout", "stale_max"],
    "monitoring": ["metrics_file", "check_stale_warning", "check_missed_intervals"],
}
feed_names = st.one_of(st.sampled_from(["exchange-rates", "weather", "rates\n", "x" * 251, "a.b", "-x", "tỷ-giá"]),
                       st.text(max_size=12))


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(SAMPLE)
    doc["paths"] = {"cache_dir": "../cache", "snapshot_dir": "../snapshots"}
    if draw(st.integers(0, 3)) == 0:
        doc["paths"][draw(st.sampled_from(sorted(doc["paths"])))] = draw(st.sampled_from(PATHS))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["http", "dns", "monitoring", "feed", "feed", "feed", "newfeed", "newfeed", "top"]))
        if where in SECTION_KEYS:
            key = draw(st.sampled_from(SECTION_KEYS[where]))
            if key == "metrics_file":
                doc[where][key] = draw(st.sampled_from(PATHS)) + "/m.prom"
            elif draw(st.booleans()) and key in doc[where]:
                del doc[where][key]
            else:
                doc[where][key] = draw(st.one_of(plausible, values))
        elif where == "feed":
            name = draw(st.sampled_from(sorted(doc["feeds"]))) if doc["feeds"] else "exchange-rates"
            table = doc["feeds"].setdefault(name, {"kind": "vietcombank"})
            if not isinstance(table, dict):
                continue
            key = draw(st.sampled_from(FEED_KEYS))
            if draw(st.integers(0, 3)) == 0 and key in table:
                del table[key]
            else:
                table[key] = draw(st.one_of(plausible, values))
        elif where == "newfeed":
            table = {"kind": draw(st.sampled_from(["vietcombank", "open-meteo", "met-no", "ftp"]))}
            table["url"] = "http://127.0.0.1:8/x"
            if table["kind"] != "vietcombank":
                table["locations"] = [{"id": "hn", "name": "Hà Nội", "lat": 21.0, "lon": 105.8}]
            doc["feeds"][draw(feed_names)] = table
        else:
            doc[draw(st.text(max_size=8))] = draw(values)
    # Never reach the internet: every URL the run could use points at a closed loopback port.
    for t in doc["feeds"].values():
        if isinstance(t, dict) and "url" not in t:
            t["url"] = "http://127.0.0.1:8/x"
        if isinstance(t, dict) and t.get("fallback") == SAMPLE["feeds"]["weather"]["fallback"]:
            t["fallback"] = [{"kind": "met-no", "url": "http://127.0.0.1:8/y"}]
    return doc


def _run_once(path: Path) -> None:
    """What ``run``/``fetch`` do with a configuration, against an upstream answering 503."""
    config = load_config(path)
    require_folders(config)
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for feed in config.feeds.values():
        build_trigger(feed).get_next_fire_time(None, now)
        for src in feed.sources:
            mod = source_module(src.kind)
            specs = ([mod.build_request(src.url)] if src.data_kind == "exchange_rates" else
                     [s for s, _ in mod.build_requests(src.url, feed.locations, user_agent=config.user_agent,
                                                      batch_size=feed.batch_size)])
            for spec in specs:
                httpx.Request("GET", spec.url, params=list(spec.params), headers={"User-Agent": config.user_agent})
    if config.dns.nameservers:
        NameserverResolver(config.dns.nameservers, timeout=config.dns.timeout)
    build_client(user_agent=config.user_agent, resolver=None, proxy=config.proxy)

    async def attempt() -> None:
        clock = FakeClock(now)
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(503)), headers={"User-Agent": config.user_agent}
        )
        coord = Coordinator(config, MemoryStore(), client, clock, retry=RetryPolicy(clock))
        async with client:
            for feed in config.feeds.values():
                r = await coord.refresh(feed)
                assert r.status == "unavailable"

    asyncio.run(attempt())
    for feed in config.feeds:
        assert (config.snapshot_dir / f"{feed}.json").is_file()


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(doc=configs())
def test_every_configuration_is_refused_with_78_or_runs(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], doc: dict[str, Any]
) -> None:
    base = tmp_path_factory.mktemp("cfg")
    (base / "conf").mkdir()
    (base / "conf" / "afile").write_text("not a folder")
    path = base / "conf" / "portal-feeds.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    capsys.readouterr()  # drop the previous example's log lines
    code = main(["check-config", "--config", str(path)])
    out = capsys.readouterr()
    assert code in (0, 78), out
    event(f"exit {code}" + (f" {out.err.strip().split(': ')[2]}" if code else ""))
    if code == 78:
        line = out.err.strip()
        assert line.startswith("portal-feeds: configuration error: ") and "\n" not in line, line
        with pytest.raises(ConfigError):
            require_folders(load_config(path))
        return
    _run_once(path)
