"""Probes that use HEAD (load balancers, uptime checkers) get the GET status, no body."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/", "/health"])
async def test_head_answers_like_get_without_a_body(
    any_client: httpx.AsyncClient, path: str
) -> None:
    get = await any_client.get(path)
    head = await any_client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"].startswith("application/json")
