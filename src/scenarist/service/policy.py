"""Tunable decisions of the service layer: retry backoff and request limits."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts of a failed task.

    The delay before attempt n+1 is `min(max_seconds, base_seconds * 2**(n-1))`, shortened
    by up to `jitter` of itself at random so a burst of failures does not retry in lockstep
    (the "equal jitter" of AWS's backoff study: never zero, never over the cap)."""

    base_seconds: float = 2.0
    max_seconds: float = 300.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw: float = min(self.max_seconds, self.base_seconds * 2.0 ** max(attempt - 1, 0))
        return raw * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may ask for; the API validates against the same values."""

    max_batch: int = 1000  # tasks per lease or batch completion
    max_submit_batch: int = 1000  # scenarios per POST /generate/batch
    max_submit_batch_tasks: int = 100_000  # their tasks together (one store call)
    min_lease_seconds: float = 1.0
    max_lease_seconds: float = 24 * 3600.0
    max_wait_seconds: float = 60.0  # long-poll of a lease
    recheck_seconds: float = 1.0  # long-poll re-checks at least this often (lost wake-ups)
    reap_batch: int = 500
    history_limit: int = 20  # ended runs kept per task (decision 60)
