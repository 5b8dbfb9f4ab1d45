"""The SDK runs a handler inside its task's trace context (sync on a thread, async on the
loop), and leaves a handler without a traceparent untouched."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry import trace

from scenarist.worker.tracing import continue_trace

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def current_ids() -> tuple[int, int]:
    context = trace.get_current_span().get_span_context()
    return context.trace_id, context.span_id


EXPECTED = (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)


def test_a_sync_handler_on_another_thread_sees_the_task_span_as_its_parent() -> None:
    seen: list[tuple[int, int]] = []
    traced = continue_trace(lambda: seen.append(current_ids()), PARENT)
    worker = threading.Thread(target=traced)
    worker.start()
    worker.join()
    assert seen == [EXPECTED]
    assert current_ids() == (0, 0)  # nothing leaks into the caller's context


def test_an_async_handler_sees_it_too() -> None:
    async def handler() -> tuple[int, int]:
        return current_ids()

    assert asyncio.run(continue_trace(handler, PARENT)()) == EXPECTED


def test_without_a_traceparent_the_handler_is_itself() -> None:
    def handler() -> None:
        return None

    assert continue_trace(handler, None) is handler
    assert continue_trace(handler, "") is handler
