"""NGINX from the OS packages in front of kit instances, with deploy/nginx/kit.conf as shipped
(only the addresses changed): used by the rolling-restart test and bench/scale_out.py."""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from kit.benchmark.server import free_port, request

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UPSTREAM_SERVER = re.compile(r"^(\s*)server kit:8000 (.*);$", re.MULTILINE)


def site_config(upstreams: list[int], port: int, down: frozenset[int] = frozenset()) -> str:
    """deploy/nginx/kit.conf with the instances' and NGINX's own addresses; instances in
    ``down`` are marked so, as a deploy script does before it restarts one."""
    site = (DEPLOY / "nginx" / "kit.conf").read_text()
    match = UPSTREAM_SERVER.search(site)
    assert match, "deploy/nginx/kit.conf has no 'server kit:8000 ...;' line"
    indent, params = match.groups()
    servers = "\n".join(
        f"{indent}server 127.0.0.1:{p} {params}{' down' if p in down else ''};" for p in upstreams
    )
    site = UPSTREAM_SERVER.sub(lambda _: servers, site)
    assert "    listen 80;" in site
    return site.replace("    listen 80;", f"    listen 127.0.0.1:{port};")


class Nginx:
    """NGINX from the OS packages, as root with every file it writes in ``directory``."""

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        self.directory = directory
        self.upstreams = upstreams
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.site = directory / "kit.conf"
        self.site.write_text(site_config(upstreams, self.port))
        self.main = directory / "nginx.conf"
        temp = {n: directory / n for n in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        self.main.write_text(
            f"""
daemon off;
user root;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {self.site};
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        with (self.directory / "nginx.out").open("wb") as log:
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.directory), "-c", str(self.main), "-e", self.error_log],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                if request(self.port, "/readyz", timeout=1)[0] == 200:
                    return self
            except (OSError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {self.errors()}")
            time.sleep(0.05)

    @property
    def error_log(self) -> str:
        return str(self.directory / "error.log")

    def reload(self, down: frozenset[int] = frozenset()) -> None:
        """New configuration; new workers take new connections, old ones finish theirs."""
        assert self.proc is not None
        self.site.write_text(site_config(self.upstreams, self.port, down))
        started = self.errors().count("start worker process")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.errors().count("start worker process") == started:
            assert time.monotonic() < deadline, self.errors()
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def errors(self) -> str:
        path = Path(self.error_log)
        return path.read_text(errors="replace") if path.exists() else ""
