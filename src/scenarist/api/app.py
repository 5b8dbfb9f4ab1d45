"""The composition root of the HTTP service: `create_app` builds everything an app needs.

The lifespan opens the store, builds the orchestrator (unless one is passed in, as tests
do), and runs two background loops until shutdown: lease reaping + retention purge, and
scenario-end callback delivery.

Shutdown starts with the server's exit signal, not with the lifespan's end: uvicorn
sends the lifespan shutdown only once every connection has closed, so a long poll would
hold the shutdown for its whole wait and then be cancelled mid-wait. The lifespan
therefore hooks the exit signals and ends every waiting long poll with an empty answer
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from types import FrameType
from typing import Any

import httpcore
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig

from scenarist import __version__
from scenarist.api.auth import Authenticator
from scenarist.api.callback_policy import policy_for
from scenarist.api.callback_transport import callback_pool
from scenarist.api.callbacks import CallbackSender
from scenarist.api.deps import AppServices
from scenarist.api.limits import BodyLimitMiddleware, reject_unknown_query
from scenarist.api.metrics import PrometheusObserver
from scenarist.api.openapi import install_openapi, readable_operation_id
from scenarist.api.problems import install_problem_handlers
from scenarist.api.request_metrics import RequestMetricsMiddleware
from scenarist.api.routers import (
    cache,
    generate,
    generate_batch,
    metrics,
    queues,
    root,
    scenarios,
    tasks,
    usage,
    workers,
)
from scenarist.api.tracing_config import Tracing, tracing_from_env
from scenarist.core.catalog import Catalog, load_catalog
from scenarist.dashboard import create_dashboard_router
from scenarist.service.attempt_spans import AttemptSpans
from scenarist.service.maintenance import run_maintenance
from scenarist.service.observer import NullObserver
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.policy import Limits
from scenarist.settings import Settings
from scenarist.storage import open_store

STOP_TIMEOUT = 5.0
EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# FastAPI's built-in OpenTelemetry hook is on by default and, even with no provider
# configured, asks the global providers on every request whether one appeared since.
# scenarist exports Prometheus metrics and logs instead; switching every signal off here
# makes the hook a constant check.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
log = logging.getLogger(__name__)
# CORS (opt-in, SCENARIST_CORS_ORIGINS): what a page on a listed origin may send and read.
# No credentials mode: the API authenticates by bearer header, never by cookie.
CORS_METHODS = ["GET", "POST", "PATCH"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
CORS_EXPOSED_HEADERS = ["Idempotent-Replayed", "Retry-After", "WWW-Authenticate"]

DESCRIPTION = """\
Turns a named scenario (a YAML template such as `CreateVideo`) plus parameters into a graph
of tasks, hands each task to its worker service once its dependencies have succeeded, and
tracks status and progress until the scenario ends.

