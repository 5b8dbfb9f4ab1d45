"""Plan expansion: counts, copy names, zip/all dependencies, levels, defaults, limits."""

from __future__ import annotations

import pytest

from scenarist.core.catalog import load_catalog
from scenarist.core.errors import ParamError, RenderError
from scenarist.core.model import ScenarioPlan
from tests.core.conftest import CatalogFactory


def deps(plan: ScenarioPlan) -> dict[str, tuple[str, ...]]:
    return {task.name: task.depends_on for task in plan.tasks}


def levels(plan: ScenarioPlan) -> dict[str, int]:
    return {task.name: task.level for task in plan.tasks}


def test_create_video_with_three_slides_is_nine_tasks_in_four_levels() -> None:
    plan = load_catalog(None).plan("CreateVideo", {"description": "cats", "slides_count": 3})
    assert len(plan.tasks) == 9
    assert plan.levels == 4
    assert levels(plan) == {
        "script": 0,
        "voice": 1,
        "slide_prompt_1": 1,
        "slide_prompt_2": 1,
        "slide_prompt_3": 1,
        "slide_image_1": 2,
        "slide_image_2": 2,
        "slide_image_3": 2,
        "video": 3,
    }
    graph = deps(plan)
    assert graph["slide_image_2"] == ("slide_prompt_2",)
    assert graph["video"] == ("voice", "slide_image_1", "slide_image_2", "slide_image_3")
    video = plan.tasks[-1]
    assert (video.service, video.timeout_seconds, video.max_attempts) == ("video-service", 600, 3)
    slide = next(t for t in plan.tasks if t.name == "slide_prompt_2")
    assert (slide.template_id, slide.index) == ("slide_prompt", 2)
    assert dict(slide.payload) == {"kind": "slide_prompt", "topic": "cats", "part": 2, "parts": 3}
    assert plan.params == {"description": "cats", "slides_count": 3}


def test_create_voice_with_count_two_is_two_tasks() -> None:
    plan = load_catalog(None).plan("CreateVoice", {"description": "hello", "count": 2})
    assert [t.name for t in plan.tasks] == ["voice_1", "voice_2"]
    assert [t.payload["take"] for t in plan.tasks] == [1, 2]


def test_create_slides_with_four_slides_is_eight_tasks() -> None:
    plan = load_catalog(None).plan("CreateSlides", {"description": "x", "slides_count": 4})
    assert len(plan.tasks) == 8
    assert plan.levels == 2


def test_defaults_fill_missing_params() -> None:
    plan = load_catalog(None).plan("CreateVideo", {"description": "cats"})
    assert len(plan.tasks) == 9
    assert plan.params["slides_count"] == 3


def test_bad_params_are_refused_before_expansion() -> None:
    with pytest.raises(ParamError, match="'slides_count' must be <= 100") as caught:
        load_catalog(None).plan("CreateVideo", {"description": "x", "slides_count": 101})
    assert caught.value.field == "slides_count"


def test_params_cannot_inject_structure_or_templates() -> None:
    evil = "{{ 7 * 7 }}\nkind: hacked\n- [1]"
    plan = load_catalog(None).plan("CreateVoice", {"description": evil})
    assert dict(plan.tasks[0].payload) == {"kind": "voice", "topic": evil, "take": 1}


AUTO = """
S:
  params: {a: {type: integer, default: 2}, b: {type: integer, default: 2}}
  tasks:
    - {id: p, service: s, count: "{{ a }}"}
    - {id: c, service: s, count: "{{ b }}", depends_on: [p]}
"""


def test_equal_counts_zip_by_index(catalog_from: CatalogFactory) -> None:
    assert deps(catalog_from(AUTO).plan("S", {})) == {
        "p_1": (),
        "p_2": (),
        "c_1": ("p_1",),
        "c_2": ("p_2",),
    }


def test_unequal_counts_depend_on_all_copies(catalog_from: CatalogFactory) -> None:
    graph = deps(catalog_from(AUTO).plan("S", {"a": 2, "b": 3}))
    assert graph["c_3"] == ("p_1", "p_2")


