"""In-process wake-ups for long polls: committed writes notify the watch keys they touched.

Only watches of this process (and this store object) are woken: another process writing
the same database file cannot reach them, so they fall back to their timeout."""

from __future__ import annotations


def ready_key(service: str) -> str:
    return f"ready\x00{service}"


def events_key(scenario_id: str) -> str:
    return f"events\x00{scenario_id}"
