"""Bearer-token authentication and role checks.

Roles: `client` submits, reads, cancels and retries; `worker` leases and finishes tasks of
its services (and reads those tasks); `admin` may do everything. With no tokens configured
the API is open (every caller is an admin); `scenarist serve` only allows that on loopback.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from scenarist.api.problems import ProblemError
from scenarist.settings import Role, TokenConfig

BEARER_CHALLENGE = 'Bearer realm="scenarist"'


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `services=None` means every service."""

    role: Role
    label: str
    services: frozenset[str] | None = None
    name: str | None = None  # the token's `name`: its scenarios' tenant when one is named so

    def may_serve(self, service: str) -> bool:
        if self.role is Role.ADMIN:
            return True
        if self.role is not Role.WORKER:
            return False
        return self.services is None or service in self.services


OPEN_ACCESS = Principal(role=Role.ADMIN, label="anonymous (no tokens configured)")


class Authenticator:
    def __init__(self, tokens: Sequence[TokenConfig]) -> None:
        self._tokens = [(t.token.get_secret_value().encode(), t) for t in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def authenticate(self, token: str | None) -> Principal:
        """`token` is the bearer credential, None when the header is missing or not Bearer."""
        if not self._tokens:
            return OPEN_ACCESS
        if not token:
            raise ProblemError(
                401,
                "an 'Authorization: Bearer <token>' header is required",
                headers={"WWW-Authenticate": BEARER_CHALLENGE},
            )
        presented = token.encode()
        match: TokenConfig | None = None
        # Compare against every token (no early exit) so timing reveals nothing.
        for secret, config in self._tokens:
            if hmac.compare_digest(secret, presented):
                match = config
        if match is None:
            raise ProblemError(
                401,
                "missing or unknown bearer token",
                headers={"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'},
            )
        return Principal(
            role=match.role, label=match.label, services=match.services, name=match.name
        )


def require_role(principal: Principal, *roles: Role) -> Principal:
    if principal.role is Role.ADMIN or principal.role in roles:
        return principal
    allowed = ", ".join(r.value for r in (*roles, Role.ADMIN))
    raise ProblemError(403, f"role {principal.role.value!r} may not do this (needs {allowed})")


def require_service(principal: Principal, service: str) -> Principal:
    if principal.may_serve(service):
        return principal
    raise ProblemError(
        403, f"this token may not work on tasks of service {service!r}", field="service"
    )
