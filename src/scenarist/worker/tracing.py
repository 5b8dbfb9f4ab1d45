"""A handler continues its task's trace (decision 43): the lease answer carries each
attempt's W3C `traceparent`, and while the handler runs that context is current, so the
spans it starts with any OpenTelemetry tracer (and the HTTP calls of instrumented
clients) nest under the task's attempt span. Only the OpenTelemetry API is needed (it
comes with the base install); without a traceparent, or without the API, a handler runs
as it is, and nothing is imported."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def continue_trace(function: F, traceparent: str | None) -> F:
    """`function` run inside the remote context `traceparent` names (on whichever thread
    or task calls it), or `function` itself when there is nothing to continue."""
    if not traceparent:
        return function
    try:
        from opentelemetry import context as otel_context  # noqa: PLC0415 (only when traced)
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )
    except ImportError:
        return function
    remote = TraceContextTextMapPropagator().extract({"traceparent": traceparent})

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            token = otel_context.attach(remote)
            try:
                return await function(*args, **kwargs)
            finally:
                otel_context.detach(token)

        return traced_async  # type: ignore[return-value]

    @functools.wraps(function)
    def traced(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(remote)
        try:
            return function(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return traced  # type: ignore[return-value]
