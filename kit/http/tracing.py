"""kit.http under tracing (KIT_OTEL=1): a client span per attempt and the ``traceparent`` header."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["trace_config"]


def trace_config() -> aiohttp.TraceConfig:
    """For ``aiohttp.ClientSession(trace_configs=[...])``: each attempt (retries included) is a
    client span, child of the current one, and the upstream gets ``traceparent``."""
    tracer = trace.get_tracer("kit.http")

    async def on_start(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        url = params.url
        port = f":{url.port}" if url.port is not None else ""
        attributes: dict[str, Any] = {
            "http.request.method": params.method,
            "server.address": url.host or "",
            "url.full": f"{url.scheme}://{url.host}{port}{url.path}",  # no credentials, no query
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        span = tracer.start_span(params.method, kind=SpanKind.CLIENT, attributes=attributes)
        ctx.kit_span = span
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        for name, value in carrier.items():
            params.headers[name] = value

    async def on_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        span = getattr(ctx, "kit_span", None)
        if span is None:
            return
        status = params.response.status
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    async def on_exception(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        span = getattr(ctx, "kit_span", None)
        if span is None:
            return
        span.record_exception(params.exception)
        span.set_status(Status(StatusCode.ERROR, type(params.exception).__name__))
        span.end()

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    return config
