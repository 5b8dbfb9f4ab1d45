"""Speech for the narration: espeak-ng, or — the declared fallback — a tone melody.

espeak-ng is what the demo speaks with: `make demo` installs it first
(`scripts/ensure-system-deps.sh --demo`, Debian's package). Where it cannot be installed
(no root, no apt) the narration is a generated tone melody instead, and the demo says so
(`narration_notice`). Both engines write a 16-bit PCM WAV; the duration is always read
back from the file, so what the metadata says is what the video handler will find.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import wave
from array import array
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from scenarist.demo.artefacts import atomic_output
from scenarist.demo.errors import MediaToolError

ESPEAK = "espeak-ng"
TONE = "tone"
ESPEAK_TIMEOUT_SECONDS = 300.0
TONE_SAMPLE_RATE = 22_050
TONE_SECONDS_PER_CHAR = 0.06
TONE_MIN_SECONDS = 2.0
TONE_MAX_SECONDS = 60.0
TONE_NOTE_SECONDS = 0.3
WAV_HEADER_BYTES = 44

# A major pentatonic over two octaves: any sequence of these notes sounds consonant.
_PENTATONIC_SEMITONES = (0, 2, 4, 7, 9, 12, 14, 16)
_BASE_HZ = 220.0
# Takes of the same text differ audibly: (espeak pitch 0-99, tone transposition).
_TAKE_VARIATIONS = ((50, 0), (60, 2), (40, -3), (70, 5), (30, -5))


@dataclass(frozen=True, slots=True)
class SpeechTrack:
    engine: str  # ESPEAK or TONE
    duration_seconds: float
    sample_rate: int


def speak(text: str, out_path: Path, *, take: int = 1) -> SpeechTrack:
    """Write `text` as speech to `out_path` (a WAV), atomically."""
    espeak = shutil.which(ESPEAK)
    with atomic_output(out_path) as temp_path:
        if espeak:
            _speak_with_espeak(espeak, text, temp_path, take)
            engine = ESPEAK
        else:
            write_tone_wav(text, temp_path, take=take)
            engine = TONE
        duration, sample_rate = read_wav_timing(temp_path)
    return SpeechTrack(engine=engine, duration_seconds=duration, sample_rate=sample_rate)


def narration_notice(engine: str | None) -> str:
    """One line for the demo's output naming the engine the voice-over came from."""
    if engine == ESPEAK:
        return f"narration: spoken by {ESPEAK}"
    if engine == TONE:
        return (
            f"narration: a tone melody (fallback: {ESPEAK} is not installed; "
            f"`make demo` installs it, or: sudo apt-get install {ESPEAK})"
        )
    return f"narration: {engine or 'unknown engine'}"


def _speak_with_espeak(executable: str, text: str, wav_path: Path, take: int) -> None:
    pitch, _ = _TAKE_VARIATIONS[(take - 1) % len(_TAKE_VARIATIONS)]
    # text goes through stdin: a long script would not fit in argv on every platform
    command = [executable, "-p", str(pitch), "-w", str(wav_path), "--stdin"]
    try:
        completed = subprocess.run(
            command,
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"{ESPEAK} timed out after {exc.timeout:.0f} s") from exc
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise MediaToolError(f"{ESPEAK} exited with {completed.returncode}: {stderr}")
    if not wav_path.is_file() or wav_path.stat().st_size <= WAV_HEADER_BYTES:
        raise MediaToolError(f"{ESPEAK} wrote no audio to {wav_path.name}")


def tone_duration(text: str) -> float:
    """Longer text, longer melody: ~0.06 s a character, kept within 2..60 s."""
    return min(TONE_MAX_SECONDS, max(TONE_MIN_SECONDS, len(text) * TONE_SECONDS_PER_CHAR))


def write_tone_wav(text: str, wav_path: Path, *, take: int = 1) -> None:
    """A soft pentatonic melody, one note per word (cycling), as long as `tone_duration`."""
    _, transpose = _TAKE_VARIATIONS[(take - 1) % len(_TAKE_VARIATIONS)]
    total_frames = round(tone_duration(text) * TONE_SAMPLE_RATE)
    degrees = _melody_degrees(text)
    samples = array("h")
    note_number = 0
    while len(samples) < total_frames:
        degree = degrees[note_number % len(degrees)]
        samples.extend(_note_samples(_PENTATONIC_SEMITONES[degree] + transpose))
        note_number += 1
    del samples[total_frames:]
    if sys.byteorder == "big":  # WAV data is little-endian
        samples.byteswap()
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(TONE_SAMPLE_RATE)
        wav.writeframes(samples.tobytes())


def _melody_degrees(text: str) -> list[int]:
    words = text.split() or [text or "tone"]
    return [sum(map(ord, word)) % len(_PENTATONIC_SEMITONES) for word in words]


@cache
def _note_samples(semitones: int) -> array[int]:
    """One note with a fundamental, a quiet octave and a click-free envelope."""
    frequency = _BASE_HZ * 2 ** (semitones / 12)
    frames = round(TONE_NOTE_SECONDS * TONE_SAMPLE_RATE)
    attack = round(0.01 * TONE_SAMPLE_RATE)
    release = round(0.03 * TONE_SAMPLE_RATE)
    samples = array("h")
    for frame in range(frames):
        t = frame / TONE_SAMPLE_RATE
        envelope = min(1.0, frame / attack, (frames - frame) / release) * math.exp(-2.5 * t)
        wave_value = math.sin(2 * math.pi * frequency * t)
        wave_value += 0.3 * math.sin(4 * math.pi * frequency * t)
        samples.append(round(9000 * envelope * wave_value))
    return samples


def read_wav_timing(wav_path: Path) -> tuple[float, int]:
    """(duration in seconds, sample rate) of a PCM WAV file."""
    try:
        with wave.open(str(wav_path), "rb") as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
            frame_bytes = wav.getsampwidth() * wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise MediaToolError(f"{wav_path.name} is not a PCM WAV file: {exc}") from exc
    # a streaming writer may leave a placeholder size in the header; trust the file size
    frames_on_disk = max(0, wav_path.stat().st_size - WAV_HEADER_BYTES) // max(1, frame_bytes)
    frames = min(frames, frames_on_disk)
    if rate <= 0 or frames == 0:
        raise MediaToolError(f"{wav_path.name} holds no audio")
    return frames / rate, rate
