"""docs/deploy.md §5 tells the truth: its nginx block, run in a real nginx under a portal's
server block, keeps the server's security headers, labels JSON as UTF-8 and gzips it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(
    NGINX is None and not os.environ.get("CI"), reason="nginx not installed (.ci/run installs it)"
)


def _doc_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return blocks[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_documented_location_block(tmp_path: Path) -> None:
    assert NGINX is not None, "nginx is required under CI"
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    body = ('{"feed": "weather", "name": "Thừa Thiên Huế", "pad": "' + "x" * 4000 + '"}\n').encode()
    (snaps / "weather.json").write_bytes(body)
    port = _free_port()
    block = _doc_block().replace("/var/lib/portal-feeds/snapshots/", f"{snaps}/")
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp; fastcgi_temp_path {tmp_path}/tmp;
    uwsgi_temp_path {tmp_path}/tmp; scgi_temp_path {tmp_path}/tmp;
    server {{
        listen 127.0.0.1:{port};
        # The portal's own server-level headers (as the issue found them).
        add_header Strict-Transport-Security "max-age=31536000" always;
        add_header X-Frame-Options "SAMEORIGIN" always;
        {block}
    }}
}}
""")
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/feeds/weather.json", headers={"Accept-Encoding": "gzip"})
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail((tmp_path / "error.log").read_text())
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.headers["content-encoding"] == "gzip" and r.headers.get("vary") == "Accept-Encoding"
        assert r.content == body  # httpx decoded the gzip
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["cache-control"].startswith("public, max-age=60")
        # Nothing else under /feeds/: no listing, no temporary files.
        (snaps / ".weather.json.abc.tmp").write_text("{}")
        assert httpx.get(f"http://127.0.0.1:{port}/feeds/.weather.json.abc.tmp").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/feeds/").status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
