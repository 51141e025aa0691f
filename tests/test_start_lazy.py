"""Issue 20, item 3: start -> READY needs only the store and the JSON publish.

``portal-feeds run`` republishes every feed from the store and then sends READY=1; the HTTP
client (httpx) and its machinery (httpcore, h11, anyio, the TLS context), the scheduler
(APScheduler), the retry loop (tenacity), the XML parser (lxml), the fallback resolver
(dnspython) and the metrics writer (prometheus_client) are first needed by the first fetch,
after READY; nor is jsonschema needed for the usual snapshots (``feeds.bounds.document_ok``
answers for them).  The configuration checks URLs without httpx (``feeds.urlcheck``).  The
HTML fragments of a warm start are rendered right after READY, before the first attempt,
when the fragment on disk already shows the same fresh data (``feeds.portal.fragments_later``):
Jinja2 is not loaded before READY either.  Importing any of them before READY only makes a
restart (and every ``systemctl restart``) slower.

No timing here: the real command runs in a subprocess whose ``Notifier.ready`` first writes
which of those packages are in ``sys.modules`` and which snapshots were rewritten, so the
test says *what* was loaded too early, on a loaded machine as on an idle one.  The speed
itself is measured by ``bench/ready.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.testing.upstream import UpstreamSimulator

ROOT = Path(__file__).resolve().parent.parent

#: Top-level packages the start must not import before READY.
LATE = ("httpx", "httpcore", "h11", "anyio", "apscheduler", "tenacity", "lxml", "dns", "prometheus_client",
        "jsonschema", "jinja2", "markupsafe")

#: Runs ``python -m feeds run ...`` with ``Notifier.ready`` first writing a report to a file.
PROBE = """
import gc, json, os, sys
from pathlib import Path
import feeds.coordinator
import feeds.notify

late, snapshots, out = tuple(sys.argv[1].split(",")), Path(sys.argv[2]), Path(sys.argv[3])
ready = feeds.notify.Notifier.ready
refresh = feeds.coordinator.Coordinator.refresh

def html(folder):
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.html"))}

def write(path, report):
    path.with_suffix(".tmp").write_text(json.dumps(report))
    os.replace(path.with_suffix(".tmp"), path)

def probe(self):
    if not out.exists():  # the first READY (a reload sends another)
        loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in late})
        stamps = {p.name: json.loads(p.read_text(encoding="utf-8"))["generated_at"]
                  for p in sorted(snapshots.glob("*.json")) if p.name.count(".") == 1}
        write(out, {"loaded": loaded, "stamps": stamps, "html": html(snapshots), "gc": gc.isenabled()})
    return ready(self)

def attempt(self, *a, **k):
    first = out.with_name("attempt.json")
    if not first.exists():  # what the first attempt found loaded
        write(first, {"loaded": sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in late}),
                      "html": html(snapshots), "gc": gc.isenabled()})
    return refresh(self, *a, **k)

feeds.notify.Notifier.ready = probe
feeds.coordinator.Coordinator.refresh = attempt
sys.argv = ["portal-feeds", *sys.argv[4:]]
import runpy
runpy.run_module("feeds", run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    with UpstreamSimulator() as s:
        yield s


def _config(tmp_path: Path, sim: UpstreamSimulator) -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[feeds.rates]
kind = "vietcombank"
url = "{sim.url('vietcombank')}"
every = "1h"
min_interval = "0s"
timeout = "2s"
deadline = "3s"
history_keep = 7

[feeds.weather]
kind = "open-meteo"
url = "{sim.url('open-meteo')}"
every = "1h"
min_interval = "0s"
timeout = "2s"
deadline = "3s"
locations = [{{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }},
             {{ id = "hue", name = "Huế", lat = 16.46, lon = 107.59 }}]
per_location_files = true

[feeds.metno]
kind = "met-no"
url = "{sim.base_url}/weatherapi/locationforecast/2.0/compact"
every = "1h"
min_interval = "0s"
timeout = "2s"
deadline = "3s"
locations = [{{ id = "hue", name = "Huế", lat = 16.46, lon = 107.59 }}]
""", encoding="utf-8")
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONPATH"] = str(ROOT)
    env["XDG_RUNTIME_DIR"] = str(tmp_path)  # the instance lock stays inside the test
    return env


def _until_probe(proc: subprocess.Popen[bytes], report: Path, log: Path, timeout: float = 60) -> Any:
    """The report the daemon wrote (polled: the daemon may also never get there)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None and not report.exists():
        time.sleep(0.05)
    if not report.exists():
        raise AssertionError("no READY from the daemon: " + log.read_text(encoding="utf-8", errors="replace")[-2000:])
    return json.loads(report.read_text(encoding="utf-8"))


def _fetched(snapshots: Path) -> dict[str, str]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))["fetched_at"]
            for p in snapshots.glob("*.json") if p.name.count(".") == 1}


