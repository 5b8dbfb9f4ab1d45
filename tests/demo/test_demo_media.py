"""ffmpeg probing and slideshow assembly, on their own."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from PIL import Image

from scenarist.demo.errors import MediaToolError
from scenarist.demo.media import (
    assemble_slideshow,
    concat_list,
    parse_probe_output,
    probe_media,
)

PROBED_MP4 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'video.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:01:02.50, start: 0.000000, bitrate: 104 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
1280x720 [SAR 1:1 DAR 16:9], 40 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 22050 Hz, mono, fltp (default)
At least one output file must be specified
"""


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x10" * round(seconds * rate))
    return path


def write_png(path: Path, size: tuple[int, int], colour: str) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def test_parse_probe_output_reads_streams_size_and_duration() -> None:
    info = parse_probe_output(PROBED_MP4, source="video.mp4")

    assert info.duration_seconds == pytest.approx(62.5)
    assert (info.video_streams, info.audio_streams) == (1, 1)
    assert (info.width, info.height) == (1280, 720)
    assert info.video_codecs == ("h264",)
    assert info.audio_codecs == ("aac",)
    assert info.pixel_format == "yuv420p"


def test_parse_probe_output_rejects_unreadable_input() -> None:
    with pytest.raises(MediaToolError, match=r"cannot read x\.bin: .*Invalid data"):
        parse_probe_output("x.bin: Invalid data found when processing input\n", source="x.bin")


def test_probe_media_on_real_files(tmp_path: Path) -> None:
    wav_info = probe_media(write_wav(tmp_path / "a.wav", 1.25))
    png_info = probe_media(write_png(tmp_path / "s.png", (320, 200), "red"))

    assert wav_info.duration_seconds == pytest.approx(1.25, abs=0.01)
    assert (wav_info.video_streams, wav_info.audio_streams) == (0, 1)
    assert (png_info.video_streams, png_info.audio_streams) == (1, 0)
    assert (png_info.width, png_info.height) == (320, 200)


def test_probe_media_fails_on_missing_and_garbage_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00garbage" * 100)

    with pytest.raises(MediaToolError, match="no such file"):
        probe_media(tmp_path / "absent.mp4")
    with pytest.raises(MediaToolError, match="cannot read"):
        probe_media(garbage)


def test_concat_list_repeats_the_last_slide_and_quotes_paths(tmp_path: Path) -> None:
    odd = tmp_path / "it's.png"

    script = concat_list([tmp_path / "a.png", odd], 1.5)

    lines = script.splitlines()
    assert lines[0] == "ffconcat version 1.0"
    assert lines.count("duration 1.500") == 2
    assert lines[-1] == lines[-3] == f"file '{tmp_path.resolve()}/it'\\''s.png'"


def test_slideshow_letterboxes_other_sizes_to_720p(tmp_path: Path) -> None:
    slides = [
        write_png(tmp_path / "a.png", (640, 480), "navy"),
        write_png(tmp_path / "b.png", (1280, 720), "teal"),
    ]
    out = tmp_path / "show.mp4"

    assemble_slideshow(slides, write_wav(tmp_path / "a.wav", 1.0), 1.0, out)

    info = probe_media(out)
    assert (info.width, info.height) == (1280, 720)
    assert info.pixel_format == "yuv420p"
    assert info.video_codecs == ("h264",)
    assert info.audio_codecs == ("aac",)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.wav", "b.png", "show.mp4"]


def test_failed_encode_raises_with_ffmpeg_message_and_leaves_nothing(tmp_path: Path) -> None:
    not_an_image = tmp_path / "broken.png"
    not_an_image.write_text("this is not a png", encoding="utf-8")
    out = tmp_path / "video.mp4"

    with pytest.raises(MediaToolError, match=r"ffmpeg failed \(\d+\) while encoding video.mp4"):
        assemble_slideshow([not_an_image], write_wav(tmp_path / "a.wav", 1.0), 1.0, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "broken.png"]
