"""KIT_ALLOWED_HOSTS on a real server: the health probes answer whatever the Host (a Docker
HEALTHCHECK and Kubernetes send the address they dial), every other path is still checked."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.testing import ServerProcess
from tests.runtimes.conftest import REPO, runtime_params

APP = "tests.kit.middleware.served:app"


def get(server: ServerProcess, path: str, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(params=runtime_params())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"KIT_ALLOWED_HOSTS": "api.example.com,*.internal.example", "KIT_ACCESS_LOG": "0"}
    # ServerProcess's own readiness probe sends Host 127.0.0.1: it is the first check
    with ServerProcess(
        APP, runtime=request.param, env=env, cwd=REPO, log=tmp_path, timeout=60
    ) as served:
        yield served


def test_probes_answer_any_host_and_the_rest_is_checked(server: ServerProcess) -> None:
    probe_hosts = ["127.0.0.1", f"127.0.0.1:{server.port}", "10.42.0.17:8000", "[::1]:8000", ""]
    for path in ("/healthz", "/readyz"):
        for host in probe_hosts:
            assert get(server, path, host) == 200, (path, host)
    for host in ["api.example.com", "api.example.com:443", "a.internal.example"]:
        assert get(server, "/thing", host) == 200, host
    for host in ["10.42.0.17:8000", "127.0.0.1", "evil.example", ""]:
        assert get(server, "/thing", host) == 400, host
        assert get(server, "/healthz/../thing", host) in (400, 404), host