def test_count_zero_yields_no_tasks_and_no_parents(catalog_from: CatalogFactory) -> None:
    plan = catalog_from(
        """
        S:
          params: {n: {type: integer}}
          tasks:
            - {id: p, service: s, count: "{{ n }}"}
            - {id: c, service: s, depends_on: [p]}
        """
    ).plan("S", {"n": 0})
    assert deps(plan) == {"c": ()}
    assert levels(plan) == {"c": 0}


def test_explicit_all_overrides_zip(catalog_from: CatalogFactory) -> None:
    plan = catalog_from(
        """
        S:
          tasks:
            - {id: p, service: s, count: 2}
            - {id: c, service: s, count: 2, depends_on: [{task: p, mode: all}]}
        """
    ).plan("S", {})
    assert deps(plan)["c_1"] == ("p_1", "p_2")


def test_explicit_zip_with_unequal_counts_names_both_tasks(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(
        """
        S:
          params: {n: {type: integer, default: 2}}
          tasks:
            - {id: p, service: s, count: 2}
            - {id: c, service: s, count: "{{ n }}", depends_on: [{task: p, mode: zip}]}
        """
    )
    assert deps(catalog.plan("S", {}))["c_2"] == ("p_2",)
    with pytest.raises(RenderError, match=r"task 'c' \(count 3\) zips with task 'p' \(count 2\)"):
        catalog.plan("S", {"n": 3})


def test_bare_ids_index_and_count_in_scope(catalog_from: CatalogFactory) -> None:
    plan = catalog_from(
        """
        S:
          tasks:
            - {id: one, service: s, payload: {label: "only"}}
            - id: many
              service: s
              count: 3
              payload: {label: "{{ index }}/{{ count }}", nested: ["{{ index * 10 }}", {k: x}]}
        """
    ).plan("S", {})
    assert [t.name for t in plan.tasks] == ["one", "many_1", "many_2", "many_3"]
    assert plan.tasks[0].index is None
    assert dict(plan.tasks[3].payload) == {"label": "3/3", "nested": [30, {"k": "x"}]}


def test_index_is_undefined_outside_multiplied_tasks(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from("S:\n  tasks:\n    - {id: a, service: s, payload: {i: '{{ index }}'}}\n")
    with pytest.raises(RenderError, match=r"task 'a', payload.i: undefined variable: 'index'"):
        catalog.plan("S", {})


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("'{{ -1 }}'", "must render to a non-negative integer, got -1"),
        ("'{{ \"two\" }}'", "must render to a non-negative integer, got 'two'"),
        ("'{{ 1.5 }}'", "got 1.5"),
        ("'{{ true }}'", "got True"),
        ("'{{ 20000 }}'", "20000 is over the limit of 10000"),
    ],
)
def test_bad_rendered_counts(catalog_from: CatalogFactory, count: str, message: str) -> None:
    catalog = catalog_from(f"S:\n  tasks:\n    - {{id: a, service: s, count: {count}}}\n")
    with pytest.raises(RenderError, match="scenario 'S', task 'a', count") as caught:
        catalog.plan("S", {})
    assert message in caught.value.message


