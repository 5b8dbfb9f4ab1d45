"""The Redis side of a rerun (rerun.lua) and of a task's history.

Payload overrides are merged here, not in Lua: a payload is stored as the caller's JSON
text and never re-encoded by a script (Lua's encoder would round numbers and turn empty
lists into objects). The script writes a merged payload only if the payload it was merged
from is still the stored one, else it answers "changed" and the merge is done again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from redis.asyncio import Redis

from scenarist.core.errors import ConflictError, ScenarioNotFoundError, TaskNotFoundError
from scenarist.core.model import JSON, RunRecord
from scenarist.core.rerun import (
    RerunRequest,
    check_request,
    merged_payload,
    refused,
    unknown_tasks,
)
from scenarist.core.step_cache import base_digest
from scenarist.storage.redis.codec import decode_runs, dump_json, load_json
from scenarist.storage.redis.failures import locate
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.scripts import Scripts

_MERGE_ATTEMPTS = 5  # concurrent overrides of one task's payload, each retried this often


async def rerun(  # noqa: PLR0917 (the store's means, then the request)
    client: Redis,
    space: KeySpace,
    scripts: Scripts,
    scenario_id: str,
    request: RerunRequest,
    now: str,
) -> tuple[str, ...]:
    names, payloads = request.tasks, request.payloads
    check_request(names, payloads)
    shard = space.for_scenario(scenario_id)
    keys = [
        *shard.scenario_keys(scenario_id),
        shard.history(scenario_id),
        shard.expanded(scenario_id),
    ]
    for _ in range(_MERGE_ATTEMPTS):
        overrides = await _overrides(client, shard.tasks(scenario_id), payloads)
        outcome: list[Any] = await scripts.run(
            "rerun",
            keys,
            [
                scenario_id,
                now,
                dump_json(list(names)),
                dump_json(overrides),
                "1" if request.cancel_running else "0",
                "1" if request.no_cache else "0",
                request.history_limit,
            ],
        )
        code = outcome[0]
        if code == "ok":
            return tuple(load_json(outcome[1]))
        if code == "notfound":
            raise ScenarioNotFoundError(scenario_id)
        if code == "unknown":
            raise unknown_tasks(scenario_id, load_json(outcome[1]))
        if code == "refused":
            raise refused(outcome[1], load_json(outcome[2]), outcome[3])
        assert code == "changed", outcome
    raise ConflictError(
        f"the payloads of scenario {scenario_id!r} kept changing; try again", field="payload"
    )


async def _overrides(
    client: Redis, tasks_key: str, payloads: Mapping[str, Mapping[str, JSON]]
) -> list[list[str]]:
    """[name, stored payload, merged payload, its cache base digest] for every override
    of a task that exists (an unknown one is reported by the script)."""
    if not payloads:
        return []
    names = list(payloads)
    records = cast(list[str | None], await client.hmget(tasks_key, names))
    merged = []
    for name, raw in zip(names, records, strict=True):
        if raw is not None:
            record = load_json(raw)
            stored = record["p"]
            payload = merged_payload(load_json(stored), payloads[name])
            # A cached task's key starts from its service and payload (core/step_cache.py).
            merged.append([name, stored, dump_json(payload), base_digest(record["v"], payload)])
    return merged


async def task_history(client: Redis, space: KeySpace, task_id: str) -> list[RunRecord]:
    sid, name = locate(task_id)
    shard = space.for_scenario(sid)
    async with client.pipeline(transaction=False) as pipe:
        pipe.hexists(shard.tasks(sid), name)
        pipe.hget(shard.history(sid), name)
        exists, raw = await pipe.execute()
    if not exists:
        raise TaskNotFoundError(task_id)
    return decode_runs(raw)
