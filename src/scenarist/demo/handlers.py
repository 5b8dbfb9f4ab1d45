"""The demo workers' task handlers, as pure functions over plain data.

`handle_task` takes what a leased task carries (service, payload, upstream inputs) and an
output directory, writes one artefact there and returns its path and JSON metadata. It
knows nothing of HTTP, so any worker SDK can wrap it. File names include the part or take,
so the parallel copies of one scenario never write the same file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scenarist.demo.artefacts import (
    DemoResult,
    file_metadata,
    prepare_out_dir,
    write_text_atomic,
)
from scenarist.demo.errors import DemoPayloadError, MediaToolError
from scenarist.demo.media import assemble_slideshow, probe_media
from scenarist.demo.payload import (
    UpstreamArtefact,
    parse_count,
    parse_part_position,
    require_text,
    select_artefacts,
    upstream_artefacts,
)
from scenarist.demo.slides import SlideSpec, draw_slide
from scenarist.demo.speech import speak
from scenarist.demo.text import (
    auto_parts,
    narration_paragraph,
    narration_script,
    paragraph_for_part,
    parse_slide_prompt,
    prompt_from_paragraph,
    script_sections,
)

HANDLED_SERVICES = ("text-service", "audio-service", "image-service", "video-service")
TEXT_PREVIEW_CHARS = 200

Handler = Callable[[Mapping[str, Any], list[UpstreamArtefact], Path], DemoResult]

__all__ = ["HANDLED_SERVICES", "DemoResult", "handle_task"]


def handle_task(
    service: str,
    payload: Mapping[str, Any],
    inputs: Sequence[Mapping[str, Any]],
    out_dir: Path,
) -> DemoResult:
    """Run the demo handler for `payload["kind"]`, which must belong to `service`."""
    if service not in HANDLED_SERVICES:
        raise DemoPayloadError(
            f"service {service!r} has no demo handler; demo services: "
            f"{', '.join(HANDLED_SERVICES)}",
            field="service",
        )
    if not isinstance(payload, Mapping):
        raise DemoPayloadError("payload must be a mapping", field="payload")
    kind = require_text(payload, "kind")
    route = _ROUTES.get(kind)
    if route is None:
        raise DemoPayloadError(
            f"payload field 'kind' is {kind!r}; known kinds: {', '.join(sorted(_ROUTES))}",
            field="kind",
        )
    owner, handler = route
    if owner != service:
        raise DemoPayloadError(
            f"payload kind {kind!r} is handled by {owner}, not {service}", field="kind"
        )
    return handler(payload, upstream_artefacts(inputs), prepare_out_dir(out_dir))


def _text_inputs(artefacts: Sequence[UpstreamArtefact], task_prefix: str) -> list[UpstreamArtefact]:
    return select_artefacts(
        artefacts, mime_prefix="text/", suffixes=(".txt",), task_prefix=task_prefix
    )


def _text_result(path: Path, text: str, **extra: Any) -> DemoResult:
    metadata = file_metadata(path, "text/plain")
    metadata.update(characters=len(text), text=text[:TEXT_PREVIEW_CHARS], **extra)
    return DemoResult(result_ref=str(path), result=metadata)


def write_script(
    payload: Mapping[str, Any], artefacts: list[UpstreamArtefact], out_dir: Path
) -> DemoResult:
    """kind=script: the narration, a paragraph per part, to script.txt. `parts: auto`
    lets the writer choose the count from the topic; the result lists the `sections`
    (part, title), which CreateVideoAuto's `for_each` expands over."""
    topic = require_text(payload, "topic")
    if payload.get("parts") == "auto":
        parts = auto_parts(topic)
    else:
        parts = parse_count(payload, "parts", default=1)
    script = narration_script(topic, parts)
    path = out_dir / "script.txt"
    write_text_atomic(path, script)
    return _text_result(path, script, parts=parts, sections=script_sections(script))


def write_slide_prompt(
    payload: Mapping[str, Any], artefacts: list[UpstreamArtefact], out_dir: Path
) -> DemoResult:
    """kind=slide_prompt: title and bullets of one part, taken from the script input when
    there is one (CreateVideo), else written from the topic alone (CreateSlides)."""
    topic = require_text(payload, "topic")
    position = parse_part_position(payload)
    scripts = _text_inputs(artefacts, task_prefix="script")
    if scripts:
        script_text = scripts[0].path.read_text(encoding="utf-8")
        paragraph = paragraph_for_part(script_text, position.part, source=scripts[0].task)
    else:
        paragraph = narration_paragraph(topic, position.part, position.parts)
    prompt = prompt_from_paragraph(paragraph)
    path = out_dir / f"slide_prompt_{position.part}.txt"
    rendered = prompt.render()
    write_text_atomic(path, rendered + "\n")
    return _text_result(
        path, rendered, part=position.part, parts=position.parts, title=prompt.title
    )


