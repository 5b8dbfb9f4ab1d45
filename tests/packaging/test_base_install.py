"""What a base install (no extras) relies on, checked without building one: `demo`
without the demo extra says how to install it, and no command but `demo` needs the
extra, nor imports the web stack or the worker SDK unless it uses them.

Each check runs a fresh interpreter, where modules can be hidden the way a missing
package hides them (a None entry in sys.modules makes `import` fail as if absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO_EXTRA = ("PIL", "imageio_ffmpeg")
WEB_STACK = ("fastapi", "uvicorn", "starlette", "scenarist.api")
SDK = ("httpx", "scenarist.worker")
CATALOG = ("jinja2", "yaml", "scenarist.core.catalog")


def run_cli(args: list[str], hidden: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`scenarist ARGS` in a fresh interpreter with `hidden` modules missing; its last
    stdout line is the JSON list of modules it had imported when it exited."""
    script = f"""
import atexit, json, sys
for name in {list(hidden)!r}:
    sys.modules[name] = None
atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if sys.modules[m]))))
sys.argv = ["scenarist", *{args!r}]
from scenarist.cli.main import main
main()
"""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def imported(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_demo_without_the_extra_prints_the_install_hint_and_exits_2() -> None:
    result = run_cli(["demo"], hidden=DEMO_EXTRA)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: `scenarist demo` needs the demo extra (Pillow, imageio-ffmpeg); "
        "install it with: pip install 'scenarist[demo]'"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_module_outside_the_extra_is_not_mistaken_for_it() -> None:
    result = run_cli(["demo"], hidden=("scenarist.demo.text",))
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr
    assert "scenarist[demo]" not in result.stderr


@pytest.mark.parametrize(
    ("args", "must_not_import"),
    [
        (["--help"], DEMO_EXTRA + WEB_STACK + SDK + CATALOG),
        (["graph", "CreateVideo", "--param", "description=x"], DEMO_EXTRA + WEB_STACK + SDK),
        (["validate", "--help"], DEMO_EXTRA + WEB_STACK + SDK),
        # The blocking client's JSON calls use the standard library: no httpx, no asyncio.
        (
            ["status", "nope", "--url", "http://127.0.0.1:9"],
            (*DEMO_EXTRA, *WEB_STACK, *CATALOG, "httpx", "asyncio", "scenarist.worker.transport"),
        ),
        (["serve", "--help"], DEMO_EXTRA + WEB_STACK + SDK + CATALOG),
    ],
    ids=["help", "graph", "validate-help", "status", "serve-help"],
)
def test_commands_import_only_what_they_use(
    args: list[str], must_not_import: tuple[str, ...]
) -> None:
    result = run_cli(args, hidden=DEMO_EXTRA)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    loaded = imported(result)
    assert not [name for name in must_not_import if name in loaded]


TRACING_SDK = ("opentelemetry.sdk", "opentelemetry.exporter")


def test_the_app_without_otel_variables_imports_no_tracing_sdk() -> None:
    script = """
import json, sys
from scenarist.api.app import create_app
create_app()
print(json.dumps(sorted(m for m in sys.modules if sys.modules[m])))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = imported(result)
    assert not [m for m in loaded if m.startswith(TRACING_SDK)]


def test_serve_asked_for_traces_without_the_extra_says_how_to_get_it(tmp_path: Path) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    script = f"""
import os, sys
os.environ.update({env!r})
for name in {list(TRACING_SDK)!r}:
    sys.modules[name] = None
sys.argv = ["scenarist", "serve", "--store", "sqlite:///{tmp_path / "s.db"}", "--port", "9"]
from scenarist.cli.main import main
main()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "pip install 'scenarist[tracing]'" in line
