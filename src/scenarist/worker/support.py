"""Small pieces the worker loop is built from: backoff, slots, daemon-thread calls."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


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


def run_in_daemon_thread(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Like `asyncio.to_thread`, but on a daemon thread: a sync handler that never returns
    cannot keep the process alive after the shutdown grace period has run out."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def set_exception(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def set_result(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def target() -> None:
        try:
            value = context.run(function, *args)
        except BaseException as exc:
            settle(set_exception, exc)
        else:
            settle(set_result, value)

    def settle(callback: Callable[[Any], None], argument: Any) -> None:
        # the loop is closed when the worker gave up on this handler: nobody is waiting
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, argument)

    name = f"scenarist-handler-{getattr(function, '__name__', 'call')}"
    threading.Thread(target=target, name=name, daemon=True).start()
    return future
