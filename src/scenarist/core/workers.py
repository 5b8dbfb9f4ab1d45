"""The workers registry's rules: what a worker may say about itself, and when it is stale.

Every lease records its caller (`WorkerSighting`), every heartbeat refreshes it; the
store keeps one `WorkerRecord` per worker id. Labels are what a worker says it has (a
GPU model, a warm model); they are bounded here so one worker cannot bloat the registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scenarist.core.errors import ParamError

MAX_LABELS = 16
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 128
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)

# A worker is stale after this many of its long polls went by without a call from it; a
# worker that polls without waiting (or briefly) gets at least `MIN_POLL_SECONDS` a poll.
STALE_POLLS = 3
MIN_POLL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class WorkerSighting:
    """What one lease says about its caller."""

    worker_id: str
    services: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    sdk_version: str | None = None
    poll_seconds: float = 0.0  # the long poll it asked for


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as the store knows it: its last lease's sighting, first and last seen,
    and its tasks processing now (counted from the tasks when read)."""

    worker_id: str
    services: tuple[str, ...]
    labels: Mapping[str, str]
    sdk_version: str | None
    poll_seconds: float
    first_seen: float
    last_seen: float
    in_flight: int = 0


def check_labels(labels: Mapping[str, str], *, field: str = "labels") -> dict[str, str]:
    """The labels as a plain dict, or ParamError naming the offending entry."""
    if len(labels) > MAX_LABELS:
        raise ParamError(f"at most {MAX_LABELS} labels, got {len(labels)}", field=field)
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key) or len(key) > MAX_LABEL_KEY:
            raise ParamError(
                f"label name {key!r} must be 1..{MAX_LABEL_KEY} letters, digits, '_', '.' "
                "or '-', starting with a letter or digit",
                field=field,
            )
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            raise ParamError(
                f"label {key!r} must be a string of at most {MAX_LABEL_VALUE} characters",
                field=f"{field}.{key}",
            )
        checked[key] = value
    return checked


def stale_after(record: WorkerRecord) -> float:
    """Seconds without a call after which the worker counts as stale."""
    return STALE_POLLS * max(record.poll_seconds, MIN_POLL_SECONDS)


def is_stale(record: WorkerRecord, *, now: float) -> bool:
    return now - record.last_seen > stale_after(record)


def live_per_service(records: Sequence[WorkerRecord], *, now: float) -> dict[str, int]:
    """How many live (not stale) workers serve each service."""
    counts: dict[str, int] = {}
    for record in records:
        if is_stale(record, now=now):
            continue
        for service in record.services:
            counts[service] = counts.get(service, 0) + 1
    return counts
