"""Settings from the environment, store URLs, `scenarist serve` guards, store outages."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scenarist.cli import serve_command
from scenarist.settings import Role, Settings
from scenarist.storage import StoreConfigError, open_store, sqlite_path
from tests.api.conftest import SEED_VIDEO, make_settings, serve
from tests.support.redis_server import RedisServer


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIST_PORT", "9100")
    monkeypatch.setenv(
        "SCENARIST_TOKENS",
        '[{"token": "a-long-enough-token-1", "role": "worker", "services": ["text-service"]}]',
    )
    monkeypatch.setenv("SCENARIST_PUBLISH_LISTS", "true")
    settings = Settings()
    assert settings.port == 9100
    assert settings.host == "127.0.0.1"
    assert settings.tokens[0].role is Role.WORKER
    assert settings.tokens[0].services == frozenset({"text-service"})
    assert settings.publish_lists is True
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.store.startswith("sqlite:///")
    assert settings.store.endswith("scenarist.db")
    assert "a-long-enough-token-1" not in repr(settings)


def test_non_loopback_bind_needs_tokens_or_insecure() -> None:
    assert Settings(host="127.0.0.1").insecure_bind_problem() is None
    assert Settings(host="0.0.0.0", insecure=True).insecure_bind_problem() is None
    problem = Settings(host="0.0.0.0").insecure_bind_problem()
    assert problem is not None
    assert "SCENARIST_TOKENS" in problem
    assert "--insecure" in problem


def test_serve_refuses_an_open_public_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCENARIST_TOKENS", raising=False)
    cli = typer.Typer()
    cli.callback()(lambda: None)
    serve_command.register(cli)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    lists = CliRunner().invoke(cli, ["serve", "--store", "sqlite:///x.db", "--publish-lists"])
    assert lists.exit_code == 2
    assert "redis" in lists.output


def test_store_urls() -> None:
    assert sqlite_path("sqlite:///relative/x.db") == Path("relative/x.db")
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    with pytest.raises(StoreConfigError):
        sqlite_path("sqlite://")


async def test_open_store_by_scheme(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.db'}")
    try:
        await store.ping()
    finally:
        await store.close()
    assert (tmp_path / "deep" / "dir" / "x.db").exists()
    with pytest.raises(StoreConfigError, match="unknown store URL"):
        await open_store("postgres://localhost/db")


@pytest.mark.redis
async def test_store_outage_is_503_with_retry_after(redis_server: RedisServer) -> None:
    async with serve(make_settings(redis_server.url)) as client:
        assert (await client.get("/health")).status_code == 200
        redis_server.stop()
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.headers["Retry-After"]
        assert health.json()["type"].endswith("/store-unavailable")
        generate = await client.post("/generate", json=SEED_VIDEO)
        assert generate.status_code == 503
        assert generate.headers["Retry-After"]
        assert generate.headers["content-type"] == "application/problem+json"
