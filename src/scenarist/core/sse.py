"""Server-Sent Events wire format (pure encoding; the streams live in service/streams.py)."""

from __future__ import annotations

import json
from typing import Any

RETRY_MILLISECONDS = 2000  # how long a browser's EventSource waits before reconnecting


def encode_sse(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def encode_retry() -> bytes:
    return f"retry: {RETRY_MILLISECONDS}\n\n".encode()


HEARTBEAT_COMMENT = b": heartbeat\n\n"  # keeps proxies from closing a quiet stream
