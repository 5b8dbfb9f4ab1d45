"""A small incremental parser for `text/event-stream` (the WHATWG SSE format)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One dispatched event. `data` is the JSON-decoded payload when it parses."""

    event: str
    data: Any
    id: str | None = None


class SseParser:
    """Feed lines (without their line ending); a blank line dispatches the event."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment, used by servers as a keep-alive
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        if not self._data:
            self._event = ""
            return None
        raw = "\n".join(self._data)
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = raw
        event = ServerEvent(event=self._event or "message", data=data, id=self._id)
        self._event, self._data = "", []
        return event
