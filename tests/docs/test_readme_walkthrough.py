"""The README's walkthrough, run as written against a live `scenarist serve`: every
command must exit 0 and every HTTP answer must be what the README says."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.walkthrough import Block, walkthrough_blocks, walkthrough_script
from tests.support.live_server import ServerProcess, hermetic_env

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_walkthrough_markers_are_parsed_with_their_mode_and_section() -> None:
    readme = "\n".join(
        [
            "## One",
            "<!-- walkthrough -->",
            "```bash",
            "echo a",
            "```",
            "<!-- walkthrough: background -->",
            "```sh",
            "sleep 5",
            "```",
            "## Two",
            "```bash",
            "echo not marked",
            "```",
            "<!-- walkthrough: expect 409 -->",
            "```bash",
            "curl x",
            "```",
        ]
    )
    assert walkthrough_blocks(readme) == [
        Block(line=4, section="One", mode="run", code="echo a"),
        Block(line=8, section="One", mode="background", code="sleep 5"),
        Block(line=16, section="Two", mode="expect 409", code="curl x"),
    ]
    with pytest.raises(ValueError, match="must precede a bash block"):
        walkthrough_blocks("<!-- walkthrough -->\ntext\n")
    with pytest.raises(ValueError, match="unknown walkthrough mode"):
        walkthrough_blocks("<!-- walkthrough: maybe -->\n```bash\necho\n```\n")


def test_the_wrapped_curl_fails_on_an_unexpected_status(tmp_path: Path) -> None:
    """The check the README walkthrough relies on can fail: a 404 stops the script."""
    server = ServerProcess(tmp_path / "server", store_url=f"sqlite:///{tmp_path / 'w.db'}")
    server.start()
    try:
        blocks = [
            Block(line=1, section="S", mode="run", code="curl -s http://127.0.0.1:8001/health"),
            Block(line=2, section="S", mode="run", code="curl -s http://127.0.0.1:8001/nope"),
        ]
        done = run_script(walkthrough_script(blocks, server.url), tmp_path, server.url)
    finally:
        server.stop()
    assert done.returncode != 0
    assert "::ok 0" in done.stdout
    assert "::http 404" in done.stderr
    assert "::ok 1" not in done.stdout


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    modes = {block.mode for block in blocks}
    assert {"run", "background", "expect 409"} <= modes
    workdir = tmp_path / "reader"
    workdir.mkdir()
    # The reader's checkout: `.venv/bin/scenarist` and the catalog the README names.
    (workdir / ".venv").mkdir()
    (workdir / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    (workdir / "scenarios.yml").symlink_to(REPO / "scenarios.yml")
    server = ServerProcess(
        tmp_path / "server", store_url=f"sqlite:///{tmp_path / 'walk.db'}", catalog=None
    )
    server.start()
    try:
        done = run_script(walkthrough_script(blocks, server.url), workdir, server.url)
    finally:
        server.stop()
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("background-*"))
    report = f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}\n--- background\n{logs}"
    assert done.returncode == 0, report
    for number in range(len(blocks)):
        assert f"::ok {number}" in done.stdout, report


def run_script(script: str, workdir: Path, url: str) -> subprocess.CompletedProcess[str]:
    """bash in its own process group, which is killed afterwards, so a background block
    cannot outlive the test even when the script is cut short."""
    path = workdir / "walkthrough.sh"
    path.write_text(script, encoding="utf-8")
    env = hermetic_env({"NO_COLOR": "1", "COLUMNS": "200"})
    env["SCENARIST_URL"] = url  # the CLI's default server, as `scenarist serve`'s would be
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        ["bash", str(path)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing left
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
