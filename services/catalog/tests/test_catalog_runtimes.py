"""The catalog on each runtime, as `kit serve` runs it: one real server process per runtime."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import WRITER
from .servers import runtime_params, serving

REPO = Path(__file__).resolve().parents[3]


def answer_before_the_body(url: str, path: str) -> bytes:
    """Announce a 2 MiB body, send 1 KiB of it, and read: the answer cannot depend on the rest."""
    parts = urlsplit(url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {2 << 20}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"{" * 1024)
        return sock.recv(65536)


@pytest.mark.parametrize("runtime", runtime_params())
def test_catalog_on_a_real_server(runtime: str, fresh_database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {"DATABASE_URL": fresh_database_url, "KIT_LOG_FORMAT": "json"}
    app = "services.catalog.app:app"
    with (
        serving(app, runtime, cwd=REPO, log=log, env=env) as url,
        httpx.Client(base_url=url, timeout=10, headers=WRITER) as client,
        httpx.Client(base_url=url, timeout=10) as anonymous,
    ):
        # writes need the token (the server inherited the session's KIT_AUTH_JWT_SECRET),
        # refused before the body is read: neither 422 nor 413
        refused = anonymous.post("/categories", json={"slug": 5})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert answer_before_the_body(url, "/products").startswith(b"HTTP/1.1 401 ")
        assert anonymous.get("/products").status_code == 200
        category = client.post("/categories", json={"slug": "hats", "name": "Hats"}).json()
        variants = [{"sku": "HAT-1-S", "label": "S"}, {"sku": "HAT-1-L", "label": "L"}]
        body = {"sku": "HAT-1", "name": "Hat", "price_cents": 2000, "variants": variants}
        created = client.post("/products", json={**body, "category_id": category["id"]})
        assert created.status_code == 201, created.text
        path = created.headers["location"]
        etag = created.headers["etag"]

        assert client.get(path).json() == created.json()
        assert client.get(path, headers={"if-none-match": etag}).status_code == 304
        renamed = client.patch(path, json={"name": "Cap"}, headers={"if-match": etag})
        assert renamed.status_code == 200
        assert renamed.json()["variants"] == created.json()["variants"]
        stale = client.patch(path, json={"name": "Hat"}, headers={"if-match": etag})
        assert stale.status_code == 412
        assert client.patch(path, json={"name": "Hat"}).status_code == 428
        assert client.post("/products", json=body).status_code == 409
        assert client.post("/products", json={**body, "sku": "x"}).status_code == 422
        page = client.get("/products", params={"category_id": category["id"]}).json()
        assert [item["name"] for item in page["items"]] == ["Cap"]

        # what kit.App brings with no code in the service
        assert client.get("/healthz").status_code == 200
        assert "/products/{product_id}" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200
        assert "/products/{product_id}" in client.get("/metrics").text
    assert '"route":"/products/{product_id}"' in log.read_text()