def test_plans_are_capped_at_ten_thousand_tasks(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(
        """
        S:
          params: {n: {type: integer}}
          tasks:
            - {id: a, service: s, count: "{{ n }}"}
            - {id: b, service: s, count: "{{ n }}", depends_on: [a]}
        """
    )
    assert len(catalog.plan("S", {"n": 5000}).tasks) == 10_000
    with pytest.raises(RenderError, match="would expand to more than 10000 tasks"):
        catalog.plan("S", {"n": 5001})


def test_attempts_and_timeouts_come_from_task_catalog_or_built_in(
    catalog_from: CatalogFactory,
) -> None:
    tasks = "  tasks:\n    - {id: a, service: s}\n    - {id: b, service: s, max_attempts: 9}\n"
    built_in = catalog_from("S:\n" + tasks).plan("S", {})
    assert [(t.max_attempts, t.timeout_seconds) for t in built_in.tasks] == [(3, 300), (9, 300)]
    custom = catalog_from("defaults: {max_attempts: 1, timeout_seconds: 5}\nS:\n" + tasks)
    plan = custom.plan("S", {})
    assert [(t.max_attempts, t.timeout_seconds) for t in plan.tasks] == [(1, 5), (9, 5)]


def test_priority_is_the_level_capped_at_four(catalog_from: CatalogFactory) -> None:
    chain = "".join(
        f"    - {{id: t{i}, service: s{', depends_on: [t' + str(i - 1) + ']' if i else ''}}}\n"
        for i in range(7)
    )
    plan = catalog_from("S:\n  tasks:\n" + chain).plan("S", {})
    assert [t.level for t in plan.tasks] == [0, 1, 2, 3, 4, 5, 6]
    assert [t.priority for t in plan.tasks] == [0, 1, 2, 3, 4, 4, 4]


def test_depends_on_follows_template_order_then_index(catalog_from: CatalogFactory) -> None:
    plan = catalog_from(
        """
        S:
          tasks:
            - {id: x, service: s, count: 2}
            - {id: y, service: s}
            - {id: z, service: s, depends_on: [y, x]}
        """
    ).plan("S", {})
    assert deps(plan)["z"] == ("x_1", "x_2", "y")


def test_render_errors_name_scenario_task_and_path(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(
        "S:\n  tasks:\n    - {id: a, service: s, count: 2, payload: {x: [1, '{{ 1 / 0 }}']}}\n"
    )
    with pytest.raises(RenderError, match=r"scenario 'S', task 'a_1', payload.x\[1\]: Zero"):
        catalog.plan("S", {})


LEAVES = """
S:
  params: {n: {type: integer, default: 2}}
  tasks:
    - id: a
      service: s
      count: "{{ n }}"
      payload:
        plain: text
        braces: "{ n } }}"
        typed: "{{ n }}"
        mixed: "n={{ n }}, i={{ index }}"
        computed: "{{ n * index }}"
        nested: [{k: "{{ count }}", c: [1, x]}]
"""


def test_constant_simple_and_jinja_leaves_render_side_by_side(
    catalog_from: CatalogFactory,
) -> None:
    plan = catalog_from(LEAVES).plan("S", {"n": 3})
    assert dict(plan.tasks[1].payload) == {
        "plain": "text",
        "braces": "{ n } }}",
        "typed": 3,
        "mixed": "n=3, i=2",
        "computed": 6,
        "nested": [{"k": 3, "c": [1, "x"]}],
    }


def test_every_plan_gets_its_own_payload_containers(catalog_from: CatalogFactory) -> None:
    catalog = catalog_from(LEAVES)
    first = catalog.plan("S", {})
    first.tasks[0].payload["nested"][0]["c"].append("changed")
    assert catalog.plan("S", {}).tasks[0].payload["nested"] == [{"k": 2, "c": [1, "x"]}]


@pytest.mark.parametrize(
    ("leaf", "place", "message"),
    [
        ("payload: {x: {y: [\"{{ 'a' * 10**9 }}\"]}}", "task 'a', payload.x.y[0]", "a string"),
        ("payload: {x: '{{ range(10**9) | list }}'}", "task 'a', payload.x", "range()"),
        ("count: '{{ 9 ** 9999999 }}'", "task 'a', count", "an integer would need"),
        ("payload: {x: '{{ v }}'}", "task 'a', payload.x", "the value would be 70002"),
    ],
)
def test_bombs_in_catalog_leaves_are_refused_naming_the_leaf(
    catalog_from: CatalogFactory, leaf: str, place: str, message: str
) -> None:
    catalog = catalog_from(
        f"S:\n  params: {{v: {{type: string}}}}\n  tasks:\n    - {{id: a, service: s, {leaf}}}\n"
    )
    with pytest.raises(RenderError) as caught:
        catalog.plan("S", {"v": "x" * 70_000})
    assert caught.value.message.startswith(f"scenario 'S', {place}: ")
    assert message in caught.value.message
