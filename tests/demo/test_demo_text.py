"""kind=script and kind=slide_prompt (text-service), and payload parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarist.demo.errors import DemoPayloadError
from scenarist.demo.payload import parse_count, parse_part_position
from scenarist.demo.text import (
    SlidePrompt,
    narration_script,
    parse_slide_prompt,
    section_for,
    short_topic,
)
from tests.demo.conftest import DemoRun


def test_script_has_one_headed_paragraph_per_part(demo: DemoRun) -> None:
    result = demo.run("script", parts="3")

    path = Path(result.result_ref)
    assert path.is_absolute()
    assert path == demo.out_dir.resolve() / "script.txt"
    text = path.read_text(encoding="utf-8")
    paragraphs = text.strip().split("\n\n")
    assert [p.splitlines()[0] for p in paragraphs] == [
        "Part 1: Introduction.",
        "Part 2: Background.",
        "Part 3: Summary.",
    ]
    assert all("Bees" in p or "bees" in p for p in paragraphs)
    assert result.result["mime"] == "text/plain"
    assert result.result["parts"] == 3
    assert result.result["bytes"] == path.stat().st_size
    assert result.result["text"] == text[:200]
    assert len(result.result["sha256"]) == 64


def test_script_is_deterministic_and_topic_dependent(tmp_path: Path) -> None:
    first = DemoRun(tmp_path / "a").run("script", parts=2)
    again = DemoRun(tmp_path / "b").run("script", parts="2")
    other = DemoRun(tmp_path / "c", topic="Tides").run("script", parts=2)

    assert first.result["sha256"] == again.result["sha256"]
    assert first.result["sha256"] != other.result["sha256"]


def test_script_without_parts_is_a_single_overview(demo: DemoRun) -> None:
    text = Path(demo.run("script").result_ref).read_text(encoding="utf-8")

    assert text.startswith("Part 1: Overview.")
    assert "Part 2" not in text


def test_long_decks_keep_distinct_titles() -> None:
    titles = [section_for(part, 20)[0] for part in range(1, 21)]

    assert len(set(titles)) == 20
    assert titles[0] == "Introduction"
    assert titles[-1] == "Summary"


def test_mid_sentence_topic_is_lowered_only_for_function_words() -> None:
    assert "about how bees make honey." in narration_script("How bees make honey", 1)
    assert "about Python packaging." in narration_script("Python packaging", 1)


def test_short_topic_cuts_long_descriptions_at_a_word() -> None:
    topic = "word " * 100 + "\nsecond line"

    shortened = short_topic(topic)

    assert len(shortened) <= 83
    assert shortened.endswith("word...")
    assert short_topic("Bees.\nMore detail") == "Bees"


def test_slide_prompt_takes_its_part_from_the_script(demo: DemoRun) -> None:
    script = demo.run("script", parts=3)

    prompt = demo.run("slide_prompt", [demo.as_input("script", script)], part="2", parts="3")

    path = Path(prompt.result_ref)
    assert path.name == "slide_prompt_2.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Title: Background"
    assert len(lines) == 4
    assert all(line.startswith("- ") for line in lines[1:])
    assert prompt.result["title"] == "Background"
    assert (prompt.result["part"], prompt.result["parts"]) == (2, 3)


def test_slide_prompt_reads_the_script_file_not_the_template(demo: DemoRun) -> None:
    script_path = demo.out_dir / "custom.txt"
    demo.out_dir.mkdir(parents=True)
    script_path.write_text("Part 1: Hives.\nBees live in hives. They dance.\n", encoding="utf-8")
    upstream = {"task": "script", "result_ref": str(script_path), "result": None}

    prompt = demo.run("slide_prompt", [upstream], part=1, parts=1)

    text = Path(prompt.result_ref).read_text(encoding="utf-8")
    assert text == "Title: Hives\n- Bees live in hives\n- They dance\n"


def test_slide_prompt_without_script_input_uses_the_topic(demo: DemoRun) -> None:
    prompt = demo.run("slide_prompt", part=3, parts=3)

    assert prompt.result["title"] == "Summary"
    assert "Bees" in Path(prompt.result_ref).read_text(encoding="utf-8")


def test_slide_prompt_for_a_part_missing_from_the_script(demo: DemoRun) -> None:
    script = demo.run("script", parts=2)

    with pytest.raises(DemoPayloadError, match="no paragraph for part 3") as caught:
        demo.run("slide_prompt", [demo.as_input("script", script)], part=3, parts=3)
    assert caught.value.field == "part"


def test_slide_prompt_round_trip() -> None:
    prompt = SlidePrompt(title="Hives", bullets=("one", "two"))

    assert parse_slide_prompt(prompt.render(), source="slide_prompt_1") == prompt


def test_malformed_slide_prompt_names_its_input() -> None:
    with pytest.raises(DemoPayloadError, match=r"'slide_prompt_4'.*Title"):
        parse_slide_prompt("just text", source="slide_prompt_4")


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("3", 3), (" 7 ", 7), ("+2", 2), (4.0, 4)])
def test_counts_parse_from_templated_strings(value: object, expected: int) -> None:
    assert parse_count({"parts": value}, "parts") == expected


@pytest.mark.parametrize("value", ["abc", "-1", "0", "2.5", True, [], "1e3", 501])
def test_bad_counts_name_the_field(value: object) -> None:
    with pytest.raises(DemoPayloadError, match="'parts'") as caught:
        parse_count({"parts": value}, "parts")
    assert caught.value.field == "parts"
    assert isinstance(caught.value, ValueError)


def test_missing_count_uses_the_default_or_fails() -> None:
    assert parse_count({}, "parts", default=1) == 1
    assert parse_count({"parts": ""}, "parts", default=1) == 1
    with pytest.raises(DemoPayloadError, match="'part' is required"):
        parse_count({}, "part")


def test_part_beyond_parts_is_rejected() -> None:
    with pytest.raises(DemoPayloadError, match=r"'part' \(4\) must not exceed 'parts' \(3\)"):
        parse_part_position({"part": "4", "parts": "3"})
