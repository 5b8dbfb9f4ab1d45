"""HTTP request metrics: a count by method, route and status, and a duration histogram
by method and route.

The route label is the route's TEMPLATE (`/tasks/{task_id}/complete`), never the path a
client sent, and methods outside the standard few are counted as `other`: every label
takes a bounded set of values whatever clients send, so the number of series cannot grow
with traffic. A request no route matched is labelled `unmatched`. The duration runs
until the response is sent, so an event stream counts for as long as it stays open.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "scenarist_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "scenarist_http_request_duration_seconds",
            "Time from a request's arrival to its response's end, by route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        # `labels()` validates and locks on every call; a request is too cheap for that.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        counter = self._counted.get((method, route, status))
        if counter is None:
            counter = self.requests.labels(method, route, str(status))
            self._counted[method, route, status] = counter
        counter.inc()
        timer = self._timed.get((method, route))
        if timer is None:
            timer = self._timed[method, route] = self.duration.labels(method, route)
        timer.observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template, which routing left in the scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestMetricsMiddleware:
    """Pure ASGI (no response buffering, so event streams pass through untouched)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.observe(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )
