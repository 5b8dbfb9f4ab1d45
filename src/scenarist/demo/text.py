"""Deterministic narration scripts and slide prompts, from templates (no AI, no network).

A script is one paragraph per part, paragraphs separated by a blank line, each opening
with a heading line `Part k: Title.` so it reads naturally when spoken and a slide prompt
can find its part again. A slide prompt is a `Title:` line followed by `- ` bullets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scenarist.demo.errors import DemoPayloadError

SHORT_TOPIC_CHARS = 80
BULLET_CHARS = 110

_OPENING = (
    "Introduction",
    (
        "This presentation is about {topic}.",
        "We will look at what it is, why it matters and where it leads.",
        "Let us begin with the big picture.",
    ),
)
_CLOSING = (
    "Summary",
    (
        "We have walked through {topic} step by step.",
        "The key ideas fit together into one clear picture.",
        "Thank you for watching.",
    ),
)
_SINGLE = (
    "Overview",
    (
        "This short presentation is about {topic}.",
        "It covers the main idea, how it works and why it matters.",
        "Thank you for watching.",
    ),
)
_MIDDLE = (
    (
        "Background",
        (
            "Every subject has a history, and {topic} is no exception.",
            "Knowing where it comes from makes the rest easier to follow.",
            "A little context goes a long way.",
        ),
    ),
    (
        "Key ideas",
        (
            "A few key ideas sit at the heart of {topic}.",
            "Each one is simple on its own.",
            "Together they explain most of what we see.",
        ),
    ),
    (
        "How it works",
        (
            "Now let us see how {topic} works in practice.",
            "The pieces connect in a clear order, one step after another.",
            "Following that order keeps things predictable.",
        ),
    ),
    (
        "Examples",
        (
            "Examples make {topic} concrete.",
            "Small, everyday cases show the same patterns as large ones.",
            "Try to spot them in your own experience.",
        ),
    ),
    (
        "Challenges",
        (
            "Nothing is without trade-offs, and {topic} has its challenges.",
            "Understanding them helps avoid common mistakes.",
            "Good solutions usually start with a careful look at the problem.",
        ),
    ),
    (
        "Looking ahead",
        (
            "What comes next for {topic}?",
            "New ideas keep building on the foundations we have seen.",
            "The best is often yet to come.",
        ),
    ),
)

_LOWERED_OPENERS = frozenset(
    {"A", "An", "The", "How", "What", "Why", "When", "Where", "Who", "Which", "Our", "Your"}
)
_HEADING = re.compile(r"^Part (\d+): (.+)\.$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class SlidePrompt:
    """What one slide shows: a title and a few bullet lines."""

    title: str
    bullets: tuple[str, ...]

    def render(self) -> str:
        return "\n".join([f"Title: {self.title}", *(f"- {bullet}" for bullet in self.bullets)])


def short_topic(topic: str, limit: int = SHORT_TOPIC_CHARS) -> str:
    """The topic's first line, cut at a word boundary so it fits in a sentence or title."""
    first_line = " ".join(topic.split("\n", 1)[0].split())
    if len(first_line) <= limit:
        return first_line.rstrip(".")
    cut = first_line[:limit].rsplit(" ", 1)[0] or first_line[:limit]
    return cut.rstrip(" ,;:.") + "..."


def _mid_sentence(subject: str) -> str:
    """ "How bees make honey" reads as "... about how bees make honey" inside a sentence;
    only a few function words are lowered, so names ("Python", "NASA") keep their case."""
    first_word, _, rest = subject.partition(" ")
    if first_word in _LOWERED_OPENERS:
        return f"{first_word.lower()} {rest}".strip()
    return subject


def section_for(part: int, parts: int) -> tuple[str, tuple[str, ...]]:
    """The title and sentence templates of `part` (1-based) among `parts`."""
    if parts == 1:
        return _SINGLE
    if part == 1:
        return _OPENING
    if part == parts:
        return _CLOSING
    middle_index = part - 2
    title, sentences = _MIDDLE[middle_index % len(_MIDDLE)]
    round_number = middle_index // len(_MIDDLE) + 1
    # a long deck cycles through the sections; number the repeats so titles stay distinct
    return (f"{title} ({round_number})" if round_number > 1 else title), sentences


def narration_paragraph(topic: str, part: int, parts: int) -> str:
    title, sentences = section_for(part, parts)
    subject = _mid_sentence(short_topic(topic))
    body = " ".join(sentence.format(topic=subject) for sentence in sentences)
    return f"Part {part}: {title}.\n{body}"


def narration_script(topic: str, parts: int) -> str:
    """The whole narration: one paragraph per part, in order."""
    paragraphs = [narration_paragraph(topic, part, parts) for part in range(1, parts + 1)]
    return "\n\n".join(paragraphs) + "\n"


AUTO_MIN_PARTS, AUTO_MAX_PARTS = 2, 6


def auto_parts(topic: str) -> int:
    """How many parts the script writer chooses for a topic (deterministic: a longer
    description gets more parts), for scenarios whose script decides the slide count."""
    return max(AUTO_MIN_PARTS, min(AUTO_MAX_PARTS, 1 + len(topic.split()) // 3))


def script_sections(script: str) -> list[dict[str, object]]:
    """The parts of a script written by `narration_script`, in order: `part` and `title`
    (what a `for_each` over the script's result iterates)."""
    sections: list[dict[str, object]] = []
    for paragraph in (p.strip() for p in script.split("\n\n") if p.strip()):
        match = _HEADING.match(paragraph.partition("\n")[0].strip())
        if match:
            sections.append({"part": int(match.group(1)), "title": match.group(2)})
    return sections


def prompt_from_paragraph(paragraph: str) -> SlidePrompt:
    """Turn a script paragraph (heading line + sentences) into a slide prompt."""
    heading, _, body = paragraph.strip().partition("\n")
    match = _HEADING.match(heading.strip())
    title = match.group(2) if match else heading.strip().rstrip(".")
    sentences = [s.strip() for s in _SENTENCE_END.split(body.strip()) if s.strip()]
    bullets = tuple(_shorten(sentence.rstrip("."), BULLET_CHARS) for sentence in sentences)
    return SlidePrompt(title=title, bullets=bullets)


def paragraph_for_part(script: str, part: int, *, source: str) -> str:
    """Find the paragraph headed `Part <part>:` in a script written by `narration_script`."""
    paragraphs = [p.strip() for p in script.split("\n\n") if p.strip()]
    for paragraph in paragraphs:
        match = _HEADING.match(paragraph.partition("\n")[0].strip())
        if match and int(match.group(1)) == part:
            return paragraph
    raise DemoPayloadError(
        f"script input {source!r} has no paragraph for part {part} "
        f"({len(paragraphs)} paragraphs found)",
        field="part",
    )


def parse_slide_prompt(text: str, *, source: str) -> SlidePrompt:
    """Inverse of `SlidePrompt.render`; `source` names the input in error messages."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Title:"):
        raise DemoPayloadError(
            f"slide prompt input {source!r} does not start with a 'Title:' line", field="inputs"
        )
    title = lines[0].removeprefix("Title:").strip()
    bullets = tuple(line.removeprefix("-").strip() for line in lines[1:] if line.startswith("-"))
    return SlidePrompt(title=title or "Untitled", bullets=bullets)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + "..."
