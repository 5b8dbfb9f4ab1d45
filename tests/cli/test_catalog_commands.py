"""The catalog commands through the real `scenarist` app: templates, validate, graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenarist.cli.main import app
from scenarist.core.catalog import default_catalog_path

runner = CliRunner()

CUSTOM = """\
Hello:
  description: says hello
  params:
    who: {type: string, enum: [world, moon], default: world}
    loud: {type: boolean, default: false}
  tasks:
    - {id: greet, service: greeter, payload: {to: "{{ who }}", loud: "{{ loud }}"}}
"""


@pytest.fixture
def custom_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "custom.yml"
    path.write_text(CUSTOM)
    return path


def test_graph_of_create_video_prints_nine_tasks_in_four_levels() -> None:
    result = runner.invoke(
        app,
        [
            "graph",
            "CreateVideo",
            "--param",
            "description=A video about cats",
            "--param",
            "slides_count=3",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "CreateVideo: 9 tasks in 4 levels"
    assert [line for line in lines if line.startswith("level")] == [
        "level 0:",
        "level 1:",
        "level 2:",
        "level 3:",
    ]
    assert "  slide_image_2 [image-service]  <- slide_prompt_2" in lines
    assert "  video [video-service]  <- voice, slide_image_1, slide_image_2, slide_image_3" in lines


def test_graph_json_lists_task_dicts() -> None:
    result = runner.invoke(
        app,
        [
            "graph",
            "CreateSlides",
            "-p",
            "description=x",
            "-p",
            "slides_count=4",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.output)
    assert len(tasks) == 8
    assert tasks[4] == {
        "name": "slide_image_1",
        "template_id": "slide_image",
        "index": 1,
        "service": "image-service",
        "level": 1,
        "priority": 1,
        "depends_on": ["slide_prompt_1"],
        "payload": {"kind": "slide_image", "topic": "x", "part": 1, "parts": 4},
        "max_attempts": 3,
        "timeout_seconds": 300.0,
    }


def test_graph_dot_is_a_digraph() -> None:
    result = runner.invoke(
        app, ["graph", "CreateVoice", "-p", "description=x", "-p", "count=2", "--format", "dot"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith('digraph "CreateVoice" {')
    assert '"voice_2" [label="voice_2\\naudio-service"];' in result.output
    assert result.output.rstrip().endswith("}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["slides_count=3"], "parameter 'description' is required"),
        (["description=x", "slides_count=many"], "'slides_count' must be of type integer"),
        (["description=x", "slides_count=101"], "'slides_count' must be <= 100 (maximum)"),
        (["description=x", "colour=red"], "unknown parameter 'colour'"),
    ],
)
def test_bad_params_exit_1_naming_the_field(params: list[str], message: str) -> None:
    args = ["graph", "CreateVideo"]
    for pair in params:
        args += ["--param", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output


def test_graph_of_an_unknown_scenario_exits_1() -> None:
    result = runner.invoke(app, ["graph", "MakeCoffee"])
    assert result.exit_code == 1
    assert "unknown scenario 'MakeCoffee'" in result.output


def test_graph_reads_the_catalog_from_the_environment(custom_catalog: Path) -> None:
    result = runner.invoke(
        app,
        ["graph", "Hello", "-p", "who=moon", "-p", "loud=yes", "--format", "json"],
        env={"SCENARIST_SCENARIOS": str(custom_catalog)},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["payload"] == {"to": "moon", "loud": True}


def test_templates_lists_scenarios_and_params() -> None:
    result = runner.invoke(app, ["templates"])
    assert result.exit_code == 0, result.output
    assert "CreateVideo: Script -> voice-over -> slides -> video" in result.output
    assert "    slides_count: integer, optional, default 3, min 1, max 100" in result.output
    assert "CreateVoice" in result.output
    assert "CreateSlides" in result.output


def test_templates_json_with_a_custom_catalog(custom_catalog: Path) -> None:
    result = runner.invoke(app, ["templates", "--catalog", str(custom_catalog), "--json"])
    assert result.exit_code == 0, result.output
    (hello,) = json.loads(result.output)
    assert hello["name"] == "Hello"
    assert hello["params"]["properties"]["who"] == {
        "type": "string",
        "enum": ["world", "moon"],
        "default": "world",
    }
    assert hello["tasks"][0]["service"] == "greeter"


def test_validate_accepts_a_good_catalog(custom_catalog: Path) -> None:
    result = runner.invoke(app, ["validate", str(custom_catalog)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ok: 1 scenario (Hello)"


def test_validate_the_packaged_catalog() -> None:
    result = runner.invoke(app, ["validate", str(default_catalog_path())])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 4 scenarios")


def test_validate_reports_file_line_scenario_and_task(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(
        "S:\n  tasks:\n    - {id: a, service: s, depends_on: [b]}\n    - {id: b, service: s,"
        " depends_on: [a]}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3, scenario 'S', task 'a': dependency cycle: a -> b -> a" in result.output


def test_validate_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1
    assert "cannot read catalog" in result.output


def test_validate_reports_every_problem_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(
        "A:\n  tasks:\n    - {id: a, service: s, max_attempts: 0}\n"
        "B:\n  tasks:\n    - {id: b, service: s, depends_on: [c]}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {path}:3, scenario 'A', task 'a': 'max_attempts' must be a positive integer,"
        " got 0",
        f"error: {path}:6, scenario 'B', task 'b': unknown dependency 'c'; tasks: b",
    ]


GROUPS = """\
Storyboard:
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
    - id: cut
      service: video-service
      depends_on: [shot]
      join: any
"""


def test_graph_shows_an_unexpanded_group_as_one_dynamic_node(tmp_path: Path) -> None:
    catalog = tmp_path / "groups.yml"
    catalog.write_text(GROUPS)
    text = runner.invoke(app, ["graph", "Storyboard", "--catalog", str(catalog)])
    assert text.exit_code == 0, text.output
    assert "shot[*] (dynamic, for_each {{ results.outline.shots }}) [image-service]" in (
        text.output
    )
    assert "1 of them dynamic groups" in text.output
    dot = runner.invoke(app, ["graph", "Storyboard", "--catalog", str(catalog), "--format", "dot"])
    assert '"shot" [label="shot[*]\\nimage-service\\ndynamic: for_each", style=dashed];' in (
        dot.output
    )
    raw = runner.invoke(app, ["graph", "Storyboard", "--catalog", str(catalog), "--format", "json"])
    shot = {t["name"]: t for t in json.loads(raw.output)}["shot"]
    assert (shot["dynamic"], shot["for_each"]) == (True, "{{ results.outline.shots }}")


def test_validate_names_file_line_scenario_and_task_of_a_bad_join(tmp_path: Path) -> None:
    catalog = tmp_path / "bad.yml"
    catalog.write_text(GROUPS.replace("join: any", "join: most"))
    result = runner.invoke(app, ["validate", str(catalog)])
    assert result.exit_code == 1
    assert f"{catalog}:12, scenario 'Storyboard', task 'cut': 'join' must be all, any" in (
        result.output
    )
