"""`scenarist demo` as a user runs it: a subprocess that must produce a real MP4 within a
minute and leave no process behind, also when interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scenarist.demo.media import probe_media
from scenarist.demo.runner import CLI_BOOTSTRAP
from scenarist.demo.speech import ESPEAK, TONE, narration_notice
from scenarist.demo.text import auto_parts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc"),
]

MARKER_VARIABLE = "SCENARIST_TEST_DEMO_MARKER"
# Looked up at import, before the demo tests' autouse fixture hides espeak-ng in this
# process (the demo's children see the real PATH).
EXPECTED_ENGINE = ESPEAK if shutil.which("espeak-ng") else TONE


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes that inherited our marker: the demo and all it started."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def start_demo(out_dir: Path, marker: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, MARKER_VARIABLE: marker, "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CLI_BOOTSTRAP, "demo", "--out", str(out_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(demo: subprocess.Popen[str], *, timeout: float) -> tuple[str, str]:
    """The demo's stdout and stderr once it exits (killed when it outlives `timeout`)."""
    try:
        return demo.communicate(timeout=timeout)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def assert_no_process_left(marker: str) -> None:
    deadline = time.monotonic() + 5
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_processes(marker) == []


def test_demo_makes_a_720p_video_with_sound_and_cleans_up(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    started = time.monotonic()
    demo = start_demo(tmp_path / "out", marker)
    stdout, stderr = finish(demo, timeout=60)
    assert time.monotonic() - started < 60
    assert demo.returncode == 0, stderr
    video = Path(stdout.strip().splitlines()[-1])
    assert video.parent.parent == (tmp_path / "out").resolve()
    info = probe_media(video)
    assert info.duration_seconds is not None
    assert info.duration_seconds > 0
    assert (info.video_streams, info.audio_streams) == (1, 1)
    assert (info.width, info.height) == (1280, 720)
    for service in ("text-service", "audio-service", "image-service", "video-service"):
        assert service in stderr  # a progress bar per service
    assert narration_notice(EXPECTED_ENGINE) in stderr
    assert "0 of 9 steps came from the step cache" in stderr
    assert_no_process_left(marker)

    # Again with the same output directory: its store keeps the step cache, so only the
    # video (not cached) runs; the pure steps reuse the first run's artefacts.
    again = start_demo(tmp_path / "out", marker)
    stdout, stderr = finish(again, timeout=60)
    assert again.returncode == 0, stderr
    assert "8 of 9 steps came from the step cache" in stderr
    second = Path(stdout.strip().splitlines()[-1])
    assert second != video
    # The same slides and narration, so the same length: up to a few frames, since
    # ffmpeg's `-shortest` cuts where its muxer buffers happen to end (seen: 31.44 s
    # against 31.52 s for the same inputs, two frames at 25 fps).
    second_duration = probe_media(second).duration_seconds
    assert second_duration is not None
    assert abs(second_duration - info.duration_seconds) <= 0.12
    assert_no_process_left(marker)


def test_auto_demo_makes_as_many_slides_as_the_script_chose(tmp_path: Path) -> None:
    """CreateVideoAuto: the script writer picks the part count from the description
    (`auto_parts`), the slide groups expand from its result, the video has that many."""
    marker = uuid.uuid4().hex
    description = "How rivers carve deep canyons over millions of quiet years"
    demo = start_demo(tmp_path / "out", marker, "--auto", "--json", "--description", description)
    stdout, stderr = finish(demo, timeout=90)
    assert demo.returncode == 0, stderr
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome["status"] == "success"
    video = Path(outcome["video"])
    assert probe_media(video).duration_seconds
    slides = sorted(p.name for p in video.parent.glob("slide_*.png"))
    assert slides == [f"slide_{i}.png" for i in range(1, auto_parts(description) + 1)]
    assert auto_parts(description) == 4
    assert_no_process_left(marker)


def test_interrupted_demo_stops_everything_it_started(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    out_dir = tmp_path / "out"
    demo = start_demo(out_dir, marker)
    try:
        deadline = time.monotonic() + 30
        while not list(out_dir.glob("*/script.txt")) and time.monotonic() < deadline:
            assert demo.poll() is None, demo.communicate()[1]
            time.sleep(0.05)
        assert len(marked_processes(marker)) >= 3  # the demo, its server, its workers
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, stderr
    assert "interrupted" in stderr
    assert_no_process_left(marker)


def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, MARKER_VARIABLE: marker, "NO_COLOR": "1"}
        argv = ["demo", "--out", str(tmp_path / "out"), "--port", str(port)]
        demo = subprocess.run(
            [sys.executable, "-c", CLI_BOOTSTRAP, *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert demo.returncode == 1
    assert "demo could not start" in demo.stderr
    assert "address already in use" in demo.stderr.lower()
    assert_no_process_left(marker)
