"""Templates, the filters they use, and the packaged static assets.

Autoescaping is on for every template, so nothing a scenario or task carries (template
names, payloads, errors) can inject markup. Pages send a Content-Security-Policy that
allows only this origin's scripts and styles: no inline script runs even if something
slipped through.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

STATUS_ICONS: Mapping[str, str] = {
    "pending": "○",
    "queued": "◔",
    "processing": "◐",
    "running": "▶",
    "success": "✓",
    "failed": "✗",
    "skipped": "↷",
    "cancelled": "⊘",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def content_security_policy(media_origins: Sequence[str] = ()) -> str:
    """The policy, with the origins result previews may embed from (dashboard/previews.py)
    added to img-src and an explicit media-src; without them, exactly the strict one."""
    if not media_origins:
        return CONTENT_SECURITY_POLICY
    extra = " ".join(media_origins)
    return CONTENT_SECURITY_POLICY.replace(
        "img-src 'self' data:;", f"img-src 'self' data: {extra}; media-src 'self' {extra};"
    )


STATIC_TYPES: Mapping[str, str] = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    media_type: str
    version: str  # content hash: URLs carry it, so the files can be cached for long


def load_static_assets() -> dict[str, StaticAsset]:
    folder = resources.files("scenarist.dashboard").joinpath("static")
    assets = {}
    for name, media_type in STATIC_TYPES.items():
        body = folder.joinpath(name).read_bytes()
        assets[name] = StaticAsset(body, media_type, hashlib.sha256(body).hexdigest()[:12])
    return assets


def format_time(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: float | None) -> str:
    return "" if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def format_seconds(value: float | None) -> str:
    """1.2s, 4m 05s, 2h 03m: short, and precise where it matters."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def span_seconds(start: float | None, end: float | None) -> float | None:
    """From start to end, or to now while it is still going."""
    if start is None:
        return None
    return max((end if end is not None else time.time()) - start, 0.0)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def build_environment(assets: Mapping[str, StaticAsset]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("scenarist.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=format_time,
        iso=iso_time,
        seconds=format_seconds,
        json=pretty_json,
        icon=lambda status: STATUS_ICONS.get(str(status), "•"),
    )
    env.globals.update(
        span=span_seconds,
        static=lambda name: f"/ui/static/{name}?v={assets[name].version}",
    )
    return env


class Renderer:
    def __init__(self) -> None:
        self.assets = load_static_assets()
        self.env = build_environment(self.assets)

    def page(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        media_origins: Sequence[str] = (),
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(request=request, **context)
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={
                "Content-Security-Policy": content_security_policy(media_origins),
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )
