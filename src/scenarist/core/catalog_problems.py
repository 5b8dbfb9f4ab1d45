"""Collecting a catalog's problems, so that one load reports all of them.

Checks raise a CatalogError at the first thing wrong in what they look at; a `recover()`
block marks a point where checking can go on after such an error (the next parameter,
task, field or dependency), and keeps the error. The load raises them all at its end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from scenarist.core.errors import CatalogError

T = TypeVar("T")


class Problems:
    def __init__(self) -> None:
        self.errors: list[CatalogError] = []

    @contextmanager
    def recover(self) -> Iterator[None]:
        """Keep a CatalogError raised inside the block and carry on after it."""
        try:
            yield
        except CatalogError as exc:
            self.errors.extend(exc.errors)

    def checked(self, check: Callable[[], T], fallback: T) -> T:
        """`check()`, or `fallback` (with the problem kept) when it raises a CatalogError."""
        with self.recover():
            return check()
        return fallback

    def raise_if_any(self) -> None:
        if self.errors:
            raise CatalogError.collect(self.errors)
