"""FastAPI's built-in OpenTelemetry hook is switched off: a request never consults the
global tracer or meter provider (it used to, on every request, costing CPU for nothing)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider


class CountingTracerProvider(NoOpTracerProvider):
    """A configured (not deferred) provider that counts the tracers asked of it."""

    def __init__(self) -> None:
        self.requests = 0

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        self.requests += 1
        return super().get_tracer(*args, **kwargs)


class CountingMeterProvider(NoOpMeterProvider):
    def __init__(self) -> None:
        self.requests = 0

    def get_meter(self, *args: Any, **kwargs: Any) -> metrics.Meter:
        self.requests += 1
        return super().get_meter(*args, **kwargs)


async def test_requests_do_not_reach_opentelemetry(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracers, meters = CountingTracerProvider(), CountingMeterProvider()
    looked_up: list[str] = []

    def tracer_provider() -> trace.TracerProvider:
        looked_up.append("tracer")
        return tracers

    def meter_provider() -> metrics.MeterProvider:
        looked_up.append("meter")
        return meters

    monkeypatch.setattr(trace, "get_tracer_provider", tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", meter_provider)
    for _ in range(3):
        assert (await client.get("/health")).status_code == 200
    assert looked_up == []
    assert tracers.requests == meters.requests == 0