Errors are RFC 9457 `application/problem+json` with a stable `type`
(`https://scenarist.dev/problems/<code>`). Malformed JSON is 400 `malformed-json`; a body
that is JSON but does not fit the schema is 422 `validation-failed`, naming the fields.
Times are POSIX seconds. `POST /generate` answers 201 on a new submission and 200 (with
`Idempotent-Replayed: true`) when an `Idempotency-Key` matched an earlier, identical one;
the key with a different request is 422 `idempotency-key-reused`. Request bodies must be
UTF-8 JSON and are strict: an unknown field or a value of another JSON type is 422, and
`fields` lists every offending field. operationIds are lowerCamelCase verb + noun.
"""


def create_app(
    settings: Settings | None = None,
    *,
    orchestrator: Orchestrator | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """`tracing`: where spans go (tests pass an in-memory one); None reads the OTEL_*
    variables (tracing_config.py), which usually ask for none."""
    settings = settings or Settings()
    observer = PrometheusObserver()
    tracing = tracing or tracing_from_env(os.environ)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            orch = orchestrator or await build_orchestrator(settings, observer, stack)
            if isinstance(orch.observer, NullObserver):
                orch.observer = observer
            if tracing is not None:
                orch.spans = AttemptSpans(orch.store, tracing)
                stack.callback(tracing.shutdown)
            catalog = orch.catalog if isinstance(orch.catalog, Catalog) else None
            app.state.services = AppServices(
                settings=settings,
                orchestrator=orch,
                catalog=catalog or load_catalog(settings.scenarios),
                authenticator=Authenticator(settings.tokens),
                metrics=observer,
                tracing=tracing,
            )
            pool = callback_pool(
                policy_for(settings.callback_allow), max_connections=settings.callback_concurrency
            )
            stack.push_async_callback(pool.aclose)
            stop = asyncio.Event()
            loops = [
                run_maintenance(orch, stop, interval=settings.reaper_interval),
                callback_sender(settings, orch, pool).run(stop),
            ]
            stack.push_async_callback(stop_loops, stop, [start_loop(c) for c in loops])
            stack.callback(orch.stop_waiting)
            stack.callback(on_exit_signal(orch.stop_waiting))
            try:
                yield
            finally:
                del app.state.services

    app = FastAPI(
        title="scenarist",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        telemetry=TELEMETRY_OFF,
        generate_unique_id_function=readable_operation_id,
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=observer.http)
    if settings.cors_origins:
        # Added last, so it is the outermost layer: refusals (413, 415) carry its headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
    # POST /generate first: every request is matched against the routes in this order,
    # and the submit path is the busiest (decision 74).
    routers = (generate, root, generate_batch, scenarios, tasks, queues, workers, usage)
    for module in (*routers, metrics, cache):
        app.include_router(module.router)
    install_openapi(app, auth_enabled=bool(settings.tokens))
    app.include_router(create_dashboard_router())
    return app


async def build_orchestrator(
    settings: Settings, observer: PrometheusObserver, stack: AsyncExitStack
) -> Orchestrator:
    catalog = load_catalog(settings.scenarios)
    options: dict[str, Any] = {
        "retention_seconds": settings.retention_seconds,
        "max_connections": settings.redis_max_connections,
        "pool_timeout": settings.redis_pool_timeout,
    }
    if settings.publish_lists:
        options.update(publish_lists=True, list_prefix=settings.list_prefix)
    store = await open_store(settings.store, **options)
    stack.push_async_callback(store.close)
    limits = Limits(
        max_wait_seconds=settings.lease_wait_max_seconds, history_limit=settings.history_limit
    )
    return Orchestrator(store, catalog, observer=observer, limits=limits)


def callback_sender(
    settings: Settings, orchestrator: Orchestrator, pool: httpcore.AsyncConnectionPool
) -> CallbackSender:
    secret = settings.callback_secret
    return CallbackSender(
        store=orchestrator.store,
        pool=pool,
        secret=secret.get_secret_value().encode() if secret else None,
        clock=orchestrator.clock,
        deadline=settings.callback_timeout,
        concurrency=settings.callback_concurrency,
        per_host=settings.callback_per_host,
        max_attempts=settings.callback_max_attempts,
        interval=settings.callback_interval,
    )


def on_exit_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` on the event loop when the process gets SIGINT or SIGTERM, then the
    handler that was there before (the server's, which starts its shutdown). Only where a
    handler is installed and only from the main thread (signals go nowhere else); returns
    the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}

    def handle(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is waiting
            loop.call_soon_threadsafe(callback)
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)

    hooked = [sig for sig, handler in previous.items() if callable(handler)]
    for sig in hooked:
        signal.signal(sig, handle)

    def undo() -> None:
        for sig in hooked:
            if signal.getsignal(sig) is handle:
                signal.signal(sig, previous[sig])

    return undo


def start_loop(loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.create_task(loop)
    task.add_done_callback(report_crash)
    return task


def report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background loop crashed", exc_info=task.exception())


async def stop_loops(stop: asyncio.Event, running: list[asyncio.Task[None]]) -> None:
    """Ask the loops to finish their round; cancel whatever is still busy after a while."""
    stop.set()
    _, pending = await asyncio.wait(running, timeout=STOP_TIMEOUT)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
