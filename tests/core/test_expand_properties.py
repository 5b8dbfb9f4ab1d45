"""Property tests: random acyclic templates expand into consistent, deterministic plans."""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarist.core.catalog import parse_catalog
from scenarist.core.model import ScenarioPlan


@dataclass(frozen=True)
class RandomTask:
    id: str
    count: int | None
    templated_count: bool
    deps: tuple[tuple[str, str], ...]  # (parent id, mode: auto|all|zip)


@st.composite
def random_templates(draw: st.DrawFn) -> list[RandomTask]:
    size = draw(st.integers(min_value=1, max_value=7))
    tasks: list[RandomTask] = []
    for i in range(size):
        count = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=4)))
        parents = draw(st.lists(st.sampled_from(tasks), unique_by=lambda t: t.id)) if tasks else []
        deps = []
        for parent in parents:
            modes = ["auto", "all"]
            if count is not None and parent.count == count:
                modes.append("zip")
            deps.append((parent.id, draw(st.sampled_from(modes))))
        tasks.append(RandomTask(f"t{i}", count, draw(st.booleans()), tuple(deps)))
    return draw(st.permutations(tasks))  # catalog order need not be topological


def to_catalog(tasks: list[RandomTask]) -> str:
    def task_yaml(task: RandomTask) -> dict[str, object]:
        raw: dict[str, object] = {"id": task.id, "service": f"svc-{task.id}"}
        if task.count is not None:
            raw["count"] = f"{{{{ {task.count} }}}}" if task.templated_count else task.count
            raw["payload"] = {"i": "{{ index }}", "n": "{{ count }}"}
        raw["depends_on"] = [
            parent if mode == "auto" else {"task": parent, "mode": mode}
            for parent, mode in task.deps
        ]
        return raw

    return yaml.safe_dump({"Random": {"tasks": [task_yaml(t) for t in tasks]}})


def expand(tasks: list[RandomTask]) -> ScenarioPlan:
    return parse_catalog(to_catalog(tasks), "random.yml").plan("Random", {})


@settings(max_examples=150, deadline=None)
@given(random_templates())
def test_random_templates_expand_consistently(tasks: list[RandomTask]) -> None:
    plan = expand(tasks)
    by_id = {t.id: t for t in tasks}
    assert len(plan.tasks) == sum(1 if t.count is None else t.count for t in tasks)

    names = [t.name for t in plan.tasks]
    assert len(set(names)) == len(names)
    level_of: dict[str, int] = {}
    for spec in plan.tasks:  # topological: every parent was seen earlier, hence no cycles
        assert all(parent in level_of for parent in spec.depends_on)
        expected = 1 + max((level_of[p] for p in spec.depends_on), default=-1)
        assert spec.level == expected
        assert all(spec.level > level_of[p] for p in spec.depends_on)
        level_of[spec.name] = spec.level

        template = by_id[spec.template_id]
        assert spec.service == f"svc-{template.id}"
        if template.count is not None:
            assert spec.payload == {"i": spec.index, "n": template.count}
        for parent_id, mode in template.deps:
            parent = by_id[parent_id]
            got = [
                p for p in spec.depends_on if p.rpartition("_")[0] == parent_id or p == parent_id
            ]
            zipped = mode == "zip" or (
                mode == "auto" and template.count is not None and parent.count == template.count
            )
            if zipped:
                assert got == [f"{parent_id}_{spec.index}"]
            elif parent.count is None:
                assert got == [parent_id]
            else:
                assert got == [f"{parent_id}_{i}" for i in range(1, parent.count + 1)]


@settings(max_examples=50, deadline=None)
@given(random_templates())
def test_expansion_is_deterministic(tasks: list[RandomTask]) -> None:
    assert expand(tasks) == expand(tasks)
