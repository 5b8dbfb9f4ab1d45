"""The lockstep test with `for_each` groups: random DAGs where some tasks are groups
(expanded by the completion that makes their parents final, some zipped with an upstream
group, joins below them), driven through the same operations on the model of the
lifecycle table, on SQLite, on single-node Redis and on a real Redis Cluster, compared
after every step (Lua expands a group inside the completion's script, see
storage/redis/lua/_groups.lua)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test

from scenarist.core.model import Lane, ScenarioPlan, TaskSpec, TaskStatus
from scenarist.core.rerun import RerunRequest
from scenarist.service.records import build_records
from scenarist.storage.base import CompletionItem, Store
from tests.storage.lockstep_model import ModelStore
from tests.storage.plans import T0, lease_named, plan, run_to_success, spec
from tests.storage.test_lockstep import (
    LOCKSTEP_SETTINGS,
    SERVICES,
    Lockstep,
    events_of,
    every_store,
    lua_mutant_is_caught,
    open_redis,
    open_sqlite,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer


def group(base: TaskSpec, zip_with: str | None, max_parallel: int | None) -> TaskSpec:
    spec_ = {"for_each": "{{ x }}", "zip": zip_with, "payload": {}, "max_items": 9}
    return dataclasses.replace(
        base,
        for_each="{{ x }}",
        group_spec=spec_,
        payload={},
        max_parallel=max_parallel,
        template_id=base.name,  # its instances are its max_parallel group
    )


@st.composite
def group_dags(draw: st.DrawFn) -> ScenarioPlan:
    """Up to 6 tasks; a task with parents may be a group (a group whose parent is a group
    zips with it), a task below a group may carry a join; some groups, and some plain
    tasks (one max_parallel group of the scenario), have max_parallel 1 or 2."""
    specs: list[TaskSpec] = []
    groups: set[str] = set()
    # The plain tasks with a limit are one group (template id "t"): one limit for all.
    plain_limit = draw(st.sampled_from([None, 1, 2]))
    for i in range(draw(st.integers(1, 6))):
        earlier = [f"t{j}" for j in range(i)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
        base = spec(
            f"t{i}",
            *deps,
            service=draw(st.sampled_from(SERVICES)),
            max_attempts=draw(st.integers(1, 2)),
            optional=draw(st.sampled_from([False, False, True])),
        )
        max_parallel = draw(st.sampled_from([None, None, 1, 2]))
        upstream = [d for d in deps if d in groups]
        if deps and len(upstream) <= 1 and draw(st.booleans()):
            # A zipped group has exactly one upstream group among its parents.
            specs.append(group(base, upstream[0] if upstream else None, max_parallel))
            groups.add(base.name)
            continue
        if upstream:
            join = draw(st.sampled_from(["all", "any", {"min_success": 1}, {"min_success": 2}]))
            base = dataclasses.replace(base, join=join, need=None)
        limited = plain_limit is not None and draw(st.booleans())
        specs.append(dataclasses.replace(base, max_parallel=plain_limit if limited else None))
    return plan(*specs)


class GroupLockstep(Lockstep):
    @initialize(the_plan=group_dags())
    def first_submit(self, the_plan: ScenarioPlan) -> None:
        self.submit(the_plan)

    # The plain completions carry no payloads (a released group then answers
    # ExpansionRequiredError everywhere): replaced here by complete_expanding.
    def complete(self, data: st.DataObject, seed: bool, with_result: bool) -> None:
        raise AssertionError("not a rule of this machine")

    def complete_many(self, data: st.DataObject) -> None:
        raise AssertionError("not a rule of this machine")

    @rule(the_plan=group_dags(), lane=st.sampled_from(list(Lane)))
    def submit_groups(self, the_plan: ScenarioPlan, lane: Lane) -> None:
        """Instances keep their group's lane, on every store."""
        self.submit(the_plan, lane)

    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), count=st.integers(0, 3), batch=st.booleans())
    def complete_expanding(self, data: st.DataObject, count: int, batch: bool) -> None:
        """Every group gets `count` instances (zipped ones agree by construction); a
        store ignores the payloads of groups the completion does not release."""
        task_id, token = data.draw(st.sampled_from(self.tokens))
        payloads: dict[str, list[Any]] = {
            f"t{i}": [{"n": n} for n in range(count)] for i in range(6)
        }
        now = self.tick()
        if batch:
            items = [CompletionItem(task_id, token, "ref", {"x": 1}, payloads=payloads)]
            self.each(lambda s: s.complete_many(items, now=now))
        else:
            self.each(
                lambda s: s.complete(
                    task_id, token, result_ref="ref", result=None, now=now, payloads=payloads
                )
            )

    @rule(count=st.integers(0, 3), rounds=st.integers(1, 3))
    def work(self, count: int, rounds: int) -> None:
        """A worker's loop, a few rounds of leasing what is ready and completing it (every
        group gets `count` instances): scenarios reach their expansions, so the reruns
        below find groups to bring back."""
        payloads: dict[str, list[Any]] = {
            f"t{i}": [{"n": n} for n in range(count)] for i in range(6)
        }
        for _ in range(rounds):
            now, nonce = self.tick(), self.nonce()
            leased = self.each(
                lambda s, now=now, nonce=nonce: s.lease_services(
                    SERVICES, max_tasks=4, lease_seconds=None, worker_id="w", now=now,
                    nonce=nonce,
                )
            )  # fmt: skip
            for task in leased:
                done = self.tick()
                self.each(
                    lambda s, t=task, done=done: s.complete(
                        t["id"], t["lease_token"], result_ref="ref", result=None, now=done,
                        payloads=payloads,
                    )
                )  # fmt: skip

    def group_parents(self) -> list[str]:
        """Ids of the parents of the model's expanded groups (those a rerun brings back)."""
        model = self.stores["model"]
        assert isinstance(model, ModelStore)
        return [
            f"{sid}:{parent}"
            for sid, groups in model.expanded.items()
            for record in groups.values()
            for parent in dict.fromkeys(record["depends_on"])
            if parent not in groups
        ]

    @precondition(lambda self: self.group_parents())
    @rule(data=st.data(), cancel_running=st.booleans())
    def rerun_a_groups_parent(self, data: st.DataObject, cancel_running: bool) -> None:
        """A rerun from a parent of an expanded group: the group (and the groups zipped
        with it) come back on every store, their instances go (decision 63)."""
        first = data.draw(st.sampled_from(self.group_parents()))
        self._rerun(data, cancel_running=cancel_running, no_cache=False, limit=2, first=first)

    @rule()
    def learn_instances(self) -> None:
        """Instances appear at run time: lease and complete can pick them once known."""
        for scenario_id in self.scenarios:
            tasks = self.run(next(iter(self.stores.values())).list_tasks(scenario_id))
            for task in tasks:
                if task.id not in self.task_ids:
                    self.task_ids.append(task.id)


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_groups_in_lockstep_on_every_store(
    tmp_path: Path, redis_server: RedisServer, conformance_cluster: RedisCluster
) -> None:
    machine = type(
        "GroupLockstepMachine",
        (GroupLockstep,),
        {"openers": every_store(tmp_path, redis_server, conformance_cluster)},
    )
    run_state_machine_as_test(
        machine, settings=settings(LOCKSTEP_SETTINGS, max_examples=15, stateful_step_count=35)
    )


