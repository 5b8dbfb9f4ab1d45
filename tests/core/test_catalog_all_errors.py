"""A catalog load reports every problem of the file, in file order, not just the first."""

from __future__ import annotations

import textwrap

import pytest

from scenarist.core.catalog import parse_catalog
from scenarist.core.errors import CatalogError

MANY_PROBLEMS = textwrap.dedent(
    """\
    services: [s]
    A:
      tasks:
        - {id: a, service: s, depends_on: [b]}
        - {id: b, service: nope, depends_on: [a]}
        - {id: c, service: s, max_attempts: 0, colour: red}
    B:
      params:
        n: {type: int}
      tasks:
        - {id: x, service: s, count: many}
        - {id: y, service: s, depends_on: [zz], payload: {p: '{{ n'}}
    """
)

EXPECTED = [
    "test.yml:4, scenario 'A', task 'a': dependency cycle: a -> b -> a",
    "test.yml:5, scenario 'A', task 'b': unknown service 'nope'; declared services: s",
    "test.yml:6, scenario 'A', task 'c': unknown key 'colour' in a task",
    "test.yml:6, scenario 'A', task 'c': 'max_attempts' must be a positive integer, got 0",
    "test.yml:9, scenario 'B': parameter 'n': unknown type 'int'",
    "test.yml:11, scenario 'B', task 'x': 'count' must be a non-negative integer",
    # On one line, a task's own fields come before the graph checks that need every task.
    "test.yml:12, scenario 'B', task 'y': payload.p: template syntax error",
    "test.yml:12, scenario 'B', task 'y': unknown dependency 'zz'; tasks: x, y",
]


def load_error(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "test.yml")
    return caught.value


def test_every_problem_is_reported_in_file_order() -> None:
    lines = load_error(MANY_PROBLEMS).lines()
    assert len(lines) == len(EXPECTED), "\n".join(lines)
    for line, expected in zip(lines, EXPECTED, strict=True):
        assert line.startswith(expected), f"{line!r} does not start with {expected!r}"


def test_the_error_message_is_the_first_problem_and_counts_the_rest() -> None:
    error = load_error(MANY_PROBLEMS)
    assert error.message.startswith(EXPECTED[0])
    assert error.message.endswith(f"(and {len(EXPECTED) - 1} more problems)")
    assert (error.file, error.line, error.scenario, error.task) == ("test.yml", 4, "A", "a")


def test_a_single_problem_is_reported_as_before() -> None:
    error = load_error("S:\n  tasks:\n    - {id: a, service: s, max_attempts: 0}\n")
    assert error.lines() == [error.message]
    assert error.message == (
        "test.yml:3, scenario 'S', task 'a': 'max_attempts' must be a positive integer, got 0"
    )


def test_a_task_that_failed_to_load_is_not_reported_again_as_an_unknown_dependency() -> None:
    text = "S:\n  tasks:\n    - {id: a, service: ''}\n    - {id: b, service: s, depends_on: [a]}\n"
    assert [line.partition(": ")[2] for line in load_error(text).lines()] == [
        "'service' must be a non-empty string"
    ]
