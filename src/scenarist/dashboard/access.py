"""Who is looking at the dashboard, and whether they may press its buttons.

With no tokens configured the dashboard is open and everyone may act (the same rule as the
API, which `scenarist serve` only allows on loopback). Otherwise a token from the settings
is needed: as a bearer header, as `?token=` once (moved into an HttpOnly cookie, then
redirected away so it leaves the address bar), or from that cookie. `client` tokens see
everything; only `admin` tokens get cancel and retry. Browsers cannot put a bearer header
on a link or on an EventSource, hence the cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response

from scenarist.settings import Role, Settings, TokenConfig

COOKIE_NAME = "scenarist_ui_token"
COOKIE_PATH = "/ui"
TOKEN_QUERY = "token"
VIEW_ROLES = frozenset({Role.CLIENT, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Viewer:
    role: Role | None  # None when authentication is off
    label: str

    @property
    def can_act(self) -> bool:
        return self.role is None or self.role is Role.ADMIN

    @property
    def signed_in(self) -> bool:
        return self.role is not None


OPEN_VIEWER = Viewer(role=None, label="open access (no tokens configured)")


class LoginRequiredError(Exception):
    """No usable token: show the sign-in form. The message says what was wrong."""


class AccessDeniedError(Exception):
    """Signed in, but this role may not do what was asked."""


class TokenAcceptedError(Exception):
    """A valid `?token=`: store it in the cookie and reload the address without it."""

    def __init__(self, token: str, location: str) -> None:
        super().__init__("token accepted")
        self.token = token
        self.location = location


def identify(request: Request, settings: Settings) -> Viewer:
    if not settings.tokens:
        return OPEN_VIEWER
    token, source = presented_token(request)
    if token is None:
        raise LoginRequiredError("")
    config = match_token(settings.tokens, token)
    if config is None:
        raise LoginRequiredError("that token is not valid")
    if config.role not in VIEW_ROLES:
        raise AccessDeniedError(f"a {config.role.value!r} token may not view the dashboard")
    if source == "query":
        raise TokenAcceptedError(token, address_without_token(request))
    return Viewer(role=config.role, label=config.label)


def presented_token(request: Request) -> tuple[str | None, str]:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "header"
    if request.query_params.get(TOKEN_QUERY):
        return request.query_params[TOKEN_QUERY], "query"
    return request.cookies.get(COOKIE_NAME) or None, "cookie"


def match_token(tokens: Sequence[TokenConfig], presented: str) -> TokenConfig | None:
    """Compare against every token (no early exit) so timing reveals nothing."""
    candidate = presented.encode()
    match: TokenConfig | None = None
    for config in tokens:
        if hmac.compare_digest(config.token.get_secret_value().encode(), candidate):
            match = config
    return match


def address_without_token(request: Request) -> str:
    """The same path and query minus `token`, relative so it survives reverse proxies."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_QUERY])
    return request.url.path + (f"?{query}" if query else "")


def remember_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )


def forget_token(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)


def require_action(viewer: Viewer) -> None:
    if not viewer.can_act:
        raise AccessDeniedError("only an admin token may cancel or retry scenarios")


def require_same_origin(request: Request) -> None:
    """Refuse form posts that another site's page made the browser send (CSRF). Browsers
    send `Origin` (and `Sec-Fetch-Site`) on every POST; clients without them are not
    browsers and carry their credentials explicitly."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise AccessDeniedError("cross-site form posts are refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise AccessDeniedError("cross-site form posts are refused")
