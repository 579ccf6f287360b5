"""Every app on every runtime: each endpoint answers with its content type, and every response
(errors included) carries exactly one Server, Date, Content-Type and a true Content-Length."""

from __future__ import annotations

import httpx
import pytest

from tests.services.bench.harness import APPS, RUNTIMES, SERVER_NAMES, Servers

JSON = "application/json"
ENDPOINTS = [
    ("GET", "/json", None, 200, JSON),
    ("GET", "/plaintext", None, 200, "text/plain; charset=utf-8"),
    ("GET", "/db", None, 200, JSON),
    ("GET", "/queries?queries=3", None, 200, JSON),
    ("GET", "/fortunes", None, 200, "text/html; charset=utf-8"),
    ("GET", "/updates?queries=3", None, 200, JSON),
    ("POST", "/validate", {"name": "Ada", "age": 36, "email": "ada@example.org"}, 200, JSON),
    ("POST", "/validate", {"name": "", "age": 36, "email": "ada@example.org"}, 422, JSON),
    ("GET", "/aggregate", None, 200, JSON),
]
REQUIRED = ("server", "date", "content-type", "content-length")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("app", list(APPS))
def test_every_endpoint_answers_with_the_required_headers(
    bench_servers: Servers, app: str, runtime: str
) -> None:
    with httpx.Client(base_url=bench_servers.url(app, runtime), timeout=10) as client:
        for method, path, body, status, content_type in ENDPOINTS:
            response = client.request(method, path, json=body)
            where = f"{app} on {runtime}: {method} {path} {body}"
            assert response.status_code == status, where
            assert response.headers["content-type"] == content_type, where
            for name in REQUIRED:
                assert len(response.headers.get_list(name)) == 1, f"{where}: {name} header"
            assert response.headers["server"] == SERVER_NAMES[app], where
            assert int(response.headers["content-length"]) == len(response.content), where


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unknown_paths_and_methods_carry_the_headers_too(
    bench_servers: Servers, runtime: str
) -> None:
    for app in APPS:
        with httpx.Client(base_url=bench_servers.url(app, runtime), timeout=10) as client:
            for method, path, status in (("GET", "/nope", 404), ("POST", "/json", 405)):
                response = client.request(method, path)
                where = f"{app} on {runtime}: {method} {path}"
                assert response.status_code == status, where
                for name in REQUIRED:
                    assert len(response.headers.get_list(name)) == 1, f"{where}: {name} header"
