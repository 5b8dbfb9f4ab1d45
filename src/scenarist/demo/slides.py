"""Slide images drawn with Pillow: 1280x720, a background colour per part, the slide's
title and bullets, the topic and "Slide k / N". Only Pillow's bundled default font is
used, so drawing needs no font files and no network."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from scenarist.demo.artefacts import atomic_output
from scenarist.demo.text import SlidePrompt, short_topic

SLIDE_WIDTH = 1280
SLIDE_HEIGHT = 720
MARGIN = 80
TITLE_SIZE = 60
BULLET_SIZE = 36
FOOTER_SIZE = 26
LINE_GAP = 10
TITLE_MAX_LINES = 2
FOOTER_TOP = SLIDE_HEIGHT - 70
TEXT_COLOUR = (255, 255, 255)
MUTED_COLOUR = (220, 226, 235)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class SlideSpec:
    prompt: SlidePrompt
    topic: str
    part: int
    parts: int


def background_colour(part: int) -> tuple[int, int, int]:
    """A dark, saturated colour per part; golden-ratio hue steps keep neighbours distinct."""
    hue = (0.58 + (part - 1) * 0.618034) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.55, 0.38)
    return round(red * 255), round(green * 255), round(blue * 255)


def accent_colour(part: int) -> tuple[int, int, int]:
    hue = (0.58 + (part - 1) * 0.618034) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.45, 0.95)
    return round(red * 255), round(green * 255), round(blue * 255)


def draw_slide(spec: SlideSpec, out_path: Path) -> tuple[int, int]:
    """Draw the slide and write it atomically as a PNG; returns (width, height)."""
    image = Image.new("RGB", (SLIDE_WIDTH, SLIDE_HEIGHT), background_colour(spec.part))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 18, SLIDE_HEIGHT), fill=accent_colour(spec.part))
    y = _draw_title(draw, spec, MARGIN)
    _draw_bullets(draw, spec, y + 36)
    _draw_footer(draw, spec)
    with atomic_output(out_path) as temp_path:
        image.save(temp_path, format="PNG", optimize=True)
    return image.size


def _draw_title(draw: ImageDraw.ImageDraw, spec: SlideSpec, top: int) -> int:
    font = _font(TITLE_SIZE)
    lines = wrap_text(draw, spec.prompt.title, font, SLIDE_WIDTH - 2 * MARGIN)
    y = top
    for line in _clip_lines(lines, TITLE_MAX_LINES):
        draw.text((MARGIN, y), line, font=font, fill=TEXT_COLOUR)
        y += TITLE_SIZE + LINE_GAP
    draw.line((MARGIN, y + 12, MARGIN + 220, y + 12), fill=accent_colour(spec.part), width=6)
    return y + 12


def _draw_bullets(draw: ImageDraw.ImageDraw, spec: SlideSpec, top: int) -> None:
    font = _font(BULLET_SIZE)
    indent = MARGIN + 40
    bottom = FOOTER_TOP - 20
    y = top
    for bullet in spec.prompt.bullets:
        lines = wrap_text(draw, bullet, font, SLIDE_WIDTH - indent - MARGIN)
        room = max(0, (bottom - y) // (BULLET_SIZE + LINE_GAP))
        if room == 0:
            break
        # a dot drawn as a shape: the default font may lack a bullet glyph
        dot_y = y + round(BULLET_SIZE * 0.62)  # the x-height's middle, not the line's
        draw.ellipse((MARGIN + 8, dot_y - 7, MARGIN + 22, dot_y + 7), fill=accent_colour(spec.part))
        for line in _clip_lines(lines, room):
            draw.text((indent, y), line, font=font, fill=TEXT_COLOUR)
            y += BULLET_SIZE + LINE_GAP
        y += LINE_GAP * 2


def _draw_footer(draw: ImageDraw.ImageDraw, spec: SlideSpec) -> None:
    font = _font(FOOTER_SIZE)
    counter = f"Slide {spec.part} / {spec.parts}"
    counter_width = draw.textlength(counter, font=font)
    draw.text(
        (SLIDE_WIDTH - MARGIN - counter_width, FOOTER_TOP), counter, font=font, fill=MUTED_COLOUR
    )
    topic_width = SLIDE_WIDTH - 3 * MARGIN - counter_width
    topic_lines = wrap_text(draw, short_topic(spec.topic), font, int(topic_width))
    draw.text((MARGIN, FOOTER_TOP), _clip_lines(topic_lines, 1)[0], font=font, fill=MUTED_COLOUR)


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: int) -> list[str]:
    """Greedy word wrap by rendered width; a word wider than a line is split by letters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while draw.textlength(current, font=font) > max_width and len(current) > 1:
            split_at = _longest_fitting_prefix(draw, current, font, max_width)
            lines.append(current[:split_at])
            current = current[split_at:]
    if current:
        lines.append(current)
    return lines or [""]


def _longest_fitting_prefix(
    draw: ImageDraw.ImageDraw, word: str, font: Font, max_width: int
) -> int:
    end = 1
    while end < len(word) and draw.textlength(word[: end + 1], font=font) <= max_width:
        end += 1
    return end


def _clip_lines(lines: list[str], limit: int) -> list[str]:
    """At most `limit` lines; an ellipsis marks text that did not fit."""
    if len(lines) <= limit:
        return lines
    kept = lines[:limit]
    kept[-1] = kept[-1].rstrip(" .,;:") + "..."
    return kept


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)
