"""OpenTelemetry tracing, on with ``KIT_OTEL=1`` (and the standard ``OTEL_*`` variables).

Off, nothing here is imported and requests pass no tracing code. On: a server span per request
named by its route template, a client span per asyncpg query (from asyncpg's query logger, so
one per query, never per row), the trace id on every log line and access line, and
``TracingTransport`` for outbound HTTP (a client span and the ``traceparent`` header).

The tracer provider is the one the application installed (``trace.set_tracer_provider``), or
one kit builds per worker: sampler from ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``,
resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name defaults to
the app's title) and exporter from ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``).

When that sampler is one of the standard ones (``always_on``, ``always_off``, ``traceidratio``
and their ``parentbased_`` forms), kit takes the sampling decision itself before the SDK is
touched (``HeadSampler``): only sampled requests create SDK spans; the others carry a
non-recording span, so the trace id still reaches the logs and ``traceparent`` still goes out,
with the sampled flag off. Any other sampler decides in the SDK, for every request.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar, Token
from random import getrandbits
from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate, trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.ops.logs import TRACE_ID, use_trace_id
from kit.parts import Part
from kit.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

__all__ = [
    "EXPORTERS",
    "HeadSampler",
    "Tracing",
    "TracingMiddleware",
    "check_settings",
    "head_sampler",
    "tracing_part",
]

EXPORTERS = ("otlp", "console", "none")
_ERROR = Status(StatusCode.ERROR)
_RATIO_BITS = (1 << 64) - 1  # TraceIdRatioBased decides on the trace id's low 64 bits
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED = TraceFlags.SAMPLED
# W3C Trace Context level 2 (the trace id's right 7 bytes are random), in SDKs that set it
_RANDOM_TRACE_ID: int = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)


class HeadSampler:
    """The standard samplers' decision, taken by kit from the trace id and the parent's flag."""

    __slots__ = ("bound", "parent_based")

    def __init__(self, bound: int, parent_based: bool) -> None:
        self.bound = bound  # sampled when the trace id's low 64 bits are below it
        self.parent_based = parent_based

    def sampled(self, trace_id: int, parent: SpanContext | None) -> bool:
        if parent is not None and self.parent_based:
            return parent.trace_flags.sampled
        return trace_id & _RATIO_BITS < self.bound


def head_sampler(sampler: Any) -> HeadSampler | None:
    """kit's copy of the SDK ``sampler``, or None when kit cannot take its decision (a custom
    sampler, or ParentBased with delegates of its own): then the SDK decides every request."""
    from opentelemetry.sdk.trace import sampling

    parent_based = isinstance(sampler, sampling.ParentBased)
    if parent_based:
        delegates = (
            sampler._remote_parent_sampled,
            sampler._remote_parent_not_sampled,
            sampler._local_parent_sampled,
            sampler._local_parent_not_sampled,
        )
        if delegates != (sampling.ALWAYS_ON, sampling.ALWAYS_OFF) * 2:
            return None
        sampler = sampler._root
    if sampler is sampling.ALWAYS_ON:
        return HeadSampler(_RATIO_BITS + 1, parent_based)
    if sampler is sampling.ALWAYS_OFF:
        return HeadSampler(0, parent_based)
    if type(sampler) is sampling.TraceIdRatioBased:
        return HeadSampler(sampler.bound, parent_based)
    return None


class _DecidedIds:
    """The recording tracer's ids: a new trace takes the id kit decided on (so that the trace
    id satisfies the ratio, as other services' ratio samplers expect), else the SDK's own."""

    def __init__(self, ids: Any) -> None:
        self.ids = ids
        self.pending = threading.local()  # one event loop per thread on free-threaded builds

    def decided(self, trace_id: int) -> None:
        self.pending.trace_id = trace_id  # taken by the start_span that follows, on this thread

    def generate_trace_id(self) -> int:
        trace_id: int = getattr(self.pending, "trace_id", 0)
        self.pending.trace_id = 0
        return trace_id or int(self.ids.generate_trace_id())

    def generate_span_id(self) -> int:
        return int(self.ids.generate_span_id())

    def is_trace_id_random(self) -> bool:
        # kit's ids are random too (getrandbits); the SDK sets W3C's random flag by this
        return bool(getattr(self.ids, "is_trace_id_random", lambda: False)())


def _recording_copy(tracer: Any) -> Any:
    """The SDK ``tracer`` with a sampler that records every span it starts: kit has decided."""
    from opentelemetry.sdk.trace import sampling

    recording = copy.copy(tracer)
    recording.sampler = sampling.ALWAYS_ON
    recording.id_generator = _DecidedIds(tracer.id_generator)
    return recording


class _SampledSpans:
    """Starts the server span of a request kit sampled as the SDK tracer's ``start_span`` would
    (span id from its id generator, its flags, trace state, resource, scope, limits and span
    processors, its span metrics) on the trace id kit decided on, without asking the SDK's
    sampler again and without the rest of its per-call work."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry.sdk.trace import Span
        from opentelemetry.sdk.trace.sampling import Decision

        class ServerSpan(Span):  # the SDK's Span is built only through a subclass
            pass

        self.span = ServerSpan
        self.tracer = tracer
        self.span_id = tracer.id_generator.generate_span_id
        self.metrics = tracer._tracer_metrics
        self.decision = Decision.RECORD_AND_SAMPLE
        self.options = {
            "sampler": tracer.sampler,
            "resource": tracer.resource,
            "span_processor": tracer.span_processor,
            "instrumentation_info": tracer.instrumentation_info,
            "limits": tracer._span_limits,
            "instrumentation_scope": tracer._instrumentation_scope,
        }
        # kit's trace ids are random (getrandbits): the flag says so when the SDK's would
        random_ids = getattr(tracer.id_generator, "is_trace_id_random", lambda: False)()
        self.root_flags = TraceFlags(_SAMPLED | (_RANDOM_TRACE_ID if random_ids else 0))

    @classmethod
    def of(cls, tracer: Any) -> _SampledSpans | None:
        """None when ``tracer`` is not the SDK's own as kit knows it: then it starts the spans."""
        from opentelemetry.sdk.trace import Tracer

        needed = ("_tracer_metrics", "_span_limits", "_instrumentation_scope", "_is_enabled")
        if type(tracer) is not Tracer or not all(hasattr(tracer, n) for n in needed):
            return None
        return cls(tracer)

    def start(
        self,
        name: str,
        trace_id: int,
        remote: SpanContext | None,
        parent: context.Context | None,
        attributes: dict[str, Any],
    ) -> trace.Span:
        tracer = self.tracer
        if not tracer._is_enabled():  # the SDK's tracer configurator turned this tracer off
            span: trace.Span = tracer.start_span(
                name, context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
            return span
        if remote is None:
            flags = self.root_flags
            state = None
        else:
            flags = TraceFlags(_SAMPLED | (remote.trace_flags & _RANDOM_TRACE_ID))
            state = remote.trace_state
        span = self.span(
            name,
            SpanContext(trace_id, self.span_id(), False, flags, state),
            remote,
            attributes=attributes,
            kind=SpanKind.SERVER,
            record_end_metrics=self.metrics.start_span(remote, self.decision),
            **self.options,
        )
        span.start(parent_context=parent)
        return span


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
        # Set per worker by the lifespan when the SDK's sampler is a standard one: kit decides,
        # and sampled requests' spans start from ``recording``.
        self.head: HeadSampler | None = None
        self.recording: trace.Tracer = self.tracer
        self.sampled: _SampledSpans | None = None

    def use(self, tracer: trace.Tracer) -> None:
        """Trace with ``tracer``; decide sampling in kit when its sampler allows that."""
        self.tracer = tracer
        sampler = getattr(tracer, "sampler", None)
        self.head = head_sampler(sampler) if sampler is not None else None
        self.recording = _recording_copy(tracer) if self.head is not None else tracer
        self.sampled = _SampledSpans.of(tracer) if self.head is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        provider = None
        if trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider":
            provider = _build_provider(self.service_name)  # in the worker: it starts a thread
            trace.set_tracer_provider(provider)
        self.use(trace.get_tracer("kit"))
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
        tracer = self.tracer
        if parent is not trace.INVALID_SPAN:
            if not parent.is_recording():
                return  # the request was not sampled: neither is its query
            tracer = self.recording  # sampled by kit: the SDK's sampler must not drop its part
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
        span = tracer.start_span(
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


def _context_var() -> ContextVar[context.Context] | None:
    """The ContextVar behind OpenTelemetry's current context when it is the standard one
    (``OTEL_PYTHON_CONTEXT`` unset): setting it is what ``context.attach`` does."""
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    standard = isinstance(runtime, ContextVarsRuntimeContext) and isinstance(var, ContextVar)
    return var if standard else None


_CURRENT = _context_var()
# the key trace.set_span_in_context stores the span under
(_SPAN_KEY,) = trace.set_span_in_context(trace.INVALID_SPAN, context.Context()).keys()


# the request's trace id (an int) in the context kit attaches: what log lines read (trace_id())
_TRACE_KEY = "kit.trace_id"


def _attach(span: trace.Span, parent: context.Context | None, trace_id: int) -> Token[Any]:
    """``context.attach`` of ``parent`` with ``span`` current and ``trace_id`` under
    _TRACE_KEY, in one call, not eight."""
    if _CURRENT is None:
        values = trace.set_span_in_context(span, parent)
        return context.attach(context.set_value(_TRACE_KEY, trace_id, values))
    values = parent if parent is not None else _CURRENT.get()
    return _CURRENT.set(context.Context({**values, _SPAN_KEY: span, _TRACE_KEY: trace_id}))


def _detach(token: Token[Any]) -> None:
    if _CURRENT is None:
        context.detach(token)
    else:
        _CURRENT.reset(token)  # the coroutine that set it: its context is the same


def _trace_id() -> str | None:
    """TRACE_ID's value (set for tasks and jobs), else the traced request's trace id as 32 hex
    digits: made when a line asks, not per request."""
    tid = TRACE_ID.get()
    if tid is not None:
        return tid
    values = _CURRENT.get() if _CURRENT is not None else context.get_current()
    request = values.get(_TRACE_KEY)
    return None if request is None else request.to_bytes(16, "big").hex()  # type: ignore[attr-defined]


use_trace_id(_trace_id)


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


class _Unsampled(NonRecordingSpan):
    """The span of a request kit did not sample. Its span context (and span id) is made when
    something asks for it, an outbound call's ``traceparent``: most requests never do."""

    def __init__(self, trace_id: int, trace_state: TraceState | None) -> None:
        self._trace_id = trace_id
        self._trace_state = trace_state
        self._made: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        made = self._made
        if made is None:
            span_id = getrandbits(64) or 1
            made = SpanContext(self._trace_id, span_id, False, _NOT_SAMPLED, self._trace_state)
            self._made = made
        return made

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


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
        headers = scope["headers"]
        parent = None  # most requests carry no trace context: skip the propagators' work
        for name, _ in headers:
            if name in self.propagated:
                parent = propagate.extract(headers, getter=_GETTER)
                break
        method = scope["method"]
        head = self.tracing.head
        if head is None:  # a sampler kit cannot mirror: the SDK decides
            span = self._start(self.tracing.tracer, method, scope["path"], parent)
            await self._traced(span, method, scope, receive, send, parent)
            return
        remote = None
        if parent is not None:
            remote = trace.get_current_span(parent).get_span_context()
            if not remote.is_valid:
                remote = None
        if remote is None:
            trace_id = getrandbits(128) or 1
            sampled = trace_id & _RATIO_BITS < head.bound  # head.sampled(trace_id, None)
        else:
            trace_id = remote.trace_id
            sampled = head.sampled(trace_id, remote)
        if sampled:
            spans = self.tracing.sampled
            attributes = {"http.request.method": method, "url.path": scope["path"]}
            if spans is not None:
                span = spans.start(method, trace_id, remote, parent, attributes)
            else:  # a tracer kit does not start spans for: it starts them, on kit's trace id
                recording = self.tracing.recording
                if remote is None:
                    recording.id_generator.decided(trace_id)  # type: ignore[attr-defined]
                span = self._start(recording, method, scope["path"], parent)
            await self._traced(span, method, scope, receive, send, parent)
            return
        # Not sampled: no SDK span, but the context names the trace so that logs carry its id
        # and outbound calls send traceparent with the sampled flag off.
        span = _Unsampled(trace_id, remote.trace_state if remote is not None else None)
        token = _attach(span, parent, trace_id)
        try:
            await self.app(scope, receive, send)
        finally:
            _detach(token)

    @staticmethod
    def _start(
        tracer: trace.Tracer, method: str, path: str, parent: context.Context | None
    ) -> trace.Span:
        attributes = {"http.request.method": method, "url.path": path}
        return tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )

    async def _traced(
        self,
        span: trace.Span,
        method: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        parent: context.Context | None,
    ) -> None:
        token = _attach(span, parent, span.get_span_context().trace_id)
        recorder = _StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(_ERROR)
            raise
        finally:
            status = recorder.status
            route = scope.get("kit.route")
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attributes({"http.route": route, "http.response.status_code": status})
            else:
                span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(_ERROR)
            span.end()
            _detach(token)
