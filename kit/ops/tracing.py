"""OpenTelemetry tracing, on with ``KIT_OTEL=1`` (and the standard ``OTEL_*`` variables).

Off, nothing here is imported and requests pass no tracing code. On: a server span per request
named by its route template, a client span per asyncpg query (from asyncpg's query logger, so
one per query, never per row), the trace id on every log line and access line, and
``TracingTransport`` for outbound HTTP (a client span and the ``traceparent`` header).

The tracer provider is the one the application installed (``trace.set_tracer_provider``), or
one kit builds per worker: sampler from ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``,
resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name defaults to
the app's title) and exporter from ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.ops.logs import TRACE_ID
from kit.parts import Part
from kit.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

__all__ = ["EXPORTERS", "Tracing", "TracingMiddleware", "check_settings", "tracing_part"]

EXPORTERS = ("otlp", "console", "none")
_ERROR = Status(StatusCode.ERROR)


def check_settings(environ: Any = os.environ) -> None:
    """Fail at startup, with one line, on an exporter kit cannot build."""
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    for name in names:
        if name not in EXPORTERS:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER={name!r} is not allowed; use one of {', '.join(EXPORTERS)}"
            )
    if "otlp" in names and trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider":
        try:
            import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        except ImportError:
            raise SettingsError(
                "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http: "
                "pip install 'kit-asgi[otlp]', or set OTEL_TRACES_EXPORTER=console or none"
            ) from None


def _build_provider(service_name: str) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(","):
        name = name.strip()
        if name == "console":
            # One line per span, as kit's log lines are: multi-line JSON would interleave
            # with them where both are collected from one stream.
            console = ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)
            provider.add_span_processor(BatchSpanProcessor(console))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


class Tracing:
    """One app's tracing: the tracer (per worker, set by the lifespan) and the query logger."""

    def __init__(self, service_name: str) -> None:
        check_settings()
        self.service_name = service_name
        self.tracer: trace.Tracer = trace.get_tracer("kit")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        provider = None
        if trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider":
            provider = _build_provider(self.service_name)  # in the worker: it starts a thread
            trace.set_tracer_provider(provider)
        self.tracer = trace.get_tracer("kit")
        try:
            yield
        finally:
            if provider is not None:
                provider.shutdown()  # exports what is still batched

    def on_connect(self, connection: Any) -> None:
        """Pool hook: a client span for every query this connection runs."""
        connection.add_query_logger(self._on_query)

    def _on_query(self, record: Any) -> None:
        # asyncpg calls this with call_soon from the querying task: its context (the request's
        # span) is current here. The span is recorded after the fact, from the measured time.
        parent = trace.get_current_span()
        if parent is not trace.INVALID_SPAN and not parent.is_recording():
            return  # the request was not sampled: neither is its query
        end = time.time_ns()
        query: str = record.query
        operation = query.lstrip().split(None, 1)[0].upper() if query.strip() else "QUERY"
        params = record.conn_params
        database = getattr(params, "database", None)
        attributes: dict[str, Any] = {"db.system.name": "postgresql", "db.query.text": query}
        if database:
            attributes["db.namespace"] = database
        address = record.conn_addr
        if isinstance(address, tuple) and len(address) >= 2:
            attributes["server.address"] = str(address[0])
            attributes["server.port"] = int(address[1])
        span = self.tracer.start_span(
            f"{operation} {database}" if database else operation,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(record.elapsed * 1e9),
        )
        if record.exception is not None:
            span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
        span.end(end_time=end)


def tracing_part(app: Any) -> Part:
    """A server span around each request (outside kit's operations middleware, so the access
    line sees the trace id), the tracer provider per worker, and a span per query."""
    tracing = Tracing(app.title)
    hooks = getattr(app.database, "connection_hooks", None)
    if hooks is not None:
        hooks.append(tracing.on_connect)
    return Part(
        name="tracing",
        middleware=[Middleware(TracingMiddleware, tracing=tracing)],
        lifespans=[tracing.lifespan],
    )


class _ASGIHeaders(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.encode()
        values = [v.decode("latin-1") for k, v in carrier if k == name]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _ASGIHeaders()


class _StatusRecorder:
    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500  # what the server answers if the app fails before starting a response

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class TracingMiddleware:
    """A server span around each HTTP request, named ``METHOD /route/{template}``."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing
        # the headers the configured propagators (OTEL_PROPAGATORS) read
        fields = propagate.get_global_textmap().fields
        self.propagated = frozenset(name.lower().encode("latin-1") for name in fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = scope["headers"]
        parent = None  # most requests carry no trace context: skip the propagators' work
        for name, _ in headers:
            if name in self.propagated:
                parent = propagate.extract(headers, getter=_GETTER)
                break
        span = self.tracing.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        trace_token = TRACE_ID.set(format(span.get_span_context().trace_id, "032x"))
        recorder = _StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(_ERROR)
            raise
        finally:
            route = scope.get("kit.route")
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", recorder.status)
            if recorder.status >= 500:
                span.set_status(_ERROR)
            span.end()
            TRACE_ID.reset(trace_token)
            context.detach(token)
