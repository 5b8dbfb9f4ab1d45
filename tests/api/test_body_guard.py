"""The body guard: unpaired surrogate escapes are 400, pairs and look-alikes pass; only the
two headers it needs are read, the last one winning when repeated."""

from __future__ import annotations

import httpx
import pytest

from scenarist.api.limits import body_headers, has_lone_surrogate_escape


@pytest.mark.parametrize(
    ("body", "lone"),
    [
        (rb'{"d": "plain text"}', False),
        (rb'{"d": "\ud83d\ude00 emoji pair"}', False),
        (rb'{"d": "\uD83D\uDE00 upper-case pair"}', False),
        (rb'{"d": "\\ud800 an escaped backslash, then text"}', False),
        (rb'{"d": "\u00e9 \u2603 other escapes"}', False),
        (rb'{"d": "\ud800"}', True),
        (rb'{"d": "\uDC00 low alone"}', True),
        (rb'{"d": "\\\ud800 odd backslash run"}', True),
        (rb'{"d": "\ud83d x \ude00 split pair"}', True),
        (rb'{"d": "\ud83d\ud83d two highs"}', True),
    ],
)
def test_lone_surrogate_escapes_are_found(body: bytes, lone: bool) -> None:
    assert has_lone_surrogate_escape(body) is lone


async def test_a_lone_surrogate_is_400_malformed_json(client: httpx.AsyncClient) -> None:
    body = b'{"scenario": "CreateVideo", "description": "bad \\udfff", "slides_count": 3}'
    response = await client.post(
        "/generate", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")


def test_only_the_body_headers_are_read_last_one_wins() -> None:
    scope = {
        "headers": [
            (b"host", b"x"),
            (b"Content-Type", b"text/plain"),
            (b"content-length", b"5"),
            (b"content-type", b"application/json"),
        ]
    }
    assert body_headers(scope) == ("application/json", "5")
    assert body_headers({"headers": []}) == ("", "")
