"""kind=voice (audio-service): the tone fallback and the espeak-ng path."""

from __future__ import annotations

import stat
import sys
import wave
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest

from scenarist.demo.errors import MediaToolError
from scenarist.demo.speech import read_wav_timing, tone_duration
from tests.demo.conftest import DemoRun

# A stand-in for espeak-ng: records its argv and stdin, then writes 1.5 s of 16 kHz audio
# to the file named after -w, the way the real program does.
FAKE_ESPEAK = """#!{python}
import sys, wave
from pathlib import Path
args = sys.argv[1:]
Path({record!r}).write_text(repr(args) + "\\n" + sys.stdin.read(), encoding="utf-8")
if {fail!r}:
    sys.stderr.write("voice not found\\n")
    sys.exit(3)
with wave.open(args[args.index("-w") + 1], "wb") as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(16000)
    out.writeframes(b"\\x10\\x00" * 24000)
"""


def make_fake_espeak(directory: Path, *, fail: bool = False) -> tuple[Path, Path]:
    program, record = directory / "espeak-ng", directory / "espeak-call.txt"
    program.write_text(
        FAKE_ESPEAK.format(python=sys.executable, record=str(record), fail=fail),
        encoding="utf-8",
    )
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return program, record


def pcm_samples(path: Path) -> array[int]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        samples = array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def test_voice_without_espeak_is_a_tone_of_the_topic(demo: DemoRun) -> None:
    result = demo.run("voice")

    path = Path(result.result_ref)
    assert path == demo.out_dir.resolve() / "voice.wav"
    assert result.result["engine"] == "tone"
    assert result.result["mime"] == "audio/wav"
    assert result.result["characters"] == len("Bees")
    assert result.result["duration_seconds"] == pytest.approx(2.0)
    assert read_wav_timing(path)[0] == pytest.approx(2.0)
    samples = pcm_samples(path)
    assert max(samples) > 3000  # audible, not silence
    assert len(set(samples)) > 100  # a waveform, not a constant
    assert demo.leftover_temp_files() == []


def test_voice_reads_the_script_input(demo: DemoRun) -> None:
    script = demo.run("script", parts=1)
    script_chars = len(Path(script.result_ref).read_text(encoding="utf-8").strip())

    result = demo.run("voice", [demo.as_input("script", script)])

    assert result.result["characters"] == script_chars
    assert result.result["duration_seconds"] == pytest.approx(tone_duration("x" * script_chars))


@pytest.mark.parametrize(
    ("characters", "seconds"), [(0, 2.0), (10, 2.0), (100, 6.0), (500, 30.0), (5000, 60.0)]
)
def test_tone_duration_scales_with_text_within_bounds(characters: int, seconds: float) -> None:
    assert tone_duration("x" * characters) == pytest.approx(seconds)


def test_takes_get_their_own_files_and_differ(demo: DemoRun) -> None:
    first = demo.run("voice", take="1")
    second = demo.run("voice", take="2")

    assert Path(first.result_ref).name == "voice_1.wav"
    assert Path(second.result_ref).name == "voice_2.wav"
    assert first.result["sha256"] != second.result["sha256"]


def test_espeak_is_used_when_found(
    demo: DemoRun, tmp_path: Path, use_espeak: Callable[[Path], None]
) -> None:
    program, record = make_fake_espeak(tmp_path)
    use_espeak(program)
    script = demo.run("script", parts=1)

    result = demo.run("voice", [demo.as_input("script", script)])

    assert result.result["engine"] == "espeak-ng"
    assert result.result["duration_seconds"] == pytest.approx(1.5)
    assert result.result["sample_rate"] == 16000
    argv_line, _, spoken = record.read_text(encoding="utf-8").partition("\n")
    assert "'-w'" in argv_line
    assert "'--stdin'" in argv_line
    assert spoken == Path(script.result_ref).read_text(encoding="utf-8").strip()
    assert read_wav_timing(Path(result.result_ref))[0] == pytest.approx(1.5)


def test_failing_espeak_raises_and_leaves_no_file(
    demo: DemoRun, tmp_path: Path, use_espeak: Callable[[Path], None]
) -> None:
    program, _ = make_fake_espeak(tmp_path, fail=True)
    use_espeak(program)

    with pytest.raises(MediaToolError, match="exited with 3: voice not found"):
        demo.run("voice")
    assert list(demo.out_dir.iterdir()) == []


def test_reading_a_non_wav_file_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "voice.wav"
    bogus.write_bytes(b"not a wav at all" * 10)

    with pytest.raises(MediaToolError, match=r"voice\.wav is not a PCM WAV"):
        read_wav_timing(bogus)


def test_a_header_claiming_more_audio_than_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "streamed.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x01" * 8000)
    data = bytearray(path.read_bytes())
    data[40:44] = (0x7FFFFFF0).to_bytes(4, "little")  # a streaming writer's placeholder size
    path.write_bytes(bytes(data))

    assert read_wav_timing(path)[0] == pytest.approx(1.0)
