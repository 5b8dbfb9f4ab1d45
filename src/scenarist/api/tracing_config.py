"""Whether to export traces, from the standard OTEL_* variables (decision 43), without
importing the OpenTelemetry SDK: most deployments export none, and the SDK is an extra.

Traces are on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
set (OTLP over HTTP; the exporter reads its other OTEL_EXPORTER_OTLP_* variables itself)
or `OTEL_TRACES_EXPORTER=console`; `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`
switch them off. `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_TRACES_SAMPLER`
apply as the SDK defines them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from scenarist.service.attempt_spans import SpanSink

TRACING_EXTRA_HINT = "install the tracing extra: pip install 'scenarist[tracing]'"


class SubmitSpan(Protocol):
    header: str  # the traceparent of the submit span, stored with the scenario

    def scenario(self, scenario_id: str, created: bool) -> None: ...


class Tracing(SpanSink, Protocol):
    """What the app needs from tracing: the submit span, attempt spans, a final flush."""

    def submit_span(
        self, template: str, incoming: str | None
    ) -> AbstractContextManager[SubmitSpan]: ...

    def shutdown(self) -> None: ...


def exporter_wanted(environ: Mapping[str, str]) -> str | None:
    """ "otlp", "console", or None (traces off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "console":
        return "console"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if exporter == "otlp" and endpoint else None


def tracing_from_env(environ: Mapping[str, str]) -> Tracing | None:
    """The exporting tracer the variables ask for; None when they ask for none. A
    ValueError says so in one line when they ask for one but the SDK is not installed."""
    exporter = exporter_wanted(environ)
    if exporter is None:
        return None
    try:
        from scenarist.api.tracing import exporting_tracing  # noqa: PLC0415 (the SDK: extra)
    except ImportError as exc:
        raise ValueError(f"OTEL_* variables ask for traces, but {exc.name} is missing: "
                         f"{TRACING_EXTRA_HINT}") from None  # fmt: skip
    return exporting_tracing(exporter)
