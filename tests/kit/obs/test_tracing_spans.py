"""The server spans kit starts itself for the requests it sampled are the spans the SDK's tracer
would have started: same name, kind, attributes (limits applied), parent, flags, trace state,
status, events, resource and scope, seen by the span processors at start and at end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, Tracer, sampling
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kit.ops import logs
from kit.ops.tracing import Tracing, TracingMiddleware

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
RESOURCE = Resource.create({"service.name": "spans"})


@pytest.fixture(autouse=True)
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # spans go to each test's own exporter


class SDKDecides(sampling.Sampler):
    """Always on, but not a sampler kit mirrors: the SDK's start_span makes every span."""

    def should_sample(self, *args: Any, **kwargs: Any) -> sampling.SamplingResult:
        return sampling.ALWAYS_ON.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "sdk decides"


class Starts(SpanProcessor):
    """What a span processor sees when a span starts: the live span and the parent context."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any], context.Context | None]] = []

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        self.started.append((span.name, dict(span.attributes or {}), parent_context))


class Subclassed(Tracer):
    """A tracer kit does not start spans for itself (not the SDK's own class): its path."""


def provider(sampler: sampling.Sampler) -> tuple[SDKTracerProvider, InMemorySpanExporter, Starts]:
    spans = InMemorySpanExporter()
    starts = Starts()
    made = SDKTracerProvider(
        sampler=sampler, resource=RESOURCE, span_limits=SpanLimits(max_attribute_length=12)
    )
    made.add_span_processor(starts)
    made.add_span_processor(SimpleSpanProcessor(spans))
    return made, spans, starts


def kit_made(tracer: trace.Tracer) -> Tracing:
    tracing = Tracing("spans")
    tracing.use(tracer)
    return tracing


def subclassed(tracer: Any) -> Tracing:
    tracer.__class__ = Subclassed
    tracing = kit_made(tracer)
    assert tracing.head is not None
    assert tracing.sampled is None
    return tracing


def handler(
    status: int = 200, route: str | None = "/items/{item_id}", fail: bool = False
) -> Callable[..., Any]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if route is not None:
            scope["kit.route"] = route
        span = trace.get_current_span()  # what a handler adds to the request's span
        span.set_attribute("user.id", 7)
        span.add_event("looked up", {"rows": 1})
        if fail:
            raise LookupError("no such item")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def request(app: Any, headers: dict[str, str] | None = None) -> str | None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/items/7/with/a/long/path",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    seen: list[str | None] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        seen.append(logs.trace_id())

    try:
        asyncio.run(app(scope, receive, send))
    except LookupError:
        pass
    return seen[0] if seen else None


def content(span: ReadableSpan) -> dict[str, Any]:
    """Everything of an exported span but its own ids and times."""
    assert span.parent is None or span.parent.is_valid
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "parent": span.parent
        and (span.parent.trace_id, span.parent.span_id, span.parent.is_remote),
        "trace_flags": int(span.context.trace_flags),
        "trace_state": span.context.trace_state.to_header(),
        "is_remote": span.context.is_remote,
        "status": (span.status.status_code, span.status.description),
        "events": [
            (
                event.name,
                {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"},
            )
            for event in span.events
        ],
        "links": list(span.links),
        "resource": dict(span.resource.attributes),
        "scope": span.instrumentation_scope,
    }


CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "root": ({}, {}),
    "continued": ({}, {"traceparent": f"00-{TRACE}-{PARENT_SPAN}-01", "tracestate": "v=abc"}),
    "random flag": ({}, {"traceparent": f"00-{TRACE}-{PARENT_SPAN}-03"}),
    "server error": ({"status": 503}, {}),
    "raised": ({"fail": True}, {}),
    "no route": ({"route": None, "status": 404}, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_kit_started_span_is_the_sdks(case: str) -> None:
    options, headers = CASES[case]
    exported = {}
    for name, sampler, wrap in (
        ("kit", sampling.ParentBased(sampling.ALWAYS_ON), kit_made),
        ("sdk", SDKDecides(), kit_made),
        ("subclassed", sampling.ParentBased(sampling.ALWAYS_ON), subclassed),
    ):
        made, spans, starts = provider(sampler)
        tracing = wrap(made.get_tracer("kit"))
        assert (tracing.sampled is not None) is (name == "kit")
        logged = request(TracingMiddleware(handler(**options), tracing), headers)
        (span,) = spans.get_finished_spans()
        if logged is not None:
            assert logged == format(span.context.trace_id, "032x")
        if "traceparent" in headers:
            assert format(span.context.trace_id, "032x") == TRACE
        ((started, attributes, parent),) = starts.started
        assert started == "GET"
        assert attributes == {"http.request.method": "GET", "url.path": "/items/7/wit"}
        assert (parent is None) is ("traceparent" not in headers)
        exported[name] = content(span)
    assert exported["kit"] == exported["sdk"] == exported["subclassed"]
    kit = exported["kit"]
    assert kit["kind"] is trace.SpanKind.SERVER
    assert kit["attributes"]["url.path"] == "/items/7/wit"  # the provider's length limit
    assert kit["attributes"]["user.id"] == 7
    if case == "raised":
        assert kit["status"][0] is trace.StatusCode.ERROR
        assert [event[0] for event in kit["events"]] == ["looked up", "exception"]
        assert kit["events"][1][1]["exception.type"] == "LookupError"


def test_kit_started_span_carries_the_sdks_span_metrics_and_ids() -> None:
    made, spans, _ = provider(sampling.ALWAYS_ON)
    tracing = kit_made(made.get_tracer("kit"))
    for _ in range(3):
        request(TracingMiddleware(handler(), tracing))
    finished = spans.get_finished_spans()
    assert len({span.context.span_id for span in finished}) == 3
    assert len({span.context.trace_id for span in finished}) == 3
    assert all(span.parent is None and span.context.trace_flags.sampled for span in finished)
    assert all(span.end_time is not None and span.start_time is not None for span in finished)
    assert all(span.end_time >= span.start_time for span in finished)  # type: ignore[operator]
