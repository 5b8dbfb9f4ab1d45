"""Per-plan rendering budget: a wall-clock deadline, size caps and operation counters.

The sandboxed environment is shared by every plan of a catalog; the budget of the plan
being rendered is found through a context variable, so concurrent renders (threads, async
tasks) never share counters and templates cannot reach the budget object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from scenarist.core.errors import RenderError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RenderLimits:
    max_leaf_chars: int = 64 * 1024  # one rendered string leaf
    max_plan_chars: int = 1024 * 1024  # all rendered leaves of one plan together
    max_seconds: float = 1.0  # wall clock for rendering one plan
    max_sequence: int = 10_000  # items of a range() or of a list built with `*`/`+`
    max_int_bits: int = 4096  # integers built with `*`/`**`
    max_iterations: int = 1_000_000  # loop iterations of one plan, all leaves together
    max_call_depth: int = 32  # nested macro / callable calls (stops recursion bombs)
    max_allocated_chars: int = 16 * 1024 * 1024  # strings built by operators and filters


class RenderBudget:
    """Mutable counters of one plan's rendering. Every check raises RenderError."""

    def __init__(self, limits: RenderLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline = clock() + limits.max_seconds
        self.rendered_chars = 0
        self.allocated_chars = 0
        self.iterations = 0
        self.call_depth = 0

    def tick(self) -> None:
        if self._clock() > self._deadline:
            raise RenderError(f"rendering took longer than {self.limits.max_seconds:g} s")

    def iterate(self, iterable: Iterable[T]) -> Iterator[T]:
        """Iterate with a deadline check and the plan's iteration budget on every item."""
        for item in iterable:
            self.iterations += 1
            if self.iterations > self.limits.max_iterations:
                raise RenderError(f"templates looped more than {self.limits.max_iterations} times")
            self.tick()
            yield item

    def check_chars(self, size: int, what: str) -> None:
        """A string of `size` characters is about to be built: refuse it before it exists."""
        self.tick()
        if size > self.limits.max_leaf_chars:
            raise RenderError(
                f"{what} would be {size} characters, over the limit of {self.limits.max_leaf_chars}"
            )
        self.allocated_chars += size
        if self.allocated_chars > self.limits.max_allocated_chars:
            raise RenderError(
                f"templates built more than {self.limits.max_allocated_chars} characters"
            )

    def check_sequence(self, size: int, what: str) -> None:
        self.tick()
        if size > self.limits.max_sequence:
            raise RenderError(
                f"{what} would have {size} items, over the limit of {self.limits.max_sequence}"
            )

    def add_rendered(self, size: int) -> None:
        self.rendered_chars += size
        if self.rendered_chars > self.limits.max_plan_chars:
            raise RenderError(
                f"rendered payloads exceed {self.limits.max_plan_chars} characters in total"
            )


_ACTIVE: ContextVar[RenderBudget | None] = ContextVar("scenarist_render_budget", default=None)


def active_budget() -> RenderBudget:
    budget = _ACTIVE.get()
    if budget is None:
        raise RenderError("templates may only be rendered through a RenderSession")
    return budget


def activate(budget: RenderBudget) -> Any:
    return _ACTIVE.set(budget)


def deactivate(token: Any) -> None:
    _ACTIVE.reset(token)


def estimate_chars(value: object, limit: int) -> int:
    """Roughly how long `str(value)` is, without building it; stops counting past `limit`
    (so a list holding one big string ten thousand times costs a short walk, not gigabytes)."""
    total = 0
    stack: list[object] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool | int | float) or item is None:
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            for key, val in item.items():
                stack.extend((key, val))
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 64
    return total
