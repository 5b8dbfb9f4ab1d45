"""Request guards. The body guard (pure ASGI middleware): size cap and JSON-only bodies.

It answers 413 from the `Content-Length` header before reading anything, and otherwise
reads a body into memory only up to the cap (chunked uploads are cut off as soon as they
pass it), then replays it to the app. 415 for a non-empty body that is not JSON. 400 for a
body that is not UTF-8 text (RFC 8259 requires UTF-8 between systems): Python's JSON parser
would otherwise decode UTF-16 and UTF-32 itself and let raw surrogate bytes through, and
400 for an unpaired surrogate escape (`"\\ud800"`), which the parser also accepts. Neither
is Unicode text and no store can encode it (both used to surface as a 500, after a seed
PATCH had already claimed its task).
The exceptions are the dashboard's two forms: the sign-in form, a urlencoded body on that
path only, under a much smaller cap (a token in the body stays out of access logs; see
dashboard), and "Rerun from here" (a task's rerun path, with its own cap).
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenarist.api.problems import ProblemError, problem_response
from scenarist.dashboard.access import LOGIN_FORM_MAX_BYTES, LOGIN_PATH
from scenarist.dashboard.rerun_action import RERUN_FORM_MAX_BYTES, RERUN_FORM_PATH

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def media_type_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(content_type: str) -> bool:
    media_type = media_type_of(content_type)
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def form_limit(scope: Scope, content_type: str) -> int | None:
    """The cap of a dashboard form's body on its own path; None for any other body."""
    if media_type_of(content_type) != FORM_MEDIA_TYPE:
        return None
    if scope["path"] == LOGIN_PATH:
        return LOGIN_FORM_MAX_BYTES
    return RERUN_FORM_MAX_BYTES if RERUN_FORM_PATH.fullmatch(scope["path"]) else None


def body_headers(scope: Scope) -> tuple[str, str]:
    """The `Content-Type` and `Content-Length` values ("" when absent; the last one when
    repeated), without decoding every other header of every request."""
    content_type = content_length = b""
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"content-type":
            content_type = value
        elif lowered == b"content-length":
            content_length = value
    return content_type.decode("latin-1"), content_length.decode("latin-1")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type, declared = body_headers(scope)
        form_cap = form_limit(scope, content_type)
        limit = self.max_body_bytes if form_cap is None else min(form_cap, self.max_body_bytes)
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        body = await self._read_capped(receive, limit)
        if body is None:
            await self._too_large(scope, receive, send, limit)
            return
        if form_cap is not None:
            await self.app(scope, replay(body, receive), send)
            return
        if body and not is_json_media_type(content_type):
            response = problem_response(
                415,
                "unsupported-media-type",
                "the request body must be JSON (Content-Type: application/json)",
                field="Content-Type",
            )
            await response(scope, receive, send)
            return
        flaw = text_flaw(body)
        if flaw is not None:
            await problem_response(400, "malformed-json", flaw)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _read_capped(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413,
            "body-too-large",
            f"the request body is larger than {limit} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def text_flaw(body: bytes) -> str | None:
    """Why `body` is not UTF-8 JSON text, or None when it is."""
    if b"\x00" in body:
        # A raw NUL is never valid JSON: the body is UTF-16 or UTF-32.
        return "body is not UTF-8: JSON must be sent as UTF-8, not UTF-16 or UTF-32"
    if not body.isascii():
        try:
            body.decode("utf-8")  # strict: refuses encoded surrogates too
        except UnicodeDecodeError as exc:
            return (
                f"body is not UTF-8 text: invalid byte sequence at offset {exc.start} "
                "(JSON must be sent as UTF-8; surrogates are not characters)"
            )
    if has_lone_surrogate_escape(body):
        return (
            "body is not valid JSON text: a \\u escape names an unpaired UTF-16 "
            "surrogate, which is not a Unicode character"
        )
    return None


# A `\\uD800`-`\\uDFFF` escape preceded by an odd run of backslashes (an even run is an
# escaped backslash followed by plain text).
SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
HIGH_SURROGATE_DIGITS = frozenset(b"89abAB")


def has_lone_surrogate_escape(body: bytes) -> bool:
    """True when a high surrogate escape is not immediately followed by a low one, or a
    low one is not immediately preceded by a high one. Pairs (emoji) are fine."""
    if b"\\ud" not in body and b"\\uD" not in body:
        return False  # no surrogate escape at all: the common case, skip the scan
    expect_low_at = -1
    for match in SURROGATE_ESCAPE.finditer(body):
        escape_start = match.end() - 6
        is_high = match.group(1)[0] in HIGH_SURROGATE_DIGITS
        if expect_low_at >= 0:
            if is_high or escape_start != expect_low_at:
                return True
            expect_low_at = -1
        elif is_high:
            expect_low_at = match.end()
        else:
            return True
    return expect_low_at >= 0


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the buffered body, then defers to the real one
    (so a client disconnect is still seen by streaming endpoints)."""
    sent = False

    async def receive_buffered() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_buffered


def declared_query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= declared_query_names(dependency)
    return names


async def reject_unknown_query(request: Request) -> None:
    """An unknown query parameter is an error, not silently ignored: a typo such as
    `?dryrun=true` must not turn a dry run into a real submission."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - declared_query_names(route.dependant))
    if unknown:
        raise ProblemError(
            422,
            f"unknown query parameter(s): {', '.join(map(repr, unknown))}",
            code="validation-failed",
            field=unknown[0],
            fields=unknown,
        )
