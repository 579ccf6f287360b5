"""OpenAPI 3.1 document built from the registered routes, and the docs pages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from kit.openapi.document import build_document, encode_document
from kit.openapi.pages import STATIC_DIR, Assets, redoc_html, swagger_ui_html
from kit.parts import Part

if TYPE_CHECKING:
    from kit.app import App

__all__ = ["OpenAPIDocument", "build_document", "docs_part", "encode_document"]


class OpenAPIDocument:
    """Serves the app's document, built once (at startup, or on first use) and kept encoded.

    Routes are registered after ``App()`` returns, so nothing is built when this is created.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._encoded: dict[str, bytes] = {}  # by root_path: a mounted app names it in servers

    def encoded(self, root_path: str = "") -> bytes:
        cached = self._encoded.get(root_path)
        if cached is None:
            document = build_document(self.app)
            if root_path and "servers" not in document:
                document["servers"] = [{"url": root_path}]
            cached = self._encoded[root_path] = encode_document(document)
        return cached

    @contextlib.asynccontextmanager
    async def lifespan(self, app: App) -> AsyncIterator[None]:
        self.encoded()  # a route the document cannot describe fails at startup, not later
        yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.encoded(scope.get("root_path", ""))
        await Response(body, media_type="application/json")(scope, receive, send)


class DocsPage:
    """An HTML page rendered once per ``root_path`` (the document's URL depends on it)."""

    def __init__(self, render: Callable[[str, str, Assets], str], app: App, assets: Assets):
        self.render = render
        self.title = app.title
        self.openapi_url = app.openapi_url or ""
        self.assets = assets
        self._pages: dict[str, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root_path: str = scope.get("root_path", "")
        page = self._pages.get(root_path)
        if page is None:
            text = self.render(
                self.title, root_path + self.openapi_url, self.assets.prefixed(root_path)
            )
            page = self._pages[root_path] = text.encode()
        await HTMLResponse(page)(scope, receive, send)


def static_url(app: App) -> str:
    """Where the vendored Swagger UI and ReDoc files are served: under the first docs page."""
    base = app.docs_url or app.redoc_url or ""
    return base.rstrip("/") + "/static"


def docs_part(app: App) -> Part:
    """The OpenAPI document, the docs pages and their assets, and the lifespan that builds the
    document at startup; nothing when ``openapi_url`` is None."""
    if app.openapi_url is None:
        return Part()
    document = OpenAPIDocument(app)
    return Part(name="docs", routes=docs_routes(app, document), lifespans=[document.lifespan])


def docs_routes(app: App, document: OpenAPIDocument) -> list[BaseRoute]:
    assert app.openapi_url is not None
    routes: list[BaseRoute] = [
        Route(app.openapi_url, document, methods=["GET", "HEAD"], include_in_schema=False)
    ]
    if app.docs_url is None and app.redoc_url is None:
        return routes
    if app.settings.docs_cdn:
        assets = Assets.cdn()
    else:
        url = static_url(app)
        assets = Assets.local(url)
        # kit ships the directory: no stat() check, which would block an app built in a loop
        static = StaticFiles(directory=STATIC_DIR, check_dir=False)
        routes.append(Mount(url, app=static, name="kit-docs-static"))
    for url_, render in ((app.docs_url, swagger_ui_html), (app.redoc_url, redoc_html)):
        if url_ is not None:
            routes.append(
                Route(
                    url_,
                    DocsPage(render, app, assets),
                    methods=["GET", "HEAD"],
                    include_in_schema=False,
                )
            )
    return routes
