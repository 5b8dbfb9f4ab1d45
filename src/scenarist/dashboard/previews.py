"""Previews of a task's result (an image, a sound, a video) in its details, and the
read-only route that serves files of the configured artefacts directory.

A result is previewed when its `result.mime` is image/*, audio/* or video/* and its
`result_ref` is either an http(s) URL on one of `preview_origins` (the page's CSP lists
exactly those for img-src and media-src) or a file under `artefacts_dir`, served from
/ui/artefacts/<path relative to it>. The route resolves the path (symlinks included) and
refuses anything outside the directory, hidden names, and files that are not media by
their extension; a file it serves carries a CSP that forbids it from running anything.
SVG is not served: it is a document that can carry script.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse

from scenarist.core.errors import ArtefactNotFoundError
from scenarist.core.model import Task
from scenarist.dashboard.context import Ctx, Seen
from scenarist.settings import browser_origin

ARTEFACTS_PATH = "/ui/artefacts/"
MEDIA_KINDS = {"image": "img", "audio": "audio", "video": "video"}
NOT_SERVED = frozenset({"image/svg+xml"})
FILE_CSP = "default-src 'none'; sandbox"


@dataclass(frozen=True, slots=True)
class Preview:
    element: str  # "img", "audio" or "video"
    src: str
    mime: str


def media_element(mime: object) -> str | None:
    if not isinstance(mime, str) or mime in NOT_SERVED:
        return None
    return MEDIA_KINDS.get(mime.split("/", 1)[0])


def preview_of(task: Task, artefacts_dir: Path | None, origins: list[str]) -> Preview | None:
    """How to show the task's result, or None when it is not media this page may embed."""
    if task.result is None or not task.result_ref:
        return None
    mime = task.result.get("mime")
    element = media_element(mime)
    if element is None:
        return None
    ref = task.result_ref
    parts = urlsplit(ref)
    if parts.scheme in ("http", "https"):
        allowed = parts.netloc and browser_origin(f"{parts.scheme}://{parts.netloc}") in origins
        return Preview(element, ref, str(mime)) if allowed else None
    if artefacts_dir is None or parts.scheme:
        return None
    relative = inside(artefacts_dir, ref)
    if relative is None:
        return None
    return Preview(element, ARTEFACTS_PATH + quote(relative.as_posix()), str(mime))


def inside(base: Path, ref: str) -> PurePosixPath | None:
    """`ref` (absolute, or relative to `base`) as a path relative to `base`, if it names
    a file there after resolving every symlink and `..`; None otherwise."""
    if "\x00" in ref:
        return None
    root = base.resolve()
    target = (root / ref).resolve()  # an absolute `ref` replaces `root`
    if not target.is_relative_to(root) or target == root:
        return None
    relative = PurePosixPath(target.relative_to(root).as_posix())
    if any(part.startswith(".") for part in relative.parts) or not target.is_file():
        return None
    return relative


def add_artefact_routes(router: APIRouter) -> None:
    @router.get("/artefacts/{path:path}")
    async def artefact(path: str, ctx: Ctx, _: Seen) -> FileResponse:
        base = ctx.settings.artefacts_dir
        relative = inside(base, path) if base is not None and not path.startswith("/") else None
        mime = mimetypes.guess_type(path)[0] if relative is not None else None
        if base is None or relative is None or media_element(mime) is None:
            raise ArtefactNotFoundError(path)
        return FileResponse(
            base.resolve() / relative,
            media_type=mime,
            headers={
                "Content-Security-Policy": FILE_CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=300",
            },
        )
