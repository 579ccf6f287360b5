"""/openapi.json, /docs, /redoc and their assets, as an App serves them."""

from __future__ import annotations

import json
import re

import msgspec
from starlette.routing import Route
from starlette.testclient import TestClient

from kit import App, Settings
from kit.openapi import OpenAPIDocument, build_document
from kit.openapi.pages import REDOC_VERSION, STATIC_DIR, SWAGGER_UI_VERSION


class Pong(msgspec.Struct):
    pong: bool


def make_app(**kwargs: object) -> App:
    settings = kwargs.pop("settings", Settings())
    app = App(title="pages", settings=settings, **kwargs)  # type: ignore[arg-type]

    @app.get("/ping")
    async def ping() -> Pong:  # registered after App(): the document must still list it
        return Pong(True)

    return app


def document_endpoint(app: App) -> OpenAPIDocument:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, OpenAPIDocument):
            return route.endpoint
    raise AssertionError("no OpenAPI route")


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)


def test_openapi_json_is_built_once_at_startup_and_served_as_bytes() -> None:
    app = make_app()
    endpoint = document_endpoint(app)
    with TestClient(app) as client:
        cached = endpoint.encoded()  # built by the lifespan, before any request
        first = client.get("/openapi.json")
        second = client.get("/openapi.json")
        assert client.head("/openapi.json").status_code == 200
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.content == second.content == cached
    assert endpoint.encoded() is cached
    assert "/ping" in first.json()["paths"]
    assert first.json() == json.loads(msgspec.json.encode(build_document(app)))


def test_docs_pages_use_local_assets_that_are_served() -> None:
    client = TestClient(make_app())
    for url, expected in (("/docs", "swagger-ui"), ("/redoc", "redoc")):
        page = client.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in page.text
        assets = asset_urls(page.text)
        assert assets
        assert all(a.startswith(f"/docs/static/{expected}/") for a in assets)
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 100_000
    assert client.get("/docs/static/nothing.js").status_code == 404
    assert client.get("/docs/static/../../app.py").status_code == 404


def test_vendored_assets_ship_with_their_licences() -> None:
    for name in (
        "swagger-ui/swagger-ui-bundle.js",
        "swagger-ui/swagger-ui.css",
        "swagger-ui/LICENSE",
        "redoc/redoc.standalone.js",
        "redoc/LICENSE",
    ):
        assert (STATIC_DIR / name).is_file(), name
    vendored = (STATIC_DIR / "VENDORED.txt").read_text()
    assert SWAGGER_UI_VERSION in vendored
    assert REDOC_VERSION in vendored


def test_cdn_setting_points_pages_at_the_cdn() -> None:
    client = TestClient(make_app(settings=Settings(docs_cdn=True)))
    swagger = asset_urls(client.get("/docs").text)
    redoc = asset_urls(client.get("/redoc").text)
    assert all(url.startswith("https://") for url in swagger + redoc)
    assert any(f"swagger-ui-dist@{SWAGGER_UI_VERSION}" in url for url in swagger)
    assert any(f"redoc@{REDOC_VERSION}" in url for url in redoc)
    assert client.get("/docs/static/redoc/redoc.standalone.js").status_code == 404


def test_docs_off_removes_every_docs_route() -> None:
    app = make_app(settings=Settings.from_env({"KIT_DOCS": "0"}))
    client = TestClient(app)
    for url in ("/openapi.json", "/docs", "/redoc", "/docs/static/redoc/redoc.standalone.js"):
        assert client.get(url).status_code == 404, url
    assert "/ping" in build_document(app)["paths"]  # `kit openapi` still works


def test_paths_are_configurable() -> None:
    app = make_app(openapi_url="/api/schema.json", docs_url="/api/docs", redoc_url=None)
    client = TestClient(app)
    assert client.get("/api/schema.json").status_code == 200
    page = client.get("/api/docs").text
    assert '"/api/schema.json"' in page
    assert all(url.startswith("/api/docs/static/") for url in asset_urls(page))
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404


def test_no_openapi_url_means_no_pages() -> None:
    client = TestClient(make_app(openapi_url=None))
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_mounted_under_a_root_path() -> None:
    client = TestClient(make_app(), root_path="/svc")
    document = client.get("/openapi.json").json()
    assert document["servers"] == [{"url": "/svc"}]
    page = client.get("/docs").text
    assert '"/svc/openapi.json"' in page
    assert all(url.startswith("/svc/docs/static/") for url in asset_urls(page))
    # the unprefixed document is unchanged
    assert "servers" not in TestClient(make_app()).get("/openapi.json").json()


def test_title_is_escaped_in_pages() -> None:
    app = App(title='</script><script>alert("x")</script>', settings=Settings())
    for url in ("/docs", "/redoc"):
        page = TestClient(app).get(url).text
        assert "<script>alert" not in page


def test_docs_routes_are_not_in_the_document() -> None:
    paths = TestClient(make_app()).get("/openapi.json").json()["paths"]
    assert list(paths) == ["/ping"]
