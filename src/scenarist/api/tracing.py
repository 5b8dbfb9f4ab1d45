"""OpenTelemetry traces (decision 43), built with the SDK (the `tracing` extra; imported
only when traces are on, see tracing_config.py).

The submit span is an ordinary SDK span: `POST /generate` continues an incoming
`traceparent` or starts a trace. Attempt spans (service/attempt_spans.py) end in whatever
process ends the attempt, long after (and often far from) the lease that started it, so
they are handed to the span processor as finished `ReadableSpan`s with the ids derived
from the task, instead of being started here and ended there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from scenarist import __version__
from scenarist.core.trace_ids import TraceParent
from scenarist.service.attempt_spans import AttemptSpan

SCOPE = "scenarist"


def _nanoseconds(seconds: float) -> int:
    return int(seconds * 1e9)


class StartedSubmit:
    """The submit span of one `POST /generate`, while it runs."""

    def __init__(self, span: Span) -> None:
        self.span = span
        context = span.get_span_context()
        self.header = TraceParent(
            context.trace_id, context.span_id, int(context.trace_flags)
        ).header()

    def scenario(self, scenario_id: str, created: bool) -> None:
        self.span.set_attribute("scenarist.scenario_id", scenario_id)
        self.span.set_attribute("scenarist.created", created)


class OtelTracing:
    """Spans into one processor (a batch exporter in production, a simple processor with
    the SDK's in-memory exporter in tests)."""

    def __init__(self, processor: SpanProcessor, resource: Resource | None = None) -> None:
        self.resource = resource or Resource.create({"service.name": "scenarist"})
        self.processor = processor
        self.provider = TracerProvider(resource=self.resource)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer(SCOPE, __version__)
        self.scope = InstrumentationScope(SCOPE, __version__)
        self.propagator = TraceContextTextMapPropagator()

    @contextmanager
    def submit_span(self, template: str, incoming: str | None) -> Iterator[StartedSubmit]:
        parent = self.propagator.extract({"traceparent": incoming} if incoming else {})
        with self.tracer.start_as_current_span(
            f"submit {template}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"scenarist.template": template},
        ) as span:
            yield StartedSubmit(span)

    def emit(self, span: AttemptSpan) -> None:
        flags = TraceFlags(span.context.flags)
        trace_id = span.context.trace_id
        finished = ReadableSpan(
            name=span.name,
            context=SpanContext(trace_id, span.context.span_id, False, flags),
            parent=SpanContext(trace_id, span.parent_span_id, False, flags),
            resource=self.resource,
            attributes=dict(span.attributes),
            events=[Event(e.name, dict(e.attributes), _nanoseconds(e.at)) for e in span.events],
            kind=SpanKind.CONSUMER,
            status=Status(StatusCode.OK)
            if span.error is None
            else Status(StatusCode.ERROR, span.error),
            start_time=_nanoseconds(span.start),
            end_time=_nanoseconds(span.end),
            instrumentation_scope=self.scope,
        )
        self.processor.on_end(finished)

    def shutdown(self) -> None:
        self.provider.shutdown()


def exporting_tracing(exporter: str) -> OtelTracing:
    """Resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (default service name
    scenarist); the OTLP exporter reads its own OTEL_EXPORTER_OTLP_* variables."""
    chosen: SpanExporter
    if exporter == "console":
        chosen = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        chosen = OTLPSpanExporter()
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "scenarist"}))
    return OtelTracing(BatchSpanProcessor(chosen), resource)
