"""Outbound HTTP under tracing: a client span per request and the ``traceparent`` header."""

from __future__ import annotations

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["TracingTransport"]


class TracingTransport(httpx.AsyncBaseTransport):
    """Wraps an httpx transport: ``httpx.AsyncClient(transport=TracingTransport(inner))``."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self.tracer = trace.get_tracer("kit.http")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method
        url = request.url
        port = f":{url.port}" if url.port is not None else ""
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "server.address": url.host,
            "url.full": f"{url.scheme}://{url.host}{port}{url.path}",  # no credentials, no query
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        with self.tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes=attributes, record_exception=True
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # the current span is this one: the server's parent
            for name, value in carrier.items():
                request.headers[name] = value
            response = await self.inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()
