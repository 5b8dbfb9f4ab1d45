"""`scenarist serve` start-up checks: every user mistake is one line per problem on stderr
and exit 2, before the server starts (never a traceback from inside uvicorn), and the
start is logged with the store (password redacted) and the catalog."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner, Result

from scenarist.cli.main import app
from scenarist.core.catalog import default_catalog_path

runner = CliRunner()
BROKEN = "A:\n  tasks:\n    - {id: a, service: s, max_attempts: 0}\n    - {id: b, service: ''}\n"


@pytest.fixture
def server_never_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", refuse)
    monkeypatch.delenv("SCENARIST_TOKENS", raising=False)


@pytest.fixture
def server_starts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    monkeypatch.setattr("scenarist.api.logs.configure_logging", lambda **kw: None)
    monkeypatch.delenv("SCENARIST_TOKENS", raising=False)
    return started


def serve(*args: str, store: str = "sqlite:///unused.db") -> Result:
    return runner.invoke(app, ["serve", "--store", store, *args])


def assert_one_line_errors(result: Result, expected: list[str]) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines() == [f"error: {line}" for line in expected]


@pytest.mark.usefixtures("server_never_starts")
def test_a_bad_catalog_is_reported_as_validate_reports_it(tmp_path: Path) -> None:
    catalog = tmp_path / "broken.yml"
    catalog.write_text(BROKEN)
    validated = runner.invoke(app, ["validate", str(catalog)])
    result = serve("--scenarios", str(catalog))
    assert result.exit_code == 2
    assert result.output == validated.output
    assert len(result.output.splitlines()) == 2
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("server_never_starts")
@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("postgres://db/x", "unknown store URL scheme postgres://"),
        ("sqlite://", "bad --store URL: bad SQLite store URL"),
        ("redis://127.0.0.1:port/0", "bad --store URL: Port could not be cast"),
        ("localhost:6379", "unknown store URL scheme localhost://"),
    ],
)
def test_a_bad_store_url_is_one_line(store: str, message: str) -> None:
    result = serve(store=store)
    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(f"error: {message}")


@pytest.mark.usefixtures("server_never_starts")
def test_a_sqlite_store_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = serve(store=f"sqlite:///{not_a_directory / 'db' / 'x.db'}")
    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(
        f"error: cannot create the SQLite store {not_a_directory / 'db' / 'x.db'}: "
    )


@pytest.mark.usefixtures("server_never_starts")
def test_bad_settings_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIST_PORT", "eighty")
    monkeypatch.setenv("SCENARIST_REAPER_INTERVAL", "0")
    result = serve()
    assert_one_line_errors(
        result,
        [
            "setting 'port' (SCENARIST_PORT): Input should be a valid integer, unable to parse"
            " string as an integer",
            "setting 'reaper_interval' (SCENARIST_REAPER_INTERVAL): Input should be greater than 0",
        ],
    )


@pytest.mark.usefixtures("server_never_starts")
def test_a_token_list_that_is_not_json_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Zq3xV9kP2mW7nR8sT4v"
    monkeypatch.setenv("SCENARIST_TOKENS", f'[{{"token": "{secret}"')
    result = serve()
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        'error: cannot read the settings: error parsing value for field "tokens" from source'
        ' "EnvSettingsSource"'
    ]


def test_the_start_names_the_store_without_its_password_and_the_catalog(
    server_starts: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scenarist.cli.serve_command")
    result = serve(store="redis://worker:hunter2-secret@127.0.0.1:6390/0?password=other-secret")
    assert result.exit_code == 0, result.output
    assert len(server_starts) == 1
    assert caplog.messages == [
        "store redis://worker:***@127.0.0.1:6390/0?password=***; "
        f"catalog {default_catalog_path()} (4 scenarios)"
    ]


@pytest.mark.parametrize(
    "store", ["redis+cluster://127.0.0.1:7000", "redis://127.0.0.1:6390/0?shard_count=4"]
)
def test_tenants_on_redis_cluster_start(
    tmp_path: Path, store: str, server_starts: list[dict[str, Any]]
) -> None:
    """Fair share runs on a cluster too (fair_lease.py, decision 80)."""
    catalog = tmp_path / "tenants.yml"
    catalog.write_text(
        "tenants:\n  studio: {weight: 3}\nOne:\n  tasks:\n    - {id: a, service: s}\n"
    )
    result = serve("--scenarios", str(catalog), store=store)
    assert result.exit_code == 0, result.output
    assert len(server_starts) == 1
