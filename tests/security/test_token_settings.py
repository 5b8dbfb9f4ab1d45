"""A bad SCENARIST_TOKENS never shows any part of a secret, and only literal loopback
addresses (or `localhost`) count as loopback for the no-token bind check."""

from __future__ import annotations

import json

import pytest
import uvicorn
from typer.testing import CliRunner

from scenarist.cli.main import app
from scenarist.settings import Settings, is_loopback_host

runner = CliRunner()
LONG_SECRET = "Zq3xV9kP2mW7nR8sT4vXq7Jw"
SHORT_SECRET = "short"
DUPLICATE = "Dup1icateDup1icate99"


@pytest.fixture(autouse=True)
def server_never_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", refuse)


def serve_with_tokens(monkeypatch: pytest.MonkeyPatch, entries: list[dict[str, object]]) -> str:
    monkeypatch.setenv("SCENARIST_TOKENS", json.dumps(entries))
    result = runner.invoke(app, ["serve", "--store", "sqlite:///unused.db"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def assert_no_part_of(secret: str, output: str) -> None:
    # Pydantic's own message quoted the start and end of a long value: any 3 characters
    # of a secret in a row would be a leak.
    pieces = {secret[i : i + 3] for i in range(len(secret) - 2)}
    leaked = sorted(piece for piece in pieces if piece in output)
    assert not leaked, f"secret pieces {leaked} in {output!r}"


def test_bad_entries_are_named_by_position_and_name_never_by_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = serve_with_tokens(
        monkeypatch,
        [
            {"token": LONG_SECRET, "role": "boss", "name": "ci-bot"},
            {"token": SHORT_SECRET, "role": "client"},
        ],
    )
    assert output.splitlines() == [
        "error: SCENARIST_TOKENS entry 1 (name 'ci-bot'), field 'role': Input should be"
        " 'client', 'worker' or 'admin'",
        "error: SCENARIST_TOKENS entry 2, field 'token': a token must be at least 16"
        " characters long",
    ]
    assert_no_part_of(LONG_SECRET, output)
    assert SHORT_SECRET not in output


def test_a_repeated_token_is_reported_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    output = serve_with_tokens(
        monkeypatch,
        [{"token": DUPLICATE, "role": "client"}, {"token": DUPLICATE, "role": "admin"}],
    )
    assert output.splitlines() == [
        "error: SCENARIST_TOKENS: Value error, each token may appear only once"
    ]
    assert_no_part_of(DUPLICATE, output)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_literal_loopback_binds_need_no_tokens(host: str) -> None:
    assert is_loopback_host(host)
    assert Settings(host=host).insecure_bind_problem() is None


@pytest.mark.parametrize(
    "host", ["127.0.0.1.nip.io", "localhost.example.com", "127.foo", "0.0.0.0", "::", "0x7f.1"]
)
def test_names_that_only_look_like_loopback_do_not_count(host: str) -> None:
    assert not is_loopback_host(host)
    assert Settings(host=host).insecure_bind_problem() is not None


def test_serve_refuses_a_lookalike_loopback_host_without_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCENARIST_TOKENS", raising=False)
    result = runner.invoke(
        app, ["serve", "--store", "sqlite:///unused.db", "--host", "127.0.0.1.nip.io"]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: refusing to listen on 127.0.0.1.nip.io")
