"""Opt-in CORS: off by default (no CORS headers at all); with SCENARIST_CORS_ORIGINS, a
listed origin may call the API from a browser page (preflight answered), others may not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from scenarist.settings import Settings
from tests.api.conftest import SEED_VIDEO, make_settings, serve

LISTED = "https://app.example.com"
OTHER = "https://evil.example.net"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization, idempotency-key",
    }


@pytest.fixture
async def cors_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'api.db'}", cors_origins=[LISTED, "http://localhost:5173"]
    )
    async with serve(settings) as client:
        yield client


def has_cors_headers(response: httpx.Response) -> bool:
    return any(name.lower().startswith("access-control-") for name in response.headers)


async def test_a_listed_origin_gets_its_preflight_and_responses(
    cors_client: httpx.AsyncClient,
) -> None:
    allowed = await cors_client.options("/generate", headers=preflight(LISTED))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == LISTED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    requested = allowed.headers["access-control-allow-headers"].lower()
    for header in ("content-type", "authorization", "idempotency-key"):
        assert header in requested
    created = await cors_client.post("/generate", json=SEED_VIDEO, headers={"Origin": LISTED})
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == LISTED
    assert "idempotent-replayed" in created.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_gets_no_cors_headers(cors_client: httpx.AsyncClient) -> None:
    refused = await cors_client.options("/generate", headers=preflight(OTHER))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    read = await cors_client.get("/health", headers={"Origin": OTHER})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    refused = await client.options("/generate", headers=preflight(LISTED))
    assert not has_cors_headers(refused)
    assert refused.status_code == 405
    read = await client.get("/health", headers={"Origin": LISTED})
    assert read.status_code == 200
    assert not has_cors_headers(read)


def test_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCENARIST_CORS_ORIGINS", f" {LISTED} ,http://localhost:5173,")
    assert Settings().cors_origins == [LISTED, "http://localhost:5173"]
    monkeypatch.delenv("SCENARIST_CORS_ORIGINS")
    assert Settings().cors_origins == []


@pytest.mark.parametrize(
    "origin", ["app.example.com", "https://app.example.com/", "ftp://x.example", "*"]
)
def test_an_origin_that_is_not_scheme_host_port_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(cors_origins=[origin])


@pytest.mark.parametrize(
    ("written", "sent_by_browsers"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("HTTPS://app.example.com:443", "https://app.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_an_origin_is_kept_as_browsers_send_it(written: str, sent_by_browsers: str) -> None:
    """Browsers send lower-case scheme and host and leave out a default port: an origin
    written otherwise would never match."""
    assert Settings(cors_origins=[written]).cors_origins == [sent_by_browsers]
