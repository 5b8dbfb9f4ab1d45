"""Sync handlers' daemon threads: reused when idle, never shared with a call that blocks."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from scenarist.worker.support import DaemonThreads

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def thread_of_call() -> threading.Thread:
    return threading.current_thread()


def test_an_idle_thread_takes_the_next_call() -> None:
    async def scenario() -> list[threading.Thread]:
        threads = DaemonThreads()
        return [await threads.run(thread_of_call) for _ in range(300)]

    used = asyncio.run(scenario())
    assert len(set(used)) == 1
    assert used[0].daemon


def test_a_blocked_call_keeps_its_thread_and_the_next_call_gets_another() -> None:
    release = threading.Event()

    async def scenario() -> tuple[threading.Thread, threading.Thread]:
        threads = DaemonThreads()
        blocked = threads.run(lambda: (release.wait(10), threading.current_thread())[1])
        other = await asyncio.wait_for(threads.run(thread_of_call), 5)
        release.set()
        return await blocked, other

    blocked, other = asyncio.run(scenario())
    assert blocked is not other


def test_results_errors_and_context_reach_the_caller() -> None:
    async def scenario() -> str:
        threads = DaemonThreads()
        REQUEST_ID.set("r-7")
        with pytest.raises(ValueError, match="bad input"):
            await threads.run(int, "bad input")
        return await threads.run(REQUEST_ID.get)

    assert asyncio.run(scenario()) == "r-7"


def test_idle_threads_retire() -> None:
    async def scenario() -> threading.Thread:
        threads = DaemonThreads(idle_seconds=0.05)
        used = await threads.run(thread_of_call)
        await asyncio.sleep(0.5)
        return used

    assert not asyncio.run(scenario()).is_alive()
