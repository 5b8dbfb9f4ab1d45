"""`handle_task` dispatch, input validation, and a full CreateVideo-shaped run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scenarist.demo.artefacts import DemoResult, sha256_of
from scenarist.demo.errors import DemoPayloadError
from scenarist.demo.handlers import HANDLED_SERVICES, handle_task
from scenarist.demo.media import probe_media, run_ffmpeg
from scenarist.demo.slides import background_colour
from tests.demo.conftest import DemoRun

SLIDES = 3


def run_create_video(demo: DemoRun) -> tuple[DemoResult, DemoResult]:
    """The CreateVideo graph, called in dependency order: (voice, video)."""
    script = demo.run("script", parts=str(SLIDES))
    voice = demo.run("voice", [demo.as_input("script", script)])
    images = []
    for part in range(1, SLIDES + 1):
        numbers = {"part": str(part), "parts": str(SLIDES)}
        prompt = demo.run("slide_prompt", [demo.as_input("script", script)], **numbers)
        image = demo.run("slide_image", [demo.as_input(f"slide_prompt_{part}", prompt)], **numbers)
        images.append(demo.as_input(f"slide_image_{part}", image))
    # the fan-in lists the slides out of order: the handler must sort them by index
    inputs = [demo.as_input("voice", voice), images[2], images[0], images[1]]
    return voice, demo.run("video", inputs)


def frame_colour(video: Path, at_seconds: float, work_dir: Path) -> tuple[int, int, int]:
    """The colour of the video's top-right corner (slide background) at a given time."""
    still = work_dir / f"frame_{at_seconds:.2f}.png"
    run_ffmpeg(
        ["-y", "-ss", f"{at_seconds:.3f}", "-i", str(video), "-frames:v", "1", str(still)],
        timeout=60,
        what="extracting a frame",
    )
    with Image.open(still) as image:
        red, green, blue = image.convert("RGB").getpixel((1270, 5))  # type: ignore[misc]
    return red, green, blue


def test_create_video_pipeline_produces_a_playable_mp4(demo: DemoRun, tmp_path: Path) -> None:
    voice, video = run_create_video(demo)

    path = Path(video.result_ref)
    assert path == demo.out_dir.resolve() / "video.mp4"
    info = probe_media(path)
    assert info.duration_seconds is not None
    assert info.duration_seconds > 0
    assert info.duration_seconds == pytest.approx(voice.result["duration_seconds"], abs=0.3)
    assert (info.video_streams, info.audio_streams) == (1, 1)
    assert (info.width, info.height) == (1280, 720)
    assert (info.video_codecs, info.audio_codecs) == (("h264",), ("aac",))
    assert info.pixel_format == "yuv420p"
    assert video.result["mime"] == "video/mp4"
    assert video.result["slides"] == SLIDES
    assert video.result["bytes"] == path.stat().st_size
    assert video.result["sha256"] == sha256_of(path)
    assert (video.result["width"], video.result["height"]) == (1280, 720)
    # each slide fills its equal share of the audio, in index order
    share = voice.result["duration_seconds"] / SLIDES
    for part in range(1, SLIDES + 1):
        seen = frame_colour(path, (part - 0.5) * share, tmp_path)
        expected = background_colour(part)
        assert all(abs(a - b) <= 12 for a, b in zip(seen, expected, strict=True)), part
    assert sorted(p.name for p in demo.out_dir.iterdir()) == [
        "script.txt",
        "slide_1.png",
        "slide_2.png",
        "slide_3.png",
        "slide_prompt_1.txt",
        "slide_prompt_2.txt",
        "slide_prompt_3.txt",
        "video.mp4",
        "voice.wav",
    ]


def test_handled_services_match_the_catalog() -> None:
    assert HANDLED_SERVICES == ("text-service", "audio-service", "image-service", "video-service")


@pytest.mark.parametrize(
    ("service", "task_payload", "field", "message"),
    [
        ("mail-service", {"kind": "script", "topic": "x"}, "service", "no demo handler"),
        ("text-service", {"topic": "x"}, "kind", "'kind' is required"),
        ("text-service", {"kind": "poem", "topic": "x"}, "kind", "known kinds: script"),
        ("image-service", {"kind": "script", "topic": "x"}, "kind", "handled by text-service"),
        ("text-service", {"kind": "script"}, "topic", "'topic' is required"),
        ("text-service", {"kind": "script", "topic": "  "}, "topic", "must not be blank"),
        ("text-service", {"kind": "script", "topic": 5}, "topic", "must be a string"),
        ("text-service", {"kind": "script", "topic": "x", "parts": "three"}, "parts", "three"),
        ("text-service", {"kind": "slide_prompt", "topic": "x", "parts": "2"}, "part", "part"),
        ("audio-service", {"kind": "voice", "topic": "x", "take": "0"}, "take", "between 1"),
        ("image-service", {"kind": "slide_image", "topic": "x", "part": "a", "parts": "1"},
         "part", "'a'"),
    ],
)  # fmt: skip
def test_bad_payloads_raise_value_errors_naming_the_field(
    tmp_path: Path, service: str, task_payload: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        handle_task(service, task_payload, [], tmp_path)
    assert isinstance(caught.value, DemoPayloadError)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_video_without_slides_or_voice_is_rejected(demo: DemoRun) -> None:
    voice = demo.run("voice")
    slide = demo.run("slide_image", part=1, parts=1)

    with pytest.raises(DemoPayloadError, match="at least one slide image") as no_slides:
        demo.run("video", [demo.as_input("voice", voice)])
    with pytest.raises(DemoPayloadError, match="needs an audio input") as no_voice:
        demo.run("video", [demo.as_input("slide_image_1", slide)])
    assert no_slides.value.field == no_voice.value.field == "inputs"


def test_inputs_must_point_at_existing_files(demo: DemoRun, tmp_path: Path) -> None:
    missing = {"task": "script", "result_ref": str(tmp_path / "gone.txt"), "result": None}

    with pytest.raises(DemoPayloadError, match=r"input 'script'.*gone\.txt") as caught:
        demo.run("voice", [missing])
    assert caught.value.field == "inputs"
    with pytest.raises(DemoPayloadError, match="no task name"):
        demo.run("voice", [{"result_ref": None}])


def test_inputs_without_an_artefact_are_ignored(demo: DemoRun) -> None:
    ordering_only = {"task": "approve", "result_ref": None, "result": {"ok": True}}

    result = demo.run("voice", [ordering_only])

    assert result.result["characters"] == len("Bees")


def test_inputs_are_recognised_by_suffix_when_metadata_is_missing(demo: DemoRun) -> None:
    script = demo.run("script", parts=2)
    bare = {"task": "narration", "result_ref": script.result_ref, "result": None}

    prompt = demo.run("slide_prompt", [bare], part=2, parts=2)

    assert prompt.result["title"] == "Summary"


def test_out_dir_is_created_and_parallel_parts_do_not_clobber(tmp_path: Path) -> None:
    demo = DemoRun(tmp_path / "deep" / "nested" / "out")

    def draw(part: int) -> DemoResult:
        return demo.run("slide_image", part=part, parts=4)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(draw, range(1, 5)))

    assert len({result.result_ref for result in results}) == 4
    assert len({result.result["sha256"] for result in results}) == 4
    assert all(Path(result.result_ref).is_file() for result in results)
    assert demo.leftover_temp_files() == []
