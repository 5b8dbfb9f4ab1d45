"""Load-time checks: every bad catalog is a CatalogError naming file, line, scenario, task."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarist.core.catalog import default_catalog_path, load_catalog, parse_catalog
from scenarist.core.errors import CatalogError, UnknownScenarioError
from tests.core.conftest import CatalogFactory

GOOD = """\
defaults: {max_attempts: 5, timeout_seconds: 60}
services: [a-service, b-service]
Pipeline:
  description: two steps
  params:
    n: {type: integer, default: 2, minimum: 0, maximum: 10}
  tasks:
    - id: first
      service: a-service
    - id: second
      service: b-service
      count: "{{ n }}"
      depends_on: [first]
"""


def expect_error(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "bad.yml")
    return caught.value


def test_the_packaged_catalog_loads() -> None:
    catalog = load_catalog(None)
    assert catalog.names() == ["CreateVideo", "CreateVideoAuto", "CreateVoice", "CreateSlides"]
    assert catalog.source == str(default_catalog_path())
    assert catalog.services == ("text-service", "audio-service", "image-service", "video-service")


def test_a_good_catalog_loads_with_its_defaults(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(GOOD)
    template = catalog.get("Pipeline")
    assert [t.id for t in template.tasks] == ["first", "second"]
    assert template.tasks[0].max_attempts == 5
    assert template.tasks[0].timeout_seconds == 60.0
    assert template.describe()["params"] == {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 10, "default": 2}},
        "required": [],
        "additionalProperties": False,
    }


def test_tasks_are_kept_in_topological_order(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(
        """
        S:
          tasks:
            - {id: late, service: s, depends_on: [early]}
            - {id: other, service: s}
            - {id: early, service: s}
        """
    )
    assert [t.id for t in catalog.get("S").tasks] == ["other", "early", "late"]


def test_unknown_scenario_lists_the_known_ones(catalog_from: CatalogFactory) -> None:
    with pytest.raises(UnknownScenarioError, match="unknown scenario 'Nope'; known: Pipeline"):
        catalog_from(GOOD).get("Nope")


def test_load_catalog_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(GOOD)
    assert load_catalog(path).source == str(path)


def test_a_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog") as caught:
        load_catalog(tmp_path / "missing.yml")
    assert caught.value.file == str(tmp_path / "missing.yml")


def scenario(tasks: str, extra: str = "") -> str:
    return f"S:\n{extra}  tasks:\n{tasks}"


@pytest.mark.parametrize(
    ("text", "line", "task", "message"),
    [
        ("S: [unclosed\n", 2, None, "invalid YAML"),
        ("- just a list\n", None, None, "must be a mapping of scenario names"),
        ("defaults: {max_attempts: 3}\n", None, None, "defines no scenarios"),
        ("S: {tasks: []}\nS: {tasks: []}\n", 2, None, "duplicate key 'S'"),
        ("9lives: {tasks: [{id: a, service: s}]}\n", 1, None, "must match"),
        ("S: [1, 2]\n", 1, None, "a scenario must be a mapping"),
        ("S:\n  taks: []\n", 2, None, "unknown key 'taks' in a scenario"),
        ("S:\n  tasks: []\n", 2, None, "'tasks' must be a non-empty list"),
        (
            scenario("    - {id: a, service: s, depend_on: [b]}\n"),
            3,
            "a",
            "unknown key 'depend_on'",
        ),
        (scenario("    - {id: 'a:b', service: s}\n"), 3, None, "task 'id' must match"),
        (scenario("    - {id: a}\n"), 3, "a", "'service' must be a non-empty string"),
        (
            scenario("    - {id: a, service: s, depends_on: [b]}\n"),
            3,
            "a",
            "unknown dependency 'b'",
        ),
        (
            scenario("    - {id: a, service: s, depends_on: [a]}\n"),
            3,
            "a",
            "cannot depend on itself",
        ),
        (
            scenario("    - {id: a, service: s}\n    - {id: a, service: s}\n"),
            4,
            "a",
            "duplicate task id",
        ),
        (
            scenario(
                "    - {id: a, service: s, depends_on: [c]}\n"
                "    - {id: b, service: s, depends_on: [a]}\n"
                "    - {id: c, service: s, depends_on: [b]}\n"
            ),
            3,
            "a",
            "dependency cycle: a -> c -> b -> a",
        ),
        (scenario("    - {id: a, service: s, count: -1}\n"), 3, "a", "between 0 and 10000"),
        (scenario("    - {id: a, service: s, count: 10001}\n"), 3, "a", "between 0 and 10000"),
        (scenario("    - {id: a, service: s, count: 1.5}\n"), 3, "a", "non-negative integer"),
        (scenario("    - {id: a, service: s, count: true}\n"), 3, "a", "non-negative integer"),
        (scenario("    - {id: a, service: s, count: many}\n"), 3, "a", "non-negative integer"),
        (
            scenario("    - {id: a, service: s, count: '{{ n'}\n"),
            3,
            "a",
            "count: template syntax error",
        ),
        (
            scenario("    - id: a\n      service: s\n      payload:\n        x: '{% for %}'\n"),
            6,
            "a",
            "payload.x: template syntax error",
        ),
        (
            scenario(
                "    - id: a\n      service: s\n      payload: {x: '{{ __scenarist_iter }}'}\n"
            ),
            5,
            "a",
            "is reserved",
        ),
        (
            scenario("    - {id: a, service: s, payload: [1]}\n"),
            3,
            "a",
            "'payload' must be a mapping",
        ),
        (
            scenario("    - {id: a, service: s, payload: {x: .inf}}\n"),
            3,
            "a",
            "payload.x: inf is not a JSON value",
        ),
        (
            scenario("    - {id: a, service: s, payload: {1: x}}\n"),
            3,
            "a",
            "keys must be strings",
        ),
        (scenario("    - {id: a, service: s, max_attempts: 0}\n"), 3, "a", "positive integer"),
        (scenario("    - {id: a, service: s, timeout_seconds: -1}\n"), 3, "a", "positive number"),
        (
            scenario(
                "    - {id: a, service: s, count: 2}\n"
                "    - {id: b, service: s, depends_on: [{task: a, mode: zip}]}\n"
            ),
            4,
            "b",
            "zip dependency on 'a' needs both tasks to have a count",
        ),
        (
            scenario(
                "    - {id: a, service: s, count: 2}\n"
                "    - {id: b, service: s, depends_on: [{task: a, mode: some}]}\n"
            ),
            4,
            "b",
            "mode must be 'all' or 'zip'",
        ),
        (
            scenario("    - {id: a, service: s, count: 2}\n    - {id: a_1, service: s}\n"),
            3,
            "a",
            "'a_1' collides with the copies of task 'a'",
        ),
        (
            scenario("    - {id: a, service: s}\n    - {id: b, service: s, depends_on: [a, a]}\n"),
            4,
            "b",
            "listed twice",
        ),
        (
            scenario("    - {id: a, service: s}\n", "  params:\n    n: {type: int}\n"),
            3,
            None,
            "parameter 'n': unknown type 'int'",
        ),
        (
            scenario(
                "    - {id: a, service: s}\n",
                "  params:\n    n: {type: integer, default: 50, maximum: 10}\n",
            ),
            3,
            None,
            "default 50 is invalid",
        ),
        (
            "defaults: {max_attempts: 0}\n" + scenario("    - {id: a, service: s}\n"),
            1,
            None,
            "'max_attempts' must be a positive integer",
        ),
        (
            "defaults: {retries: 2}\n" + scenario("    - {id: a, service: s}\n"),
            1,
            None,
            "unknown key 'retries' in defaults",
        ),
        (
            "services: text\n" + scenario("    - {id: a, service: s}\n"),
            1,
            None,
            "'services' must be a list",
        ),
        (
            "services: [known]\n" + scenario("    - {id: a, service: unknown}\n"),
            4,
            "a",
            "unknown service 'unknown'; declared services: known",
        ),
    ],
)
def test_bad_catalogs_name_file_line_scenario_and_task(
    text: str, line: int | None, task: str | None, message: str
) -> None:
    error = expect_error(text)
    assert message in error.message
    assert error.file == "bad.yml"
    assert error.line == line
    assert error.task == task
    location = f"bad.yml:{line}" if line else "bad.yml"
    assert error.message.startswith(location)
    if task is not None:
        assert f"task {task!r}" in error.message
        assert error.scenario == "S"
        assert "scenario 'S'" in error.message