@pytest.mark.redis
def test_the_group_lockstep_catches_a_broken_lua_expansion(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of _groups.lua changed: an expansion leaves the
    scenario's task count as it was."""
    mutant_is_caught(
        redis_server, monkeypatch, "_groups.lua", "  bump(sid, 'n', count)\n",
        "  bump(sid, 'n', 0)\n",
    )  # fmt: skip


@pytest.mark.redis
def test_the_group_lockstep_catches_a_broken_lua_collapse(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of rerun.lua changed: a group a rerun brings back
    leaves the scenario's `growing` counter as it was."""
    mutant_is_caught(
        redis_server, monkeypatch, "rerun.lua", "  bump(sid, 'g', 1)\n", "  bump(sid, 'g', 0)\n"
    )


@pytest.mark.redis
def test_the_group_lockstep_catches_lua_instances_that_lose_their_lane(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of _groups.lua changed: the records an expansion
    writes leave the scenario's lane behind (its instances are stored, and once released
    queued, as the normal lane's)."""
    mutant_is_caught(
        redis_server, monkeypatch, "_groups.lua",
        "  if g.ln then parts[#parts + 1] = ',\"ln\":' .. cjson.encode(g.ln) end\n", "",
    )  # fmt: skip


def mutant_is_caught(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    line: str,
    mutated: str,
) -> None:
    """The group lockstep against a Redis store with one line of `script` changed."""
    lua_mutant_is_caught(redis_server, monkeypatch, script, line, mutated, machine=GroupLockstep)


@pytest.mark.redis
async def test_a_zipped_group_doomed_while_its_upstream_expands_stays_skipped(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """t1 expands to one instance; t2 below it needs two successes, so the expansion
    skips it, and t3 (zipped with t1, also below t2) with it: t3 must not expand as well
    (it once did on the model and SQLite, leaving a skipped group's instance behind and
    the counters off). Every store ends the same way."""
    t2 = dataclasses.replace(spec("t2", "t1"), join={"min_success": 2}, need=None)
    the_plan = plan(
        spec("t0"),
        group(spec("t1", "t0"), None, None),
        t2,
        group(spec("t3", "t1", "t2"), "t1", None),
    )

    async def model() -> Store:
        return ModelStore()

    answers = []
    for open_ in (model, lambda: open_sqlite(tmp_path), lambda: open_redis(redis_server.url)):
        store = await open_()
        try:
            scenario, tasks = build_records(the_plan, scenario_id="sc1", now=T0)
            await store.create_scenario(scenario, tasks)
            [root] = await store.lease(
                "svc", max_tasks=1, lease_seconds=None, worker_id=None, now=T0 + 1, nonce="n"
            )
            payloads = {"t1": [{}], "t3": [{}]}
            await store.complete(
                root.id, root.lease_token, result_ref=None, result=None, now=T0 + 2,
                payloads=payloads,
            )  # fmt: skip
            listed = [(t.name, t.status.value) for t in await store.list_tasks("sc1")]
            answers.append((listed, dict((await store.get_scenario("sc1")).progress.by_status)))
        finally:
            await store.close()
    assert answers[0][0] == [
        ("t0", "success"), ("t2", "skipped"), ("t3", "skipped"), ("t1_1", "queued"),
    ]  # fmt: skip
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]


@pytest.mark.redis
async def test_an_expanded_groups_record_is_kept_beside_its_scenario(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Decision 63: the group's record as it was when it expanded stays readable after
    its instances replaced it in the graph (a rerun of the task it expanded from needs
    it back), on every store; a group that did not expand has none."""
    from scenarist.storage.redis.codec import decode_task
    from scenarist.storage.redis.store import RedisStore
    from scenarist.storage.sqlite.expansion import expanded_group
    from scenarist.storage.sqlite.store import SqliteStore

    the_plan = plan(
        spec("t0"),
        group(spec("t1", "t0"), None, 2),
        spec("t2", "t1"),
        group(spec("t3", "t2"), None, None),
    )
    model = ModelStore()
    sqlite = await SqliteStore.open(tmp_path / "s.db")
    redis = await RedisStore.open(redis_server.url, key_prefix="kept")

    def kept_in_model(name: str) -> Any:
        found = model.expanded.get("sc1", {}).get(name)
        return None if found is None else _kept(found, decode=False)

    def kept_in_sqlite(name: str) -> Any:
        with sqlite3.connect(tmp_path / "s.db") as conn:
            conn.row_factory = sqlite3.Row
            found = expanded_group(conn, "sc1", name)
        return None if found is None else _kept(found, decode=True)

    async def kept_in_redis(name: str) -> Any:
        key = redis.key_space.for_scenario("sc1").expanded("sc1")
        raw = await redis.client.hget(key, name)
        return (
            None if raw is None else _kept(dataclasses.asdict(decode_task("sc1", name, raw)), False)
        )

    try:
        for store in (model, sqlite, redis):
            scenario, tasks = build_records(the_plan, scenario_id="sc1", now=T0)
            await store.create_scenario(scenario, tasks)
            [root] = await store.lease(
                "svc", max_tasks=1, lease_seconds=None, worker_id=None, now=T0 + 1, nonce="n"
            )
            payloads = {"t1": [{"n": 0}, {"n": 1}]}
            await store.complete(
                root.id, root.lease_token, result_ref=None, result=None, now=T0 + 2,
                payloads=payloads,
            )  # fmt: skip
        expected = (
            {"for_each": "{{ x }}", "zip": None, "payload": {}, "max_items": 9},
            ("t0",),
            ("t2",),
            "pending",
            2,
        )
        assert kept_in_model("t1") == expected
        assert kept_in_sqlite("t1") == expected
        assert await kept_in_redis("t1") == expected
        assert kept_in_model("t3") is kept_in_sqlite("t3") is await kept_in_redis("t3") is None
    finally:
        await sqlite.close()
        await redis.close()


def _kept(fields: Mapping[str, Any], decode: bool) -> tuple[Any, ...]:
    """The parts of a kept group every store must agree on (SQLite keeps JSON text)."""

    def value(key: str) -> Any:
        return json.loads(fields[key]) if decode else fields[key]

    return (
        value("group_spec"),
        tuple(value("depends_on")),
        tuple(value("dependents")),
        TaskStatus(fields["status"]).value,
        fields["max_parallel"],
    )


@pytest.mark.redis
@pytest.mark.redis_cluster
async def test_a_rerun_brings_a_zipped_pair_of_groups_back_alike_on_every_store(
    tmp_path: Path, redis_server: RedisServer, conformance_cluster: RedisCluster
) -> None:
    """CreateVideoAuto's shape: `s` expands `p` (three instances) and `i` zipped with it;
    `v` waits for `w` and the `i` instances. A rerun of `s` while i_3 is processing
    (cancelled first) brings both groups back, `v` waits for `i` again; the next
    completion expands them to two, then to none. Every store ends each step alike."""
    the_plan = plan(
        spec("s"),
        spec("w", "s"),
        group(spec("p", "s"), None, None),
        group(spec("i", "p"), "p", 1),
        spec("v", "w", "i"),
    )
    seen: list[list[Any]] = []
    for open_ in every_store(tmp_path, redis_server, conformance_cluster).values():
        store = await open_()
        steps: list[Any] = []

        async def state(store: Store = store, steps: list[Any] = steps) -> None:
            tasks = await store.list_tasks("sc1")
            scenario = await store.get_scenario("sc1")
            steps.append(
                (
                    [(t.name, t.status.value, t.depends_on, t.dependents) for t in tasks],
                    scenario.status.value,
                    scenario.progress,
                    await events_of(store, "sc1"),
                )
            )

        async def finish_s(count: int, now: float, store: Store = store) -> None:
            task = await lease_named(store, "sc1", "s", now=now)
            items = [{"n": n} for n in range(count)]
            await store.complete(
                task.id, task.lease_token, result_ref="r", result=None, now=now,
                payloads={"p": items, "i": items},
            )  # fmt: skip

        try:
            scenario, tasks = build_records(the_plan, scenario_id="sc1", now=T0)
            await store.create_scenario(scenario, tasks)
            await finish_s(3, T0 + 1)
            await run_to_success(store, "sc1", ["w", "p_1", "p_2", "p_3", "i_1"], now=T0 + 2)
            await lease_named(store, "sc1", "i_3", now=T0 + 3)
            await state()
            request = RerunRequest(("s",), cancel_running=True)
            _, again = await store.rerun_scenario("sc1", request, now=T0 + 4)
            steps.append(again)
            await state()
            await finish_s(2, T0 + 5)
            await run_to_success(store, "sc1", ["w", "p_1", "p_2", "i_1", "i_2", "v"], now=T0 + 6)
            await state()
            await store.rerun_scenario("sc1", RerunRequest(("s",)), now=T0 + 7)
            await finish_s(0, T0 + 8)
            await run_to_success(store, "sc1", ["w", "v"], now=T0 + 9)
            await state()
        finally:
            await store.close()
        seen.append(steps)
    assert seen[0][1] == ("s", "w", "p", "i", "v")
    after_rerun = {name: (status, after) for name, status, after, _ in seen[0][2][0]}
    assert after_rerun == {
        "s": ("queued", ()), "w": ("pending", ("s",)), "p": ("pending", ("s",)),
        "i": ("pending", ("p",)), "v": ("pending", ("w", "i")),
    }  # fmt: skip
    assert [(n, st_) for n, st_, _, _ in seen[0][3][0]] == [
        ("s", "success"), ("w", "success"), ("v", "success"),
        ("p_1", "success"), ("p_2", "success"), ("i_1", "success"), ("i_2", "success"),
    ]  # fmt: skip
    assert seen[0][4][1] == "success"
    assert [(n, d) for n, _, d, _ in seen[0][4][0]] == [("s", ()), ("w", ("s",)), ("v", ("w",))]
    for name, steps in zip(("sqlite", "redis", "redis-cluster"), seen[1:], strict=True):
        assert steps == seen[0], name
