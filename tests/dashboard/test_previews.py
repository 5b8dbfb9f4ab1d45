"""Result previews: media results under the artefacts directory are served read-only (no
path escapes), http(s) ones only from the configured origins, and the page's CSP widens
by exactly those origins."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.dashboard.rendering import CONTENT_SECURITY_POLICY
from tests.dashboard.conftest import make_settings, serve, submit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
CDN = "https://cdn.example.com"


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    folder = tmp_path / "artefacts"
    (folder / "slides").mkdir(parents=True)
    (folder / "slides" / "slide 1.png").write_bytes(PNG)
    (folder / "voice.wav").write_bytes(b"RIFF....WAVE")
    (folder / "notes.txt").write_text("not media")
    (folder / ".hidden.png").write_bytes(PNG)
    (folder / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.png").write_bytes(PNG)
    os.symlink(tmp_path / "secret.png", folder / "escape.png")
    return folder


@pytest.fixture
async def client(tmp_path: Path, artefacts: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, artefacts_dir=artefacts, preview_origins=[CDN])
    async with serve(settings) as c:
        yield c


async def finish_script(client: httpx.AsyncClient, result_ref: str, result: dict[str, Any]) -> str:
    sid = await submit(client)
    done = await client.patch(
        f"/tasks/{sid}:script/status",
        json={"status": "success", "result_ref": result_ref, "result": result},
    )
    assert done.status_code == 200, done.text
    return sid


async def test_a_file_under_the_directory_is_served_read_only(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/ui/artefacts/slides/slide%201.png")
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert (await client.get("/ui/artefacts/voice.wav")).status_code == 200
    assert (await client.post("/ui/artefacts/voice.wav")).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "../secret.png",
        "..%2fsecret.png",
        "%2e%2e/secret.png",
        "slides/../../secret.png",
        "slides/%2e%2e/%2e%2e/secret.png",
        "%2Fetc%2Fpasswd",
        "escape.png",  # a symlink out of the directory
        ".hidden.png",
        "notes.txt",  # not media
        "drawing.svg",  # a document that can carry script
        "slides",
        "missing.png",
        "slides/slide%201.png%00.txt",
    ],
)
async def test_nothing_outside_the_directory_or_not_media_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(f"/ui/artefacts/{path}")
    assert response.status_code == 404, (path, response.status_code)
    assert PNG not in response.content


async def test_without_a_directory_nothing_is_served(tmp_path: Path, artefacts: Path) -> None:
    async with serve(make_settings(tmp_path)) as plain:
        assert (await plain.get("/ui/artefacts/voice.wav")).status_code == 404


async def test_the_details_preview_a_local_image(
    client: httpx.AsyncClient, artefacts: Path
) -> None:
    ref = str(artefacts / "slides" / "slide 1.png")
    sid = await finish_script(client, ref, {"mime": "image/png"})
    panel = (await client.get(f"/ui/scenarios/{sid}/tasks/script")).text
    assert '<img src="/ui/artefacts/slides/slide%201.png"' in panel
    page = await client.get(f"/ui/scenarios/{sid}?task=script")
    assert '<figure class="preview">' in page.text


async def test_audio_relative_to_the_directory(client: httpx.AsyncClient) -> None:
    sid = await finish_script(client, "voice.wav", {"mime": "audio/wav"})
    panel = (await client.get(f"/ui/scenarios/{sid}/tasks/script")).text
    assert '<audio controls preload="metadata" src="/ui/artefacts/voice.wav"' in panel


@pytest.mark.parametrize(
    ("ref", "mime"),
    [
        ("/etc/hostname", "image/png"),  # outside the directory
        ("escape.png", "image/png"),
        ("voice.wav", "text/plain"),  # not media by its mime
        ("https://elsewhere.example.org/a.png", "image/png"),  # an origin not listed
        ("javascript:alert(1)", "image/png"),
    ],
)
async def test_no_preview_for_what_may_not_be_embedded(
    client: httpx.AsyncClient, ref: str, mime: str
) -> None:
    sid = await finish_script(client, ref, {"mime": mime})
    panel = (await client.get(f"/ui/scenarios/{sid}/tasks/script")).text
    assert "<figure" not in panel


async def test_a_listed_origin_is_embedded_and_added_to_the_policy(
    client: httpx.AsyncClient,
) -> None:
    sid = await finish_script(client, f"{CDN}/renders/final.mp4", {"mime": "video/mp4"})
    page = await client.get(f"/ui/scenarios/{sid}?task=script")
    assert f'<video controls preload="metadata" src="{CDN}/renders/final.mp4"' in page.text
    policy = page.headers["content-security-policy"]
    assert f"img-src 'self' data: {CDN};" in policy
    assert f"media-src 'self' {CDN};" in policy
    assert "script-src 'self';" in policy  # nothing else widened


async def test_without_origins_the_policy_is_the_strict_one(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path)) as plain:
        sid = await submit(plain)
        page = await plain.get(f"/ui/scenarios/{sid}")
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