def test_ready_after_the_republish_without_the_fetch_machinery(tmp_path: Path, sim: UpstreamSimulator) -> None:
    sim.set_expires("met-no", None)  # every attempt asks again (no Expires to honour)
    cfg = _config(tmp_path, sim)
    warm = subprocess.run([sys.executable, "-m", "feeds", "fetch", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, env=_env(tmp_path), cwd=tmp_path)
    assert warm.returncode == 0, warm.stdout + warm.stderr
    snapshots = tmp_path / "snapshots"
    before = {p.name: json.loads(p.read_text(encoding="utf-8"))["generated_at"]
              for p in snapshots.glob("*.json") if p.name.count(".") == 1}
    assert sorted(before) == ["metno.json", "rates.json", "weather.json"]
    fetched = _fetched(snapshots)
    fragments = {p.name: p.stat().st_mtime_ns for p in snapshots.glob("*.html")}
    assert sorted(fragments) == ["metno.html", "rates.html", "weather.html"]
    time.sleep(1.1)  # generated_at has whole seconds: a republish shows as a later stamp

    report, log = tmp_path / "ready.json", tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, ",".join(LATE), str(snapshots), str(report), "run", "--config", str(cfg)],
            stdout=out, stderr=subprocess.STDOUT, env=_env(tmp_path), cwd=tmp_path,
        )
    try:
        probe = _until_probe(proc, report, log)
        at_attempt = _until_probe(proc, tmp_path / "attempt.json", log)
        # The first attempts, with everything loaded after READY, fetch and publish anew.
        end = time.monotonic() + 30
        while time.monotonic() < end and not all(
            now > fetched[name] for name, now in _fetched(snapshots).items()
        ):
            time.sleep(0.05)
        after = _fetched(snapshots)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stamps = probe["stamps"]
    assert isinstance(stamps, dict)
    # READY still comes after every feed was republished from the store...
    assert sorted(stamps) == sorted(before)
    assert all(stamps[name] > before[name] for name in before), (before, stamps)
    # ... and nothing of the fetch machinery was loaded for it.
    assert probe["loaded"] == [], f"imported before READY: {probe['loaded']}"
    # ... and loaded right after it, before the first attempt: no attempt pays for it on the loop.
    assert {"httpx", "httpcore", "h11", "apscheduler", "tenacity", "lxml", "jinja2"} <= set(at_attempt["loaded"]), at_attempt
    # The fragments (the same fresh data as their JSON) are rewritten after READY, before the
    # first attempt: none waits for an attempt's end.
    assert all(at_attempt["html"][name] > fragments[name] for name in fragments), (fragments, at_attempt)
    # The cyclic garbage collector: off for the start (nothing to find there), on from READY.
    assert probe["gc"] is False and at_attempt["gc"] is True
    assert all(after[name] > fetched[name] for name in fetched), (fetched, after, log.read_text(errors="replace"))
    assert proc.returncode == 0


def test_deferred_client_is_built_once_at_first_use_and_closed_only_if_built() -> None:
    import asyncio

    import httpx

    from feeds.app import DeferredClient

    built: list[httpx.AsyncClient] = []

    def build() -> httpx.AsyncClient:
        built.append(httpx.AsyncClient(headers={"User-Agent": "probe"}))
        return built[-1]

    unused = DeferredClient(build)
    asyncio.run(unused.aclose())
    assert not unused.built and built == []  # closing an unused client builds nothing

    client = DeferredClient(build)
    assert client.headers["User-Agent"] == "probe"  # reads go to the real client
    client.timeout = httpx.Timeout(3.0)  # so do writes
    assert client.build() is built[0] and built[0].timeout == httpx.Timeout(3.0) and len(built) == 1
    asyncio.run(client.aclose())
    assert built[0].is_closed


