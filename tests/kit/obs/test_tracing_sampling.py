"""kit's own head sampler: the decision is taken before the SDK is touched, agrees with the SDK's
standard samplers, and an unsampled request still carries and propagates its trace context."""

from __future__ import annotations

import asyncio
import contextvars
import random
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kit.ops import logs
from kit.ops.tracing import Tracing, TracingMiddleware, head_sampler

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(autouse=True)
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # spans go to each test's own exporter


class Seen:
    """What the app saw of the trace context: the current span, the log field, traceparent."""

    def __init__(self) -> None:
        self.recording: bool | None = None
        self.trace_id: str | None = None
        self.carrier: dict[str, str] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.recording = trace.get_current_span().is_recording()
        self.trace_id = logs.trace_id()
        propagate.inject(self.carrier)  # what an outbound call would send
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def traced(sampler: sampling.Sampler) -> tuple[TracingMiddleware, Seen, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = Tracing("test")
    tracing.use(provider.get_tracer("kit"))
    seen = Seen()
    return TracingMiddleware(seen, tracing), seen, spans


def request(app: TracingMiddleware, headers: dict[str, str] | None = None) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/items/7",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    asyncio.run(app(scope, receive, send))


def traceparent(flags: str) -> str:
    return f"00-{TRACE}-{PARENT_SPAN}-{flags}"


def sampled_flag(carrier: dict[str, str]) -> bool:
    return bool(int(carrier["traceparent"].rsplit("-", 1)[1], 16) & 1)


def test_standard_samplers_are_decided_by_kit() -> None:
    ratio = head_sampler(sampling.ParentBasedTraceIdRatio(0.25))
    assert ratio is not None
    assert ratio.parent_based
    assert ratio.bound == sampling.TraceIdRatioBased(0.25).bound
    plain = head_sampler(sampling.TraceIdRatioBased(0.5))
    assert plain is not None
    assert not plain.parent_based
    assert head_sampler(sampling.ALWAYS_OFF) is not None
    assert head_sampler(sampling.DEFAULT_ON) is not None


def test_other_samplers_stay_with_the_sdk() -> None:
    class Custom(sampling.Sampler):
        def should_sample(self, *args: Any, **kwargs: Any) -> sampling.SamplingResult:
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE)

        def get_description(self) -> str:
            return "custom"

    assert head_sampler(Custom()) is None
    assert head_sampler(sampling.ParentBased(sampling.ALWAYS_ON, Custom())) is None
    # ParentBased whose unsampled-parent delegate samples anyway: not the standard rule
    assert (
        head_sampler(
            sampling.ParentBased(sampling.ALWAYS_OFF, remote_parent_not_sampled=sampling.ALWAYS_ON)
        )
        is None
    )


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_ratio_decision_matches_the_sdk(rate: float) -> None:
    ours = head_sampler(sampling.TraceIdRatioBased(rate))
    assert ours is not None
    sdk = sampling.TraceIdRatioBased(rate)
    ids = random.Random(29)
    for _ in range(2000):
        trace_id = ids.getrandbits(128)
        expected = sdk.should_sample(None, trace_id, "x").decision.is_sampled()
        assert ours.sampled(trace_id, None) is expected


def test_unsampled_root_has_no_sdk_span_but_a_trace_id_that_propagates() -> None:
    app, seen, spans = traced(sampling.DEFAULT_OFF)
    request(app)
    assert spans.get_finished_spans() == ()
    assert seen.recording is False
    assert seen.trace_id is not None
    assert len(seen.trace_id) == 32
    version, trace_id, span_id, flags = seen.carrier["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", seen.trace_id, "00")  # sampled flag off
    assert int(span_id, 16) != 0
    assert logs.trace_id() is None  # reset after the request


def test_sampled_root_is_an_sdk_span_named_by_the_log_trace_id() -> None:
    app, seen, spans = traced(sampling.DEFAULT_ON)
    request(app)
    (span,) = spans.get_finished_spans()
    assert span.kind is trace.SpanKind.SERVER
    assert seen.recording is True
    assert seen.trace_id == format(span.context.trace_id, "032x")
    assert sampled_flag(seen.carrier)


def test_incoming_sampled_flag_is_followed_by_a_parent_based_sampler() -> None:
    app, seen, spans = traced(sampling.ParentBasedTraceIdRatio(0.0))  # roots never sampled
    request(app, {"traceparent": traceparent("01")})
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN
    assert seen.trace_id == TRACE
    assert seen.carrier["traceparent"].startswith(f"00-{TRACE}-")
    assert sampled_flag(seen.carrier)


