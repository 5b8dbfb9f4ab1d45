"""The run-time graph keys of a task (`for_each`, `max_items`, `join`, `optional`,
`max_parallel`): the syntax, the load-time checks (file:line, scenario, task) and how a
plan shows them."""

from __future__ import annotations

import pytest

from scenarist.core.catalog import parse_catalog
from scenarist.core.errors import CatalogError, RenderError
from scenarist.core.template import DEFAULT_MAX_ITEMS, JoinKind

STORYBOARD = """\
Storyboard:
  params:
    topic: {type: string, required: true}
  tasks:
    - id: outline
      service: text-service
      payload: {topic: "{{ topic }}"}
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      max_parallel: 2
      payload: {prompt: "{{ item.prompt }}", n: "{{ index }}"}
    - id: upscale
      service: image-service
      depends_on: [shot]
      for_each: shot
      max_items: 50
    - id: cut
      service: video-service
      depends_on: [upscale]
      join: {min_success: 2}
    - id: thumbnail
      service: image-service
      depends_on: [outline]
      optional: true
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "bad.yml")
    return [str(e) for e in caught.value.errors]


def test_the_issue_syntax_loads_with_every_key() -> None:
    template = parse_catalog(STORYBOARD, "ok.yml").get("Storyboard")
    tasks = {t.id: t for t in template.tasks}
    shot, upscale = tasks["shot"], tasks["upscale"]
    assert shot.for_each is not None
    assert shot.for_each.parents == ("outline",)
    assert (shot.item_limit, shot.max_parallel) == (DEFAULT_MAX_ITEMS, 2)
    assert upscale.for_each is not None
    assert upscale.for_each.group == "shot"
    assert upscale.item_limit == 50
    assert tasks["cut"].join.kind is JoinKind.MIN_SUCCESS
    assert tasks["thumbnail"].optional
    described = {t["id"]: t for t in template.describe()["tasks"]}
    assert described["cut"]["join"] == {"min_success": 2}
    assert described["shot"]["for_each"] == "{{ results.outline.shots }}"


def test_every_bad_key_is_reported_with_its_line_scenario_and_task() -> None:
    text = """\
Bad:
  tasks:
    - id: a
      service: s
      join: any
      max_items: 3
    - id: b
      service: s
      count: 2
      depends_on: [a]
      for_each: "{{ results.c.x }}"
      max_parallel: 0
    - id: c
      service: s
      depends_on: [b]
      for_each: a
      join: {min_success_ratio: 1.5}
      optional: "yes"
    - id: d
      service: s
      depends_on: [a]
      for_each: "{{ params }}"
      join: {min_success: 0}
"""
    assert errors_of(text) == [
        "bad.yml:3, scenario 'Bad', task 'a': 'max_items' only applies to a task with 'for_each'",
        "bad.yml:3, scenario 'Bad', task 'a': 'join' needs a task with depends_on",
        "bad.yml:7, scenario 'Bad', task 'b': a task cannot have both 'count' and 'for_each'",
        "bad.yml:7, scenario 'Bad', task 'b': 'for_each' names 'c', which is not in this "
        "task's depends_on",
        "bad.yml:12, scenario 'Bad', task 'b': 'max_parallel' must be a positive integer, got 0",
        "bad.yml:13, scenario 'Bad', task 'c': 'for_each' names 'a', which is not in this "
        "task's depends_on",
        "bad.yml:13, scenario 'Bad', task 'c': 'for_each: a' zips with an upstream dynamic "
        "group, but task 'a' has no for_each",
        "bad.yml:17, scenario 'Bad', task 'c': join min_success_ratio must be a number in "
        "(0, 1], got 1.5",
        "bad.yml:18, scenario 'Bad', task 'c': 'optional' must be true or false, got 'yes'",
        "bad.yml:22, scenario 'Bad', task 'd': 'for_each' '{{ params }}' must read its "
        "parents' results as results.<parent id> (the list to expand over)",
        "bad.yml:23, scenario 'Bad', task 'd': join min_success must be a positive integer, got 0",
    ]


def test_a_plan_shows_an_unexpanded_group_as_one_dynamic_node() -> None:
    plan = parse_catalog(STORYBOARD, "ok.yml").plan("Storyboard", {"topic": "cats"})
    by_name = {t.name: t for t in plan.tasks}
    assert list(by_name) == ["outline", "shot", "upscale", "cut", "thumbnail"]
    assert by_name["shot"].dynamic
    assert by_name["shot"].max_parallel == 2
    assert by_name["upscale"].depends_on == ("shot",)
    assert by_name["cut"].need is None  # known once the group expands
    assert not by_name["outline"].dynamic


JOINS = """\
J:
  params:
    n: {type: integer, default: 3}
  tasks:
    - id: p
      service: s
      count: "{{ n }}"
    - id: any
      service: s
      depends_on: [p]
      join: any
    - id: half
      service: s
      depends_on: [p]
      join: {min_success_ratio: 0.5}
    - id: two
      service: s
      depends_on: [p]
      join: {min_success: 2}
    - id: opt
      service: s
      depends_on: [p]
      optional: true
"""


def test_a_join_becomes_the_successes_needed_among_the_expanded_parents() -> None:
    plan = parse_catalog(JOINS, "ok.yml").plan("J", {"n": 3})
    need = {t.name: t.need for t in plan.tasks}
    assert (need["any"], need["half"], need["two"], need["p_1"]) == (1, 2, 2, None)
    assert {t.name for t in plan.tasks if t.optional} == {"opt"}


def test_a_join_that_the_parent_count_can_never_reach_is_refused_at_plan_time() -> None:
    catalog = parse_catalog(JOINS, "ok.yml")
    with pytest.raises(RenderError, match=r"task 'two'.*needs 2 successful parents.*has 1"):
        catalog.plan("J", {"n": 1})


def test_any_and_a_ratio_over_no_parents_run_with_no_inputs() -> None:
    text = JOINS.replace("      join: {min_success: 2}\n", "")
    need = {t.name: t.need for t in parse_catalog(text, "ok.yml").plan("J", {"n": 0}).tasks}
    assert (need["any"], need["half"], need["two"]) == (0, 0, None)


def test_the_ratio_rounds_up() -> None:
    need = {t.name: t.need for t in parse_catalog(JOINS, "ok.yml").plan("J", {"n": 5}).tasks}
    assert need["half"] == 3
