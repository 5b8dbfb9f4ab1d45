"""Errors the client and the worker SDK raise.

The SDK talks HTTP only, so these mirror HTTP outcomes (problem+json bodies) rather than
the server's internal hierarchy. A handler signals how its failure should be treated by
raising `Retryable` or `Fatal`; any other exception counts as retryable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ClientError(Exception):
    """Base class of everything the scenarist HTTP client raises."""


class ServerUnreachableError(ClientError):
    """The server could not be reached or answered 5xx; the call may be retried later."""


class ResponseTooLargeError(ServerUnreachableError):
    """The answer exceeded the client's response size cap and was dropped unread. Treated
    like a 5xx: the call may be retried later (leased tasks it carried return to their
    queue when their lease expires)."""


class ApiError(ClientError):
    """The server refused the request; `problem` is the parsed problem+json body."""

    def __init__(self, status_code: int, problem: Mapping[str, Any], *, method: str, path: str):
        self.status_code = status_code
        self.problem = dict(problem)
        self.method = method
        self.path = path
        detail = self.problem.get("detail") or self.problem.get("title") or "request failed"
        super().__init__(f"{method} {path} -> {status_code}: {detail}")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "")


class AuthError(ApiError):
    """401 or 403: the token is missing, wrong, or lacks the role or service scope."""


class NotFoundError(ApiError):
    """404: no such scenario, task or route."""


class LeaseLostError(ApiError):
    """409 on a lease operation: the task was re-leased, finished or cancelled. The worker
    drops the task; nothing it sends about this lease will change the task any more."""


class Retryable(Exception):  # noqa: N818 - reads as `raise Retryable("...")` in handlers
    """Raised by a handler: the failure is transient; the server may try the task again."""


class Fatal(Exception):  # noqa: N818 - reads as `raise Fatal("...")` in handlers
    """Raised by a handler: retrying cannot help; the task fails for good at once."""