def test_incoming_unsampled_flag_is_propagated_with_its_trace_state() -> None:
    app, seen, spans = traced(sampling.DEFAULT_ON)  # roots always sampled
    request(app, {"traceparent": traceparent("00"), "tracestate": "vendor=abc"})
    assert spans.get_finished_spans() == ()
    assert seen.recording is False
    assert seen.trace_id == TRACE  # the caller's trace, in the logs
    _, trace_id, span_id, flags = seen.carrier["traceparent"].split("-")
    assert (trace_id, flags) == (TRACE, "00")
    assert span_id != PARENT_SPAN  # this service's own (unrecorded) span
    assert seen.carrier["tracestate"] == "vendor=abc"


def test_a_plain_ratio_sampler_ignores_the_parent_flag() -> None:
    app, seen, spans = traced(sampling.TraceIdRatioBased(0.0))
    request(app, {"traceparent": traceparent("01")})
    assert spans.get_finished_spans() == ()
    assert not sampled_flag(seen.carrier)
    app, seen, spans = traced(sampling.TraceIdRatioBased(1.0))
    request(app, {"traceparent": traceparent("00")})
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE


def test_invalid_traceparent_starts_a_new_trace() -> None:
    app, seen, spans = traced(sampling.DEFAULT_OFF)
    request(app, {"traceparent": "00-zzzz-00f067aa0ba902b7-01"})
    assert spans.get_finished_spans() == ()
    assert seen.trace_id is not None
    assert seen.trace_id != TRACE
    assert seen.carrier["traceparent"].split("-")[1] == seen.trace_id


def test_custom_sampler_still_decides_in_the_sdk() -> None:
    class EveryOther(sampling.Sampler):
        def __init__(self) -> None:
            self.calls = 0

        def should_sample(self, *args: Any, **kwargs: Any) -> sampling.SamplingResult:
            self.calls += 1
            decision = sampling.Decision.RECORD_AND_SAMPLE
            return sampling.SamplingResult(decision if self.calls % 2 else sampling.Decision.DROP)

        def get_description(self) -> str:
            return "every other"

    sampler = EveryOther()
    app, _, spans = traced(sampler)
    for _ in range(4):
        request(app)
    assert sampler.calls == 4
    assert len(spans.get_finished_spans()) == 2


def test_a_sampled_new_trace_keeps_the_id_the_ratio_was_decided_on() -> None:
    # Another service's plain ratio sampler decides on the same id: it must agree with ours.
    ratio = sampling.TraceIdRatioBased(0.5)
    app, _, spans = traced(sampling.ParentBasedTraceIdRatio(0.5))
    for _ in range(40):
        request(app)
    finished = spans.get_finished_spans()
    assert finished  # 40 requests at 50%: none sampled has a chance of 1e-12
    for span in finished:
        assert ratio.should_sample(None, span.context.trace_id, "x").decision.is_sampled()


def test_an_unsampled_request_names_one_span_in_every_outbound_call() -> None:
    # its span id is made when first asked for: every later call must carry the same one
    seen: list[dict[str, str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(3):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            seen.append(carrier)
        span = trace.get_current_span()
        assert not span.is_recording()
        assert repr(span).startswith("NonRecordingSpan(SpanContext(")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    provider = TracerProvider(sampler=sampling.DEFAULT_OFF)
    tracing = Tracing("test")
    tracing.use(provider.get_tracer("kit"))
    request(TracingMiddleware(app, tracing), {"tracestate": "vendor=abc"})
    assert len({carrier["traceparent"] for carrier in seen}) == 1
    _, trace_id, span_id, flags = seen[0]["traceparent"].split("-")
    assert (flags, len(trace_id), len(span_id)) == ("00", 32, 16)
    assert int(span_id, 16) != 0


def test_a_request_sets_one_context_variable_for_its_trace() -> None:
    # The trace id rides in the OpenTelemetry context kit attaches anyway: TRACE_ID stays
    # unset (a second ContextVar set and reset per request), yet log lines still read the id.
    app, seen, _ = traced(sampling.DEFAULT_OFF)
    inside: list[bool] = []
    handler = app.app

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        inside.append(logs.TRACE_ID in contextvars.copy_context())
        await handler(scope, receive, send)

    app.app = probe
    request(app)
    assert inside == [False]
    assert seen.trace_id is not None
    assert len(seen.trace_id) == 32
