"""The handler result type and the file-writing helpers every handler shares.

Every artefact is written to a temporary sibling and moved into place with `os.replace`,
so a reader (the video handler, a download endpoint) never sees a half-written file and
a crashed attempt leaves no truncated artefact behind for the retry to trip over.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo handler hands back: the artefact's absolute path and JSON metadata."""

    result_ref: str
    result: dict[str, Any] = field(default_factory=dict)


def prepare_out_dir(out_dir: Path) -> Path:
    """Create `out_dir` if missing and return it absolute, so result_refs are absolute."""
    resolved = Path(out_dir).expanduser().resolve()
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


@contextmanager
def atomic_output(final_path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `final_path` (same suffix, so tools that pick a
    format by extension still work); move it into place only if the block succeeds."""
    temp_path = final_path.with_name(f".{final_path.stem}.{uuid.uuid4().hex}{final_path.suffix}")
    try:
        yield temp_path
        if not temp_path.is_file():
            raise FileNotFoundError(f"nothing was written to {temp_path}")
        os.replace(temp_path, final_path)
    finally:
        temp_path.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_metadata(path: Path, mime: str) -> dict[str, Any]:
    """The metadata every artefact carries: mime type, size and content hash."""
    return {"mime": mime, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
