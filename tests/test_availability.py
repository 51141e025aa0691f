"""Two instances behind a real nginx: one machine dies, pages keep getting valid snapshots;
with the standby as a peer of the first, only one instance asks the bank.

Each "machine" is a daemon (own cache and snapshot folders) and its own nginx serving the
snapshot folder; a front nginx has the first as upstream and the second as ``backup``,
with ``proxy_next_upstream``. nginx is started by the test on loopback ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from feeds.testing.upstream import UpstreamSimulator

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

if NGINX is None:
    if os.environ.get("CI"):
        pytest.fail("nginx is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip("nginx not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


class Nginx:
    """One nginx process (master_process off: it runs as us, reads our tmp folders)."""

    def __init__(self, folder: Path, servers: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
            (folder / d).mkdir(exist_ok=True)
        conf = folder / "nginx.conf"
        conf.write_text(
            f"""
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{ application/json json; }}
{servers}
}}
""",
            encoding="utf-8",
        )
        assert NGINX is not None
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def snapshots_server(port: int, folder: Path, name: str) -> str:
    return f"""
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/feeds/([A-Za-z0-9][A-Za-z0-9_.-]*\\.json)$ {{
            alias {folder}/$1;
            add_header X-Instance {name} always;
        }}
    }}
"""


def front_server(port: int, a: int, b: int) -> str:
    return f"""
    upstream portal_feeds {{
        server 127.0.0.1:{a} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:{b} backup;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /feeds/ {{
            proxy_pass http://portal_feeds;
            proxy_next_upstream error timeout http_502 http_503 http_504 http_404;
            proxy_connect_timeout 1s;
        }}
    }}
"""


def daemon(folder: Path, name: str, feed: str) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "portal-feeds.toml"
    cfg.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n'
        f'[http]\nuser_agent = "portal-feeds-test instance-{name} (webmaster@localhost)"\n\n' + feed,
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    return subprocess.Popen(
        [sys.executable, "-m", "feeds", "run", "--config", str(cfg)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def bank_feed(url: str) -> str:
    return (
        f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\nevery = "1s"\nmin_interval = "0s"\n'
        'timeout = "1s"\ndeadline = "2s"\n'
    )


def peer_feed(peer_url: str, bank_url: str) -> str:
    return (
        f'[feeds.rates]\nkind = "portal-feeds"\nurl = "{peer_url}"\nevery = "1s"\nmin_interval = "0s"\n'
        'timeout = "1s"\ndeadline = "2s"\n'
        f'fallback = [{{ kind = "vietcombank", url = "{bank_url}" }}]\n'
    )


@pytest.fixture
def schema() -> Any:
    from importlib.resources import files

    doc = json.loads(files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(doc)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    procs: list[subprocess.Popen[Any]] = []
    nginxes: list[Nginx] = []
    with UpstreamSimulator() as sim:
        w: dict[str, Any] = {"sim": sim, "procs": procs, "nginxes": nginxes, "tmp": tmp_path}
        try:
            yield w
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.communicate(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.communicate()
            for n in nginxes:
                n.kill()


def start_pair(w: dict[str, Any], b_feed: str) -> tuple[int, int, int]:
    tmp: Path = w["tmp"]
    pa, pb, pf = free_port(), free_port(), free_port()
    bank = w["sim"].url("vietcombank")
    w["procs"].append(daemon(tmp / "a", "a", bank_feed(bank)))
    w["procs"].append(daemon(tmp / "b", "b", b_feed.replace("{peer}", f"http://127.0.0.1:{pa}/feeds/rates.json").replace("{bank}", bank)))
    w["nginxes"].append(Nginx(tmp / "nginx-a", snapshots_server(pa, tmp / "a" / "snapshots", "a")))
    w["nginxes"].append(
        Nginx(tmp / "nginx-front", snapshots_server(pb, tmp / "b" / "snapshots", "b") + front_server(pf, pa, pb))
    )
    for port in (pa, pb, pf):
        wait_port(port)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        ok = [(tmp / x / "snapshots" / "rates.json").exists() for x in ("a", "b")]
        if all(ok):
            snaps = [json.loads((tmp / x / "snapshots" / "rates.json").read_text()) for x in ("a", "b")]
            if all(s["status"] == "fresh" for s in snaps):
                return pa, pb, pf
        time.sleep(0.1)
    raise AssertionError("the two instances did not publish fresh snapshots")


def kill_a(w: dict[str, Any]) -> None:
    """Machine A dies: its daemon and its nginx."""
    w["procs"][0].kill()
    w["procs"][0].communicate()
    w["nginxes"][0].kill()


def bank_requests_by(sim: UpstreamSimulator, name: str) -> int:
    return sum(1 for r in sim.requests("vietcombank") if f"instance-{name}" in r.headers.get("user-agent", ""))


def test_pages_keep_valid_snapshots_when_one_instance_dies(world: dict[str, Any], schema: Any) -> None:
    pa, pb, pf = start_pair(world, bank_feed("{bank}"))
    reads: list[tuple[float, int, str, dict[str, Any] | None]] = []
    stop = threading.Event()

    def page() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    r = client.get(f"http://127.0.0.1:{pf}/feeds/rates.json")
                    doc = r.json() if r.status_code == 200 else None
                    reads.append((time.monotonic(), r.status_code, r.headers.get("x-instance", ""), doc))
                except (httpx.HTTPError, ValueError) as exc:
                    reads.append((time.monotonic(), 0, type(exc).__name__, None))
                time.sleep(0.02)

    t = threading.Thread(target=page)
    t.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        kill_a(world)
        time.sleep(3.0)
    finally:
        stop.set()
        t.join(10)
    assert len(reads) > 50
    bad = [(code, who) for _, code, who, doc in reads if code != 200 or doc is None]
    assert not bad, bad[:5]
    for _, _, _, doc in reads:
        assert not list(schema.iter_errors(doc))
        assert doc is not None and doc["status"] == "fresh" and doc["data"]["rates"]
    before = {who for at, _, who, _ in reads if at < killed_at}
    after = {who for at, _, who, _ in reads if at > killed_at + 0.5}
    assert before == {"a"} and after == {"b"}
    # Two independent instances: both asked the bank.
    assert bank_requests_by(world["sim"], "a") > 0 and bank_requests_by(world["sim"], "b") > 0


def test_standby_as_peer_keeps_bank_requests_at_one_instance(world: dict[str, Any]) -> None:
    pa, pb, pf = start_pair(world, peer_feed("{peer}", "{bank}"))
    sim: UpstreamSimulator = world["sim"]
    time.sleep(1.5)  # B's first attempt may come before A has published anything
    a0, b0 = bank_requests_by(sim, "a"), bank_requests_by(sim, "b")
    time.sleep(2.5)
    assert bank_requests_by(sim, "a") > a0
    assert bank_requests_by(sim, "b") == b0  # B copies A's snapshot while A is up
    b_snap = json.loads((world["tmp"] / "b" / "snapshots" / "rates.json").read_text())
    a_snap = json.loads((world["tmp"] / "a" / "snapshots" / "rates.json").read_text())
    assert b_snap["source"]["name"] == "Vietcombank" and b_snap["data"] == a_snap["data"]
    kill_a(world)
    end = time.monotonic() + 10
    while time.monotonic() < end and bank_requests_by(sim, "b") == b0:
        time.sleep(0.1)
    assert bank_requests_by(sim, "b") > b0  # A gone: B asks the bank itself
    time.sleep(1.5)
    b_snap = json.loads((world["tmp"] / "b" / "snapshots" / "rates.json").read_text())
    assert b_snap["status"] == "fresh"
