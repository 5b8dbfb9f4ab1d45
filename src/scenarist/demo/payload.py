"""Parsing of demo task payloads and upstream inputs.

Templates render every payload leaf to a string, so `parts: "3"` is as valid as
`parts: 3`. Every failure names the offending field so the task error is actionable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarist.demo.errors import DemoPayloadError

MAX_PARTS = 500  # far above any catalog bound; stops a typo from drawing 10**6 slides
MAX_TOPIC_CHARS = 20_000


def require_text(payload: Mapping[str, Any], field: str) -> str:
    """A non-blank string field, stripped."""
    value = payload.get(field)
    if value is None:
        raise DemoPayloadError(f"payload field {field!r} is required", field=field)
    if not isinstance(value, str):
        raise DemoPayloadError(
            f"payload field {field!r} must be a string, got {type(value).__name__}", field=field
        )
    text = value.strip()
    if not text:
        raise DemoPayloadError(f"payload field {field!r} must not be blank", field=field)
    if len(text) > MAX_TOPIC_CHARS:
        raise DemoPayloadError(
            f"payload field {field!r} is longer than {MAX_TOPIC_CHARS} characters", field=field
        )
    return text


def parse_count(
    payload: Mapping[str, Any],
    field: str,
    *,
    default: int | None = None,
    maximum: int = MAX_PARTS,
) -> int:
    """A positive integer field given as an int or a decimal string ("3", " 3 ")."""
    value = payload.get(field)
    if value is None or value == "":
        if default is None:
            raise DemoPayloadError(f"payload field {field!r} is required", field=field)
        return default
    number = _to_int(value, field)
    if not 1 <= number <= maximum:
        raise DemoPayloadError(
            f"payload field {field!r} must be between 1 and {maximum}, got {number}", field=field
        )
    return number


def _to_int(value: object, field: str) -> int:
    # bool is an int subclass; `part: true` is a template bug, not slide 1
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+]?\d{1,9}", value.strip()):
        return int(value.strip())
    raise DemoPayloadError(
        f"payload field {field!r} must be a positive integer, got {value!r}", field=field
    )


@dataclass(frozen=True, slots=True)
class PartPosition:
    """Which slide of how many: `part` is 1-based, like a task's copy index."""

    part: int
    parts: int


def parse_part_position(payload: Mapping[str, Any]) -> PartPosition:
    part = parse_count(payload, "part")
    parts = parse_count(payload, "parts")
    if part > parts:
        raise DemoPayloadError(
            f"payload field 'part' ({part}) must not exceed 'parts' ({parts})", field="part"
        )
    return PartPosition(part=part, parts=parts)


@dataclass(frozen=True, slots=True)
class UpstreamArtefact:
    """One upstream task's artefact: its task name, file and metadata."""

    task: str
    path: Path
    result: Mapping[str, Any]

    @property
    def mime(self) -> str:
        return str(self.result.get("mime", ""))

    @property
    def copy_index(self) -> int:
        """The trailing copy number of the task name ("slide_image_12" -> 12), else 0."""
        match = re.search(r"_(\d+)$", self.task)
        return int(match.group(1)) if match else 0


def upstream_artefacts(inputs: Sequence[Mapping[str, Any]]) -> list[UpstreamArtefact]:
    """Inputs that produced a file, validated; inputs without a result_ref are skipped
    because a task may depend on another only for ordering."""
    artefacts = []
    for position, item in enumerate(inputs):
        task = item.get("task")
        if not isinstance(task, str) or not task:
            raise DemoPayloadError(f"input #{position} has no task name", field="inputs")
        ref = item.get("result_ref")
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref:
            raise DemoPayloadError(
                f"input {task!r} has a malformed result_ref {ref!r}", field="inputs"
            )
        path = Path(ref)
        if not path.is_file():
            raise DemoPayloadError(
                f"input {task!r}: result_ref {ref!r} is not a readable file", field="inputs"
            )
        result = item.get("result")
        artefacts.append(
            UpstreamArtefact(task, path, result if isinstance(result, Mapping) else {})
        )
    return artefacts


def select_artefacts(
    artefacts: Sequence[UpstreamArtefact],
    *,
    mime_prefix: str,
    suffixes: tuple[str, ...],
    task_prefix: str = "",
) -> list[UpstreamArtefact]:
    """Artefacts of one kind, recognised by their metadata mime type, or failing that by
    file suffix or upstream task name (a worker in another language may omit the mime)."""

    def matches(artefact: UpstreamArtefact) -> bool:
        if artefact.mime:
            return artefact.mime.startswith(mime_prefix)
        if artefact.path.suffix.lower() in suffixes:
            return True
        return bool(task_prefix) and artefact.task.startswith(task_prefix)

    return [artefact for artefact in artefacts if matches(artefact)]
