"""Structured logging for workers: one JSON object a line when SCENARIST_LOG_JSON=1.

The worker attaches `task_id`, `scenario_id` and `service` to every record about a task
(through `extra`), so JSON lines can be filtered by task without parsing messages.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

CONTEXT_FIELDS = ("task_id", "scenario_id", "service", "attempt", "worker_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Human lines that still carry the task context at the end."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        )
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if context:
            text += f" [{context}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str | int = "INFO", *, json_lines: bool | None = None) -> None:
    """Install one stderr handler on the `scenarist` logger (idempotent)."""
    if json_lines is None:
        json_lines = os.environ.get("SCENARIST_LOG_JSON", "") in ("1", "true", "yes")
    logger = logging.getLogger("scenarist")
    for handler in list(logger.handlers):
        if getattr(handler, "_scenarist_worker", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler._scenarist_worker = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
