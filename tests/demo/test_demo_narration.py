"""The demo narrates with real speech where espeak-ng is installed (the test dependencies
install it), says which engine it used, and keeps the tone only as a declared fallback."""

from __future__ import annotations

import shutil
import sys
import wave
from array import array
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from scenarist.demo.speech import ESPEAK, TONE, narration_notice, write_tone_wav
from tests.demo.conftest import DemoRun
from tests.demo.test_demo_handlers import run_create_video

# Looked up at import, before the autouse fixture hides espeak-ng from the demo code.
INSTALLED_ESPEAK = shutil.which("espeak-ng")
FRAME_SECONDS = 0.02
FRICATIVE_CROSSINGS_PER_SECOND = 3000  # far above any note of the tone melody (< 1,500)


def fricative_frames(path: Path) -> int:
    """20 ms frames that are loud and cross zero more than 3,000 times a second: the
    hiss of an s, f or sh. Speech has them; a melody of pure notes has none."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        samples = array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    size = int(rate * FRAME_SECONDS)
    frames = [samples[i : i + size] for i in range(0, len(samples) - size, size)]
    loudness = [(sum(x * x for x in f) / size) ** 0.5 for f in frames]
    loud_enough = 0.05 * max(loudness, default=0.0)
    count = 0
    for frame, level in zip(frames, loudness, strict=True):
        crossings = sum(1 for a, b in pairwise(frame) if (a < 0) != (b < 0))
        if level > loud_enough and crossings / FRAME_SECONDS > FRICATIVE_CROSSINGS_PER_SECOND:
            count += 1
    return count


def test_the_tone_fallback_has_no_speech_sounds(tmp_path: Path) -> None:
    """The measure below can tell them apart: the tone scores zero."""
    path = tmp_path / "tone.wav"
    write_tone_wav("Cats sleep sixteen hours a day, and see well in the dark.", path)
    assert fricative_frames(path) == 0


def test_voice_with_the_installed_espeak_is_speech(
    demo: DemoRun, use_espeak: Callable[[Path], None]
) -> None:
    if INSTALLED_ESPEAK is None:
        pytest.fail("espeak-ng is not installed: run scripts/ensure-system-deps.sh")
    use_espeak(Path(INSTALLED_ESPEAK))
    demo.topic = "Cats sleep sixteen hours a day, and they see well in the dark"
    result = demo.run("voice")
    assert result.result["engine"] == ESPEAK
    assert fricative_frames(Path(result.result_ref)) >= 5


def test_the_video_names_the_engine_its_narration_came_from(demo: DemoRun) -> None:
    _, video = run_create_video(demo)  # espeak-ng hidden: the fallback
    assert video.result["narration_engine"] == TONE


def test_the_narration_notice_names_the_engine_and_how_to_get_speech() -> None:
    assert narration_notice(ESPEAK) == "narration: spoken by espeak-ng"
    fallback = narration_notice(TONE)
    assert fallback.startswith("narration: a tone melody (fallback: espeak-ng is not installed")
    assert "make demo" in fallback
    assert "apt-get install espeak-ng" in fallback
