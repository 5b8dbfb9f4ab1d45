"""Authentication and exposure, against a `scenarist serve` process configured the way an
operator would (SCENARIST_TOKENS in its environment): the token matrix, rotated tokens,
no secrets in the log, no CORS, and no unauthenticated public bind."""

from __future__ import annotations

import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.api.auth import Authenticator
from scenarist.api.problems import ProblemError
from scenarist.settings import Role, TokenConfig
from tests.support.live_server import ServerProcess, hermetic_env
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.slow]

TOKENS = {
    "client": "client-7f3a9c2e51d04b86",
    "image_worker": "imgwrk-0c1d2e3f4a5b6c7d",
    "any_worker": "anywrk-9e8d7c6b5a4f3e2d",
    "admin": "admin-5b4a39281706f5e4",
}
ROTATED = {"admin": "admin-rotated-11223344556677"}
VIDEO = {"scenario": "CreateVideo", "description": "token matrix", "slides_count": 1}


def tokens_env(tokens: dict[str, str]) -> dict[str, str]:
    config: list[dict[str, Any]] = []
    for name, secret in tokens.items():
        entry: dict[str, Any] = {"token": secret, "name": name}
        if name == "client":
            entry["role"] = "client"
        elif name == "admin":
            entry["role"] = "admin"
        else:
            entry["role"] = "worker"
        if name == "image_worker":
            entry["services"] = ["image-service"]
        config.append(entry)
    return {"SCENARIST_TOKENS": json.dumps(config)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("secured")
    process = ServerProcess(
        workdir,
        store_url=f"sqlite:///{workdir / 'db.sqlite'}",
        catalog=None,
        env=tokens_env(TOKENS),
    )
    process.start()
    try:
        yield process
    finally:
        process.kill()


def call(server: ServerProcess, method: str, path: str, who: str | None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {TOKENS.get(who or '', who)}"} if who else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kw)


def test_missing_and_wrong_tokens_are_401_with_a_challenge(server: ServerProcess) -> None:
    for who in (None, "not-a-token-at-all-00", TOKENS["admin"] + "x", TOKENS["admin"][:-1]):
        response = call(server, "GET", "/scenarios", who)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith('Bearer realm="scenarist"')
        assert response.headers["content-type"].startswith("application/problem+json")
    basic = httpx.get(f"{server.url}/scenarios", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


# who -> expected status of (submit, list scenarios, lease text-service, lease image-service)
ROLE_MATRIX = {
    "client": (201, 200, 403, 403),
    "image_worker": (403, 403, 403, 200),
    "any_worker": (403, 403, 200, 200),
    "admin": (201, 200, 200, 200),
}


@pytest.mark.parametrize("who", list(ROLE_MATRIX))
def test_role_matrix(server: ServerProcess, who: str) -> None:
    generate, read, lease_text, lease_image = ROLE_MATRIX[who]
    assert call(server, "POST", "/generate", who, json=VIDEO).status_code == generate
    assert call(server, "GET", "/scenarios", who).status_code == read
    lease = {"max_tasks": 1, "lease_seconds": 5}
    text = call(server, "POST", "/queues/text-service/lease", who, json=lease)
    assert text.status_code == lease_text, text.text
    image = call(server, "POST", "/queues/image-service/lease", who, json=lease)
    assert image.status_code == lease_image, image.text
    for response in (text, image):
        if response.status_code == 403:
            assert response.headers["content-type"].startswith("application/problem+json")


def test_scoped_worker_cannot_finish_another_services_task(server: ServerProcess) -> None:
    assert call(server, "POST", "/generate", "admin", json=VIDEO).status_code == 201
    lease = {"max_tasks": 1, "lease_seconds": 30}
    leased = call(server, "POST", "/queues/text-service/lease", "admin", json=lease).json()
    task = leased["tasks"][0]
    body = {"lease_token": task["lease_token"], "result_ref": "ref/stolen"}
    token_only = {"lease_token": task["lease_token"]}
    # each call with the fields it takes (an unknown field would be refused first, 422)
    for path, sent in (
        ("complete", body),
        ("heartbeat", token_only),
        ("fail", {**token_only, "error": "x"}),
    ):
        response = call(server, "POST", f"/tasks/{task['id']}/{path}", "image_worker", json=sent)
        assert response.status_code == 403, response.text
    client = call(server, "POST", f"/tasks/{task['id']}/complete", "client", json=body)
    assert client.status_code == 403
    still = call(server, "GET", f"/tasks/{task['id']}", "admin").json()
    assert (still["status"], still["result_ref"]) == ("processing", None)


def test_health_is_open_but_reveals_nothing_secret(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    assert not any(secret in response.text for secret in TOKENS.values())


def test_no_token_appears_in_the_log(server: ServerProcess) -> None:
    for who in TOKENS:
        call(server, "POST", "/generate", who, json=VIDEO)
        call(server, "GET", "/scenarios", who)
        call(server, "POST", "/queues/video-service/lease", who, json={"max_tasks": 1})
    call(server, "GET", "/scenarios", TOKENS["admin"] + "-wrong")
    log = server.log_text()
    assert "POST /generate" in log  # the log did capture these requests
    for secret in TOKENS.values():
        assert secret not in log
        assert secret[:12] not in log


def test_cors_is_off_by_default(server: ServerProcess) -> None:
    preflight = httpx.options(
        f"{server.url}/generate",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
    simple = httpx.get(f"{server.url}/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_a_rotated_token_stops_working(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path, store_url=f"sqlite:///{tmp_path / 'db.sqlite'}", env=tokens_env(TOKENS)
    )
    try:
        server.start()
        assert call(server, "GET", "/scenarios", "admin").status_code == 200
        server.stop()
        server.env = tokens_env(ROTATED)
        server.start()
        assert call(server, "GET", "/scenarios", "admin").status_code == 401
        rotated = {"Authorization": f"Bearer {ROTATED['admin']}"}
        assert httpx.get(f"{server.url}/scenarios", headers=rotated).status_code == 200
    finally:
        server.kill()


def serve(
    host: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "scenarist", "serve", "--host", host, "--port", str(free_port())]
    return subprocess.run(
        [*argv, *flags],
        env=hermetic_env(env or {}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_serve_refuses_a_public_bind_without_tokens(tmp_path: Path) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    refused = serve("0.0.0.0", *store)
    assert refused.returncode != 0
    assert "refusing to listen on 0.0.0.0 without authentication" in refused.stderr
    assert "--insecure" in refused.stderr


@pytest.mark.parametrize(
    ("flags", "env"),
    [(("--insecure",), {}), ((), tokens_env(TOKENS))],
    ids=["insecure", "tokens"],
)
def test_insecure_flag_or_tokens_pass_the_bind_check(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    """192.0.2.10 (TEST-NET-1) is not on this machine: the process gets past the check
    and then fails to bind, so nothing ever listens on a public address."""
    store = ["--store", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    result = serve("192.0.2.10", *store, *flags, env=env)
    assert "refusing to listen" not in result.stderr
    assert result.returncode != 0
    assert "192.0.2.10" in result.stderr  # uvicorn's bind error names the address


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured token is compared with hmac.compare_digest, with no early exit
    on a match, so the response time says nothing about which prefix was right."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    # auth.py calls `hmac.compare_digest` through the module, so patching it there counts.
    monkeypatch.setattr(hmac, "compare_digest", recording)
    configs = [
        TokenConfig.model_validate({"token": secret, "role": "admin" if n == "admin" else "client"})
        for n, secret in TOKENS.items()
    ]
    authenticator = Authenticator(configs)
    for presented in (TOKENS["client"], TOKENS["admin"], "x" * 20):
        compared.clear()
        if presented in TOKENS.values():
            assert authenticator.authenticate(presented).label in ("client", "admin")
        else:
            with pytest.raises(ProblemError, match="unknown bearer token"):
                authenticator.authenticate(presented)
        assert len(compared) == len(TOKENS)  # the first token matched; the rest still ran
        assert all(b == presented.encode() for _, b in compared)
    assert authenticator.authenticate(TOKENS["admin"]).role is Role.ADMIN
