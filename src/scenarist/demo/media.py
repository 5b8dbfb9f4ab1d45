"""Video assembly and probing with the ffmpeg binary bundled by `imageio-ffmpeg`.

There is no ffprobe in that package, so `probe_media` runs `ffmpeg -i <file>` with no
output and parses the stream summary ffmpeg prints to stderr.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from scenarist.demo.artefacts import atomic_output
from scenarist.demo.errors import MediaToolError

VIDEO_WIDTH = 1280
VIDEO_HEIGHT = 720
VIDEO_FPS = 25
PROBE_TIMEOUT_SECONDS = 30.0
ENCODE_TIMEOUT_SECONDS = 540.0  # inside the video task's 600 s lease
STDERR_TAIL_CHARS = 2000

_DURATION = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (\w+)(.*)$", re.MULTILINE)
_SIZE = re.compile(r"[,\s](\d{2,5})x(\d{2,5})[\s,\[]")
_PIXEL_FORMAT = re.compile(r"^[^,]*,\s*(\w+)")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What ffmpeg reports about a media file; sizes are those of the first video stream."""

    duration_seconds: float | None
    video_streams: int
    audio_streams: int
    width: int | None
    height: int | None
    video_codecs: tuple[str, ...] = ()
    audio_codecs: tuple[str, ...] = ()
    pixel_format: str | None = None


def ffmpeg_executable() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(arguments: Sequence[str], *, timeout: float, what: str) -> str:
    """Run ffmpeg, return its stderr; raise MediaToolError naming `what` on failure."""
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", *arguments]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"ffmpeg timed out after {timeout:.0f} s while {what}") from exc
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode != 0:
        tail = stderr.strip()[-STDERR_TAIL_CHARS:]
        raise MediaToolError(f"ffmpeg failed ({completed.returncode}) while {what}: {tail}")
    return stderr


def probe_media(path: Path | str) -> MediaInfo:
    """Streams, size and duration of a media file, from `ffmpeg -i`'s stderr."""
    if not Path(path).is_file():
        raise MediaToolError(f"cannot probe {path}: no such file")
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-i", str(path)]
    try:
        # with no output file ffmpeg always exits non-zero; the summary is what we want
        completed = subprocess.run(
            command, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"ffmpeg timed out probing {path}") from exc
    return parse_probe_output(completed.stderr.decode("utf-8", "replace"), source=str(path))


def parse_probe_output(stderr: str, *, source: str) -> MediaInfo:
    if "Input #0" not in stderr:
        tail = stderr.strip()[-STDERR_TAIL_CHARS:]
        raise MediaToolError(f"ffmpeg cannot read {source}: {tail}")
    duration_match = _DURATION.search(stderr)
    duration = None
    if duration_match:
        hours, minutes, seconds = duration_match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video = [(codec, rest) for kind, codec, rest in _STREAM.findall(stderr) if kind == "Video"]
    audio = [codec for kind, codec, _ in _STREAM.findall(stderr) if kind == "Audio"]
    width = height = None
    pixel_format = None
    if video:
        size_match = _SIZE.search(video[0][1] + " ")
        if size_match:
            width, height = int(size_match.group(1)), int(size_match.group(2))
        format_match = _PIXEL_FORMAT.match(video[0][1])
        pixel_format = format_match.group(1) if format_match else None
    return MediaInfo(
        duration_seconds=duration,
        video_streams=len(video),
        audio_streams=len(audio),
        width=width,
        height=height,
        video_codecs=tuple(codec for codec, _ in video),
        audio_codecs=tuple(audio),
        pixel_format=pixel_format,
    )


def concat_list(slides: Sequence[Path], seconds_per_slide: float) -> str:
    """An ffconcat script showing each image for `seconds_per_slide`."""
    lines = ["ffconcat version 1.0"]
    for slide in slides:
        lines += [f"file {_quote(slide)}", f"duration {seconds_per_slide:.3f}"]
    # the concat demuxer ignores the last entry's duration unless the file is repeated
    lines.append(f"file {_quote(slides[-1])}")
    return "\n".join(lines) + "\n"


def _quote(path: Path) -> str:
    escaped = str(Path(path).resolve()).replace("'", "'\\''")
    return f"'{escaped}'"


def assemble_slideshow(
    slides: Sequence[Path], audio: Path, audio_seconds: float, out_path: Path
) -> None:
    """Encode the slides, each shown for an equal share of the audio, with the audio as
    the sound track, into an H.264/AAC MP4 (yuv420p, 1280x720), written atomically."""
    if not slides:
        raise ValueError("a slideshow needs at least one slide")
    seconds_per_slide = audio_seconds / len(slides)
    with atomic_output(out_path) as temp_video:
        list_path = temp_video.with_suffix(".ffconcat")
        try:
            list_path.write_text(concat_list(slides, seconds_per_slide), encoding="utf-8")
            run_ffmpeg(
                _encode_arguments(list_path, audio, temp_video),
                timeout=ENCODE_TIMEOUT_SECONDS,
                what=f"encoding {out_path.name} from {len(slides)} slides",
            )
        finally:
            list_path.unlink(missing_ok=True)


def _encode_arguments(list_path: Path, audio: Path, output: Path) -> list[str]:
    # scale+pad: a slide of another size is letterboxed instead of failing the encode
    video_filter = (
        f"scale={VIDEO_WIDTH}:{VIDEO_HEIGHT}:force_original_aspect_ratio=decrease,"
        f"pad={VIDEO_WIDTH}:{VIDEO_HEIGHT}:(ow-iw)/2:(oh-ih)/2,"
        f"fps={VIDEO_FPS},format=yuv420p"
    )
    return [
        "-y", "-loglevel", "error",
        "-f", "concat", "-safe", "0", "-i", str(list_path),
        "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0",
        "-vf", video_filter,
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23",
        "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-movflags", "+faststart",
        "-f", "mp4", str(output),
    ]  # fmt: skip
