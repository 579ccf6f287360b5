"""The request's context carried into work that runs after it: its request id, its trace.

Captured when the work is submitted (a task, a job), restored when it runs: log lines carry the
request id and the trace id, and with ``KIT_OTEL=1`` the work's span is a child of the request's
span (same trace), so its queries and outbound calls (with their ``traceparent``) belong there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from kit.ops import logs
from kit.ops.logs import REQUEST_ID, TRACE_ID


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if tracing is on and a span is current."""
    if logs.trace_id() is None:  # only kit.ops.tracing sets it: without it, nothing to carry
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class Carried:
    """What a piece of background work takes along from where it was submitted."""

    __slots__ = ("otel", "request_id")

    def __init__(self, request_id: str | None, otel: Any = None) -> None:
        self.request_id = request_id
        self.otel = otel  # an OpenTelemetry Context, or None (tracing off)

    @classmethod
    def capture(cls) -> Carried:
        """The current request id, and the current trace context when tracing is on."""
        if logs.trace_id() is None:
            return cls(REQUEST_ID.get())
        from opentelemetry import context

        return cls(REQUEST_ID.get(), context.get_current())

    @classmethod
    def from_traceparent(cls, request_id: str | None, parent: str | None) -> Carried:
        """For work stored outside the process (a job row): the parent from its header."""
        if parent is None:
            return cls(request_id)
        try:
            from opentelemetry import propagate
        except ImportError:  # stored by a process that traced, run by one that cannot
            return cls(request_id)
        return cls(request_id, propagate.extract({"traceparent": parent}))

    @contextlib.contextmanager
    def restored(
        self,
        span_name: str,
        attributes: Mapping[str, Any],
        *,
        tracing: bool,
        kind: str = "INTERNAL",
    ) -> Iterator[Any]:
        """Run inside: the request id set, and with ``tracing`` a span named ``span_name``,
        child of the carried context (a new trace when nothing was carried), made current and
        its trace id set for log lines. Yields the span (None without tracing)."""
        rid_token = REQUEST_ID.set(self.request_id)
        if not tracing:
            try:
                yield None
            finally:
                REQUEST_ID.reset(rid_token)
            return
        from opentelemetry import context, trace

        span = trace.get_tracer("kit").start_span(
            span_name,
            context=self.otel,
            kind=getattr(trace.SpanKind, kind),
            attributes=dict(attributes),
        )
        token = context.attach(trace.set_span_in_context(span, self.otel))
        trace_token = TRACE_ID.set(format(span.get_span_context().trace_id, "032x"))
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()
            TRACE_ID.reset(trace_token)
            context.detach(token)
            REQUEST_ID.reset(rid_token)


def mark_failed(span: Any, description: str, exc: BaseException | None = None) -> None:
    """Set an error status on ``span`` (None without tracing) for a failure that was handled."""
    if span is None:
        return
    from opentelemetry import trace

    if exc is not None:
        span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, description[:200]))
