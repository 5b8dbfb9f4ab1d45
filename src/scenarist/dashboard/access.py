"""Who is looking at the dashboard, and whether they may press its buttons.

With no tokens configured the dashboard is open and everyone may act (the same rule as the
API, which `scenarist serve` only allows on loopback). Otherwise a token from the settings
is needed: as a bearer header, or from the HttpOnly cookie that the sign-in form sets.
`client` tokens see everything; only `admin` tokens get cancel and retry. Browsers cannot
put a bearer header on a link or on an EventSource, hence the cookie.

The sign-in form is a POST (`application/x-www-form-urlencoded`, the one non-JSON body the
app accepts, see api/limits.py): a token in an address would be written to access logs,
proxy logs and the browser history. There is no `?token=` sign-in link for that reason; a
deep link without a session shows the sign-in form, which returns to that page.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request, Response

from scenarist.settings import Role, Settings, TokenConfig

COOKIE_NAME = "scenarist_ui_token"
COOKIE_PATH = "/ui"
LOGIN_PATH = "/ui/login"
LOGIN_FORM_MAX_BYTES = 4096  # a token and a return address; anything bigger is not a sign-in
LOGIN_FORM_MAX_FIELDS = 8
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


def identify(request: Request, settings: Settings) -> Viewer:
    if not settings.tokens:
        return OPEN_VIEWER
    token = presented_token(request)
    if token is None:
        raise LoginRequiredError("")
    config = match_token(settings.tokens, token)
    if config is None:
        raise LoginRequiredError("that token is not valid")
    if config.role not in VIEW_ROLES:
        raise AccessDeniedError(f"a {config.role.value!r} token may not view the dashboard")
    return Viewer(role=config.role, label=config.label)


def presented_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


def parse_login_form(body: bytes) -> dict[str, str]:
    """The fields of the sign-in form (the last value of a repeated field wins). Raises
    ValueError for a body that is not a small urlencoded form."""
    try:
        text = body.decode("ascii")  # urlencoded bodies are ASCII; the rest is %-escaped
    except UnicodeDecodeError as exc:
        raise ValueError("the sign-in form is not urlencoded text") from exc
    return dict(parse_qsl(text, max_num_fields=LOGIN_FORM_MAX_FIELDS))


def match_token(tokens: Sequence[TokenConfig], presented: str) -> TokenConfig | None:
    """Compare against every token (no early exit) so timing reveals nothing."""
    candidate = presented.encode()
    match: TokenConfig | None = None
    for config in tokens:
        if hmac.compare_digest(config.token.get_secret_value().encode(), candidate):
            match = config
    return match


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