def write_voice(
    payload: Mapping[str, Any], artefacts: list[UpstreamArtefact], out_dir: Path
) -> DemoResult:
    """kind=voice: speak the script input (or the topic when there is none) to a WAV."""
    topic = require_text(payload, "topic")
    take = parse_count(payload, "take", default=1, maximum=10_000)
    scripts = _text_inputs(artefacts, task_prefix="script")
    text = scripts[0].path.read_text(encoding="utf-8").strip() if scripts else topic
    if not text:
        raise DemoPayloadError(f"script input {scripts[0].task!r} is empty", field="inputs")
    # CreateVoice renders several takes into one directory; CreateVideo has a single voice
    path = out_dir / (f"voice_{take}.wav" if "take" in payload else "voice.wav")
    track = speak(text, path, take=take)
    metadata = file_metadata(path, "audio/wav")
    metadata.update(
        duration_seconds=round(track.duration_seconds, 3),
        engine=track.engine,
        sample_rate=track.sample_rate,
        characters=len(text),
    )
    return DemoResult(result_ref=str(path), result=metadata)


def draw_slide_image(
    payload: Mapping[str, Any], artefacts: list[UpstreamArtefact], out_dir: Path
) -> DemoResult:
    """kind=slide_image: a 1280x720 PNG of the slide prompt input for this part."""
    topic = require_text(payload, "topic")
    position = parse_part_position(payload)
    prompts = _text_inputs(artefacts, task_prefix="slide_prompt")
    own = [p for p in prompts if p.copy_index == position.part] or prompts[:1]
    if own:
        text = own[0].path.read_text(encoding="utf-8")
        prompt = parse_slide_prompt(text, source=own[0].task)
    else:
        prompt = prompt_from_paragraph(narration_paragraph(topic, position.part, position.parts))
    spec = SlideSpec(prompt=prompt, topic=topic, part=position.part, parts=position.parts)
    path = out_dir / f"slide_{position.part}.png"
    width, height = draw_slide(spec, path)
    metadata = file_metadata(path, "image/png")
    metadata.update(
        width=width, height=height, part=position.part, parts=position.parts, title=prompt.title
    )
    return DemoResult(result_ref=str(path), result=metadata)


def assemble_video(
    payload: Mapping[str, Any], artefacts: list[UpstreamArtefact], out_dir: Path
) -> DemoResult:
    """kind=video: the slide inputs, in index order, over the voice input, as an MP4."""
    require_text(payload, "topic")
    slides = select_artefacts(
        artefacts, mime_prefix="image/", suffixes=(".png",), task_prefix="slide_image"
    )
    if not slides:
        raise DemoPayloadError("video needs at least one slide image input", field="inputs")
    voices = select_artefacts(
        artefacts, mime_prefix="audio/", suffixes=(".wav",), task_prefix="voice"
    )
    if not voices:
        raise DemoPayloadError("video needs an audio input (the voice task)", field="inputs")
    slides.sort(key=lambda slide: slide.copy_index)  # stable: unnumbered keep input order
    audio_seconds = probe_media(voices[0].path).duration_seconds
    if not audio_seconds:
        raise MediaToolError(f"audio input {voices[0].task!r} has no measurable duration")
    path = out_dir / "video.mp4"
    assemble_slideshow([s.path for s in slides], voices[0].path, audio_seconds, path)
    info = probe_media(path)
    metadata = file_metadata(path, "video/mp4")
    metadata.update(
        duration_seconds=info.duration_seconds,
        width=info.width,
        height=info.height,
        slides=len(slides),
        video_codec=info.video_codecs[0] if info.video_codecs else None,
        audio_codec=info.audio_codecs[0] if info.audio_codecs else None,
        # which speech engine the voice-over came from, so `scenarist demo` can say it
        narration_engine=voices[0].result.get("engine"),
    )
    return DemoResult(result_ref=str(path), result=metadata)


_ROUTES: dict[str, tuple[str, Handler]] = {
    "script": ("text-service", write_script),
    "slide_prompt": ("text-service", write_slide_prompt),
    "voice": ("audio-service", write_voice),
    "slide_image": ("image-service", draw_slide_image),
    "video": ("video-service", assemble_video),
}
