"""A real nginx for the browser tests, on a free loopback port, as a portal would run it.

It serves (docs/widgets.md shows the production form of the same locations):

- ``/widget/``  the package's ``feeds/widget/`` (portal-feeds.js, portal-feeds.css);
- ``/widget-raw/`` the same files served with no charset at all (a legacy server: the
  script is ASCII-only and must read right anyway);
- ``/demo/``    the repository's ``widget/demo/`` pages, with SSI on;
- ``/pages/``   host pages a test writes (``site/pages/``), SSI on, no charset sent: the page's
  own ``<meta charset>`` decides, as on a legacy portal (windows-1258, ISO-8859-1);
- ``/feeds/``   a snapshot folder chosen by the host name: ``http://STATE.localhost:PORT/``
  reads ``<site>/STATE/feeds/`` (Chromium resolves ``*.localhost`` to loopback), so one
  nginx serves every state the tests need, each under the same absolute URLs the demo
  pages use;

with ``Content-Security-Policy: default-src 'self'`` on every answer and gzip on.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

__all__ = ["NGINX", "Nginx", "find_nginx"]

NGINX = "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parent.parent

CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 128; }}
http {{
    types {{
        text/html html;
        text/css css;
        application/javascript js;
        application/json json;
        image/svg+xml svg;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/css application/javascript application/json;
    access_log {run}/access.log;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    gzip on;
    gzip_comp_level 6;
    gzip_types application/json application/javascript text/css;
    map $host $pf_state {{
        ~^(?<s>[a-z0-9-]+)\\.localhost$ $s;
        default fresh;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        add_header Content-Security-Policy "default-src 'self'" always;
        location /widget/ {{
            alias {widget}/;
            charset utf-8;
            add_header Cache-Control "public, max-age=3600";
            add_header Content-Security-Policy "default-src 'self'" always;
        }}
        location /widget-raw/ {{
            alias {widget}/;
            charset off;
            add_header Content-Security-Policy "default-src 'self'" always;
        }}
        location /pages/ {{
            root {site};
            ssi on;
            charset off;
            add_header Cache-Control "no-cache";
            add_header Content-Security-Policy "default-src 'self'" always;
        }}
        location /demo/ {{
            alias {demo}/;
            ssi on;
        }}
        location /feeds/ {{
            root {site}/$pf_state;
            add_header Cache-Control "no-cache";
            add_header Content-Security-Policy "default-src 'self'" always;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    """The nginx binary: Debian's, or one on PATH."""
    if os.access(NGINX, os.X_OK):
        return NGINX
    return shutil.which("nginx")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """``with Nginx(site_dir) as web: web.url("fresh", "/demo/index.html")``."""

    def __init__(self, site: Path, run_dir: Path, binary: str | None = None) -> None:
        self.site = site
        self.run_dir = run_dir
        self.binary = binary or find_nginx() or NGINX
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, state: str, path: str) -> str:
        return f"http://{state}.localhost:{self.port}{path}"

    def start(self) -> Nginx:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(
            CONF.format(
                run=self.run_dir, port=self.port, site=self.site,
                widget=REPO / "feeds" / "widget", demo=REPO / "widget" / "demo",
            ),
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.run_dir), "-e", str(self.run_dir / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited at start: {err.strip()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/demo/demo.css", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
