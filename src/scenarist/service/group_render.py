"""Rendering a `for_each` group's instances for the completion that expands it.

Templates never run inside a store's atomic step (nor in Lua), so the service renders
first: the group's `for_each` over its parents' results (the completing task's from the
completion body), then one payload per item (`item`, `index` 1-based, `count`), and for a
group downstream that zips with it (`for_each: shot`) one payload per instance of this
one. Everything comes from the group's spec stored with the scenario, never from the
catalog as loaded now. A result that gives no list, or too long a list, is a
BadGroupResultError (422) naming the task and the expression; nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scenarist.core.errors import BadGroupResultError, ConflictError, ExpansionRequiredError
from scenarist.core.expand import render_tree
from scenarist.core.model import JSON, Completion, Task, TaskStatus, task_id
from scenarist.core.render import CompiledLeaf, Renderer, RenderSession
from scenarist.core.render_budget import RenderLimits
from scenarist.core.usage import Usage
from scenarist.storage.base import Store

# A plan's limits bound one submission; an expansion renders the list (one value as large
# as the completion body allows, at most max_items items) and up to max_items payloads, so
# its limits are those of a body, not of a plan's leaf.
EXPANSION_LIMITS = RenderLimits(
    max_leaf_chars=64 * 1024 * 1024, max_plan_chars=256 * 1024 * 1024, max_seconds=10.0
)


MAX_EXPANSION_ROUNDS = 64  # groups one completion may release, plus one


class GroupRenderer:
    def __init__(self, store: Store, renderer: Renderer | None = None) -> None:
        self.store = store
        self.renderer = renderer or Renderer(EXPANSION_LIMITS)

    async def complete(
        self,
        task_id: str,
        lease_token: str | None,
        *,
        result_ref: str | None,
        result: Mapping[str, JSON] | None,
        usage: Usage | None,
        now: float,
        first_group: str | None = None,
    ) -> Completion:
        """`Store.complete`, with the instances of every group it releases. The store
        refuses a completion that releases a group it has no instances for (before it
        changes anything): render the group it names and repeat, until it has every
        group it releases (one completion may release several; each round adds one)."""
        payloads: dict[str, list[JSON]] = {}
        group = first_group
        for _ in range(MAX_EXPANSION_ROUNDS):
            if group is not None:
                task = await self.store.get_task(task_id)
                payloads.update(await self.payloads(task, result, group))
            try:
                return await self.store.complete(
                    task_id,
                    lease_token,
                    result_ref=result_ref,
                    result=result,
                    now=now,
                    usage=usage,
                    payloads=payloads,
                )
            except ExpansionRequiredError as exc:
                group = exc.group
        raise ConflictError(
            f"task {task_id!r}: its dependent groups kept changing", field="task_id"
        )

    async def payloads(
        self, task: Task, result: Mapping[str, JSON] | None, group_name: str
    ) -> dict[str, list[JSON]]:
        """The payloads of `group_name` (released by completing `task` with `result`) and
        of every group zipped below it."""
        scenario = await self.store.get_scenario(task.scenario_id)
        group = await self.store.get_task(task_id(task.scenario_id, group_name))
        spec = group.group_spec
        assert spec is not None, group_name
        parents = await self.store.get_tasks(
            [task_id(task.scenario_id, p) for p in dict.fromkeys(group.depends_on)]
        )
        results: dict[str, JSON] = {
            p.name: p.result for p in parents.values() if p.status is TaskStatus.SUCCESS
        }
        results[task.name] = None if result is None else dict(result)
        session = self.renderer.session()
        where = f"scenario {scenario.template!r}, task {group_name!r}"
        items = session.render(
            self._leaf(spec["for_each"], "for_each"),
            {**scenario.params, "results": results},
            where,
        )
        self._check(task, group_name, spec, items)
        assert isinstance(items, list)
        out: dict[str, list[JSON]] = {}
        await self._render_group(session, scenario.params, group, items, out, scenario.template)
        return out

    def _check(self, task: Task, group: str, spec: Mapping[str, Any], items: JSON) -> None:
        expression = spec["for_each"]
        if not isinstance(items, list):
            raise BadGroupResultError(
                f"the result of task {task.name!r} gives group {group!r} no list: for_each "
                f"{expression!r} rendered {type(items).__name__} {_short(items)}",
                field="result",
            )
        if len(items) > spec["max_items"]:
            raise BadGroupResultError(
                f"the result of task {task.name!r} gives group {group!r} {len(items)} items: "
                f"for_each {expression!r} allows at most {spec['max_items']} (max_items)",
                field="result",
            )

    async def _render_group(  # noqa: PLR0917 (the recursion's state)
        self,
        session: RenderSession,
        params: Mapping[str, JSON],
        group: Task,
        items: Sequence[JSON],
        out: dict[str, list[JSON]],
        template: str,
    ) -> None:
        where = f"scenario {template!r}, task {group.name!r}"
        spec = group.group_spec
        assert spec is not None
        payload = self._compile(spec["payload"], "payload")
        count = len(items)
        out[group.name] = [
            render_tree(
                session, payload, {**params, "item": item, "index": i, "count": count}, where
            )
            for i, item in enumerate(items, start=1)
        ]
        dependents = await self.store.get_tasks(
            [task_id(group.scenario_id, d) for d in dict.fromkeys(group.dependents)]
        )
        for child in dependents.values():
            if child.group_spec is not None and child.group_spec.get("zip") == group.name:
                await self._render_group(session, params, child, items, out, template)

    def _leaf(self, source: str, path: str) -> CompiledLeaf:
        return self.renderer.compile(source, path)

    def _compile(self, value: JSON, path: str) -> Any:
        if isinstance(value, str):
            return self._leaf(value, path)
        if isinstance(value, dict):
            return {k: self._compile(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._compile(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


def _short(value: JSON) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
