"""`scenarist serve` hands uvicorn the fast loop and parser, and the access-log choice."""

from __future__ import annotations

from typing import Any

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from scenarist.cli import serve_command


def run_serve(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    # serve imports both when it runs (not at start-up), so patching their modules works.
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(kw))
    # Leave this test process's logging alone.
    monkeypatch.setattr("scenarist.api.logs.configure_logging", lambda **kw: None)
    cli = typer.Typer()
    cli.callback()(lambda: None)
    serve_command.register(cli)
    result = CliRunner().invoke(cli, ["serve", "--store", "sqlite:///unused.db", *args])
    assert result.exit_code == 0, result.output
    return captured


def test_serve_names_uvloop_and_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCENARIST_ACCESS_LOG", raising=False)
    options = run_serve(monkeypatch, [])
    assert options["loop"] == "uvloop"
    assert options["http"] == "httptools"
    assert options["access_log"] is True


def test_access_log_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCENARIST_ACCESS_LOG", raising=False)
    assert run_serve(monkeypatch, ["--no-access-log"])["access_log"] is False
    monkeypatch.setenv("SCENARIST_ACCESS_LOG", "false")
    assert run_serve(monkeypatch, [])["access_log"] is False
    assert run_serve(monkeypatch, ["--access-log"])["access_log"] is True
