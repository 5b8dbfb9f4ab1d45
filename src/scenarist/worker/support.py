"""Small pieces the worker loop is built from: backoff, slots, daemon handler threads."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import queue
import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

IDLE_THREAD_SECONDS = 10.0  # an idle handler thread waits this long for work, then exits


class Backoff:
    """Exponential backoff with equal jitter for reconnecting to the server."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.failures += 1
        raw = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return raw / 2 + self._rng.random() * raw / 2

    def reset(self) -> None:
        self.failures = 0


class Slots:
    """A counting pool that can hand out several slots at once (one lease per batch).
    Used from one event loop only, so checking and taking need no lock."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"concurrency must be at least 1, got {size}")
        self.size = size
        self.free = size
        self._freed = asyncio.Event()

    async def take(self, at_most: int) -> int:
        """Wait for at least one free slot, then take up to `at_most` of them."""
        while self.free <= 0:
            self._freed.clear()
            await self._freed.wait()
        taken = min(self.free, max(at_most, 1))
        self.free -= taken
        return taken

    def take_free(self, at_most: int) -> int:
        """Take up to `at_most` slots that are free now, without waiting."""
        taken = max(0, min(self.free, at_most))
        self.free -= taken
        return taken

    def give_back(self, count: int) -> None:
        if count > 0:
            self.free += count
            self._freed.set()

    @property
    def busy(self) -> int:
        return self.size - self.free


class DaemonThreads:
    """Runs calls on daemon threads, like `asyncio.to_thread`, but a sync handler that
    never returns cannot keep the process alive after the shutdown grace period has run
    out. Idle threads are reused (starting one costs more than a short handler); a call
    that blocks keeps its thread and the next call starts another."""

    def __init__(self, idle_seconds: float = IDLE_THREAD_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        # A queued call runs the function and returns what delivers its outcome.
        self._calls: queue.SimpleQueue[Callable[[], Callable[[], None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unclaimed = 0  # idle threads no queued call is promised to

    def run(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()

        def call() -> Callable[[], None]:
            try:
                value = context.run(function, *args)
            except BaseException as exc:  # bound now: `exc` is unset after the block
                return functools.partial(_settle, loop, future, exc, failed=True)
            return functools.partial(_settle, loop, future, value, failed=False)

        with self._lock:
            start = self._unclaimed == 0
            if not start:
                self._unclaimed -= 1
        self._calls.put(call)
        if start:
            threading.Thread(target=self._serve, name="scenarist-handler", daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._unclaimed > 0:  # nobody counts on this thread: retire it
                        self._unclaimed -= 1
                        return
                continue  # a call was promised to this thread and is on its way
            deliver = call()
            # Idle before the caller hears back: a caller that runs its next call as soon
            # as this one returns must find this thread, not start another.
            with self._lock:
                self._unclaimed += 1
            deliver()


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any, *, failed: bool
) -> None:
    def settle() -> None:
        if future.done():
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    # the loop is closed when the worker gave up on this handler: nobody is waiting
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