def test_the_command_line_imports_the_configuration_only_once_the_command_is_known() -> None:
    """``run`` turns the garbage collector off before the heavy imports (feeds.cli.main): the
    module itself imports neither the configuration nor asyncio nor the store."""
    from feeds import cli, config

    assert cli.EX_CONFIG == config.EX_CONFIG
    out = subprocess.run(
        [sys.executable, "-c", "import sys, feeds.cli; print(sorted(m for m in sys.modules "
         "if m in ('asyncio', 'feeds.config', 'feeds.store', 'diskcache', 'feeds.daemon')))"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_collector_is_on_again_after_any_other_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only ``run`` keeps the garbage collector off (until READY=1); every other way out of
    ``main`` leaves it as it found it: on after a command, after --version, after a usage error."""
    import gc

    from feeds import cli

    cfg = tmp_path / "portal-feeds.toml"
    cfg.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n', encoding="utf-8")
    assert gc.isenabled()
    assert cli.main(["check-config", "--config", str(cfg)]) == cli.EX_CONFIG  # no feeds: refused
    assert gc.isenabled()
    for argv in (["--version"], ["no-such-command"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert gc.isenabled()
    gc.disable()
    try:
        cli.main(["check-config", "--config", str(cfg)])
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    capsys.readouterr()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(["-v", "--verbose", "--config", "--config=a.toml", "--config=", "b.toml", "",
                                 "-x", "--conf", "--", "-h", "run", "fetch"]), max_size=5))
def test_run_read_without_the_parser_is_what_the_parser_reads(words: list[str]) -> None:
    """``run ...`` read by ``feeds.cli._run_args`` (no parser built) gives the parser's namespace,
    or leaves the words to the parser."""
    import contextlib
    import io

    from feeds import cli

    argv = ["run", *words]
    fast = cli._run_args(argv)
    if fast is None:
        return
    with contextlib.redirect_stderr(io.StringIO()):
        assert fast == cli._parser().parse_args(argv)


def test_the_units_command_line_is_read_without_the_parser() -> None:
    from feeds import cli

    assert cli._run_args(["run", "--config", "/etc/portal-feeds/portal-feeds.toml"]) is not None
    assert cli._run_args(["fetch"]) is None and cli._run_args(["run", "-h"]) is None


#: ``python -m feeds run ...`` whose first ``Notifier.ready`` writes which modules were loaded,
#: then sends the process SIGHUP and SIGTERM at once (between READY and the event loop).
SIGNALLED = """
import json, os, runpy, signal, sys
from pathlib import Path
import feeds.notify

out, watched = Path(sys.argv[1]), tuple(sys.argv[2].split(","))
ready = feeds.notify.Notifier.ready

def probe(self):
    first = not out.exists()
    if first:
        out.write_text(json.dumps(sorted(m for m in watched if m in sys.modules)))
    sent = ready(self)
    if first:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
    return sent

feeds.notify.Notifier.ready = probe
sys.argv = ["portal-feeds", *sys.argv[3:]]
runpy.run_module("feeds", run_name="__main__", alter_sys=True)
"""


def test_ready_before_the_event_loop_and_signals_at_once_after_it_are_kept(
    tmp_path: Path, sim: UpstreamSimulator
) -> None:
    """The warm start republishes from the store before the event loop exists: asyncio, the
    coordinator and the fetch machinery under it are imported after READY=1.  A reload and a
    stop sent right at READY (before the loop's handlers) are not lost: held, then handled."""
    cfg = _config(tmp_path, sim)
    report = tmp_path / "ready.json"
    watched = ("asyncio", "feeds.coordinator", "feeds.pipeline", "feeds.batching", "feeds.transport",
               "feeds.fetching", "feeds.resolver", "concurrent.futures")
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLED, str(report), ",".join(watched), "run", "--config", str(cfg)],
        capture_output=True, text=True, timeout=120, env=_env(tmp_path), cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert json.loads(report.read_text(encoding="utf-8")) == [], log
    # Every feed was republished before READY (three snapshots), the reload and the stop
    # handled by the loop: exit 0, no traceback, no death by SIGHUP.
    assert sorted(p.name for p in (tmp_path / "snapshots").glob("*.json") if p.name.count(".") == 1) == [
        "metno.json", "rates.json", "weather.json"], log
    assert done.returncode == 0, log
    assert "reloaded feeds=3" in log and "stopped" in log, log
    assert "Traceback" not in log


def test_reading_the_configuration_needs_neither_the_politeness_machinery_nor_every_source() -> None:
    """``feeds.config`` imports no source module until a configuration names its kind (a
    configuration without a peer feed never imports the peer's), and not the politeness
    machinery (whose breaker defaults it repeats: they must agree)."""
    from feeds import config, politeness

    assert config.DEFAULT_BREAKER_THRESHOLD == politeness.DEFAULT_BREAKER_THRESHOLD
    assert config.DEFAULT_BREAKER_COOLDOWN == politeness.DEFAULT_BREAKER_COOLDOWN
    probe = (
        "import sys, feeds.config\n"
        "print(sorted(m for m in sys.modules if m.startswith(('feeds.sources.', 'feeds.politeness', 'asyncio'))))\n"
        "import pathlib, tomllib\n"
        "feeds.config.parse_config(tomllib.loads('[feeds.r]\\nkind = \"vietcombank\"\\n'), pathlib.Path('.'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('feeds.sources.', 'feeds.politeness', 'asyncio'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    at_import, after_parse = out.stdout.splitlines()
    assert at_import == "['feeds.sources.registry']", out.stdout + out.stderr
    assert "'feeds.sources.vietcombank'" in after_parse and "feeds.sources.peer" not in after_parse, after_parse
    assert "politeness" not in after_parse and "asyncio" not in after_parse, after_parse
