"""Errors raised by the demo media layer.

Both classes join the project's hierarchy (`ScenaristError`, so they carry a `field`) and
a builtin (`ValueError` / `RuntimeError`), so a worker SDK that only knows builtins still
tells a bad payload (never worth retrying) from a failed tool run (maybe worth retrying).
"""

from __future__ import annotations

from scenarist.core.errors import ScenaristError


class DemoPayloadError(ScenaristError, ValueError):
    """A payload field or an upstream input is missing or malformed; `field` names it."""

    code = "invalid-demo-payload"


class MediaToolError(ScenaristError, RuntimeError):
    """An external media program (ffmpeg, espeak-ng) failed, timed out or wrote nothing."""

    code = "media-tool-failed"
