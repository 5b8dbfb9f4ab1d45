"""kind=slide_image (image-service): Pillow slides."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from scenarist.demo.slides import SLIDE_HEIGHT, SLIDE_WIDTH, background_colour, wrap_text
from scenarist.demo.text import SlidePrompt
from tests.demo.conftest import DemoRun


def prompt_input(demo: DemoRun, part: int, prompt: SlidePrompt) -> dict[str, object]:
    demo.out_dir.mkdir(parents=True, exist_ok=True)
    path = demo.out_dir / f"given_prompt_{part}.txt"
    path.write_text(prompt.render(), encoding="utf-8")
    return {"task": f"slide_prompt_{part}", "result_ref": str(path), "result": None}


def ink_pixels(image: Image.Image, background: tuple[int, int, int]) -> int:
    """Pixels of the slide body that differ from the background: drawn text and shapes."""
    body = image.crop((40, 0, SLIDE_WIDTH, SLIDE_HEIGHT)).convert("RGB")
    difference = ImageChops.difference(body, Image.new("RGB", body.size, background))
    changed = difference.point(lambda value: 255 if value else 0).convert("L")
    return body.width * body.height - changed.histogram()[0]


def is_blank(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> bool:
    region = image.convert("RGB").crop(box)
    return ImageChops.difference(region, Image.new("RGB", region.size, colour)).getbbox() is None


def test_slide_is_a_1280x720_png_in_its_part_colour(demo: DemoRun) -> None:
    result = demo.run("slide_image", part="2", parts="3")

    path = Path(result.result_ref)
    assert path.name == "slide_2.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1280, 720)
        assert image.convert("RGB").getpixel((1270, 5)) == background_colour(2)
        assert ink_pixels(image, background_colour(2)) > 5000
    assert result.result["mime"] == "image/png"
    assert (result.result["width"], result.result["height"]) == (1280, 720)
    assert result.result["title"] == "Background"  # from the topic: no prompt input
    assert demo.leftover_temp_files() == []


def test_neighbouring_parts_get_different_backgrounds() -> None:
    colours = {background_colour(part) for part in range(1, 11)}

    assert len(colours) == 10


def test_slide_draws_its_own_prompt_among_several(demo: DemoRun) -> None:
    inputs = [
        prompt_input(demo, 1, SlidePrompt("First slide", ("alpha",))),
        prompt_input(demo, 2, SlidePrompt("Second slide", ("beta",))),
    ]

    result = demo.run("slide_image", inputs, part=2, parts=2)

    assert result.result["title"] == "Second slide"


def test_slide_title_and_bullets_change_the_pixels(demo: DemoRun) -> None:
    short = demo.run("slide_image", [prompt_input(demo, 1, SlidePrompt("A", ()))], part=1, parts=1)
    with Image.open(short.result_ref) as image:
        sparse = ink_pixels(image, background_colour(1))
    full = demo.run(
        "slide_image",
        [prompt_input(demo, 1, SlidePrompt("A much longer title", ("one", "two", "three")))],
        part=1,
        parts=1,
    )
    with Image.open(full.result_ref) as image:
        dense = ink_pixels(image, background_colour(1))

    assert dense > sparse * 1.5


def test_overlong_text_is_wrapped_and_clipped_inside_the_slide(demo: DemoRun) -> None:
    long_words = " ".join(["honeycomb"] * 80)
    prompt = SlidePrompt("Title " * 40, (*[long_words] * 10, "x" * 400))

    result = demo.run("slide_image", [prompt_input(demo, 1, prompt)], part=1, parts=1)

    with Image.open(result.result_ref) as image:
        assert image.size == (1280, 720)
        # bullets stop above the footer, the footer stays one line, and nothing spills
        assert not is_blank(image, (40, 560, 1280, 630), background_colour(1))
        assert is_blank(image, (40, 632, 1280, 648), background_colour(1))
        assert is_blank(image, (40, 690, 1280, 720), background_colour(1))


@pytest.mark.parametrize("text", ["short", "many small words " * 20, "y" * 300])
def test_wrapped_lines_fit_the_width(text: str) -> None:
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default(size=36)

    lines = wrap_text(draw, text, font, 600)

    assert all(draw.textlength(line, font=font) <= 600 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
