"""Completions on Redis: a batch goes out as ONE complete.lua call per shard (not one call
per item), so a worker's report of ten tasks costs the server one encoded command and one
reply to parse, not ten; a single completion is a batch of one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scenarist.core.errors import ExpansionRequiredError, ScenaristError, TaskNotFoundError
from scenarist.core.model import JSON, Completion, TaskStatus
from scenarist.core.step_cache import result_digest
from scenarist.storage.base import CompletionItem
from scenarist.storage.redis.codec import decode_task, dump_json, opt, ts
from scenarist.storage.redis.failures import locate, task_outcome_error
from scenarist.storage.redis.keys import KeySpace, ShardKeys
from scenarist.storage.redis.scripts import Scripts

Outcome = Completion | ScenaristError


def completion_of(reply: list[Any], task_id: str) -> Outcome:
    """The outcome complete.lua reported for one item."""
    error = task_outcome_error(reply, task_id, TaskStatus.SUCCESS)
    if error is not None:
        return error
    sid, name = locate(task_id)
    if reply[0] == "expand":
        return ExpansionRequiredError(name, reply[1])
    task = decode_task(sid, name, reply[1])
    if reply[0] == "dup":
        return Completion(task=task, released=(), duplicate=True)
    return Completion(task=task, released=tuple(reply[2:]))


@dataclass(slots=True)
class _ShardBatch:
    """The items of one shard, in batch order, as complete.lua's KEYS and ARGV."""

    shard: ShardKeys
    positions: list[int] = field(default_factory=list)  # index of each item in the batch
    task_ids: list[str] = field(default_factory=list)
    scenarios: dict[str, int] = field(default_factory=dict)  # scenario id -> its number
    items: list[JSON] = field(default_factory=list)

    def add(self, position: int, item: CompletionItem, sid: str, name: str) -> None:
        number = self.scenarios.setdefault(sid, len(self.scenarios) + 1)
        result = None if item.result is None else dump_json(item.result)
        self.positions.append(position)
        self.task_ids.append(item.task_id)
        entry: list[JSON] = [
            number,
            name,
            opt(item.lease_token),
            opt(item.result_ref),
            opt(result),
        ]
        usage: JSON = dict(item.usage) if item.usage else None
        entry += [usage, result_digest(item.result_ref, item.result)]
        if item.payloads:
            # Each payload as JSON text: the script stores it verbatim as the
            # instance's record field, never decoding it.
            entry.append({g: [dump_json(p) for p in ps] for g, ps in item.payloads.items()})
        self.items.append(entry)

    def keys(self) -> list[str]:
        keys = [self.shard.prefix]
        for sid in self.scenarios:
            keys += [self.shard.scenario(sid), self.shard.tasks(sid), self.shard.events(sid)]
        return keys

    def args(self, now: float) -> list[str | int]:
        return [ts(now), len(self.scenarios), *self.scenarios, dump_json(self.items)]


async def complete_many(
    scripts: Scripts, space: KeySpace, items: Sequence[CompletionItem], *, now: float
) -> list[Outcome]:
    """Every item's outcome, in order. A task lives on one shard, so a repeated item is
    applied after its first occurrence inside the same call; shards run side by side
    (one pipeline on a single node)."""
    outcomes: list[Outcome | None] = [None] * len(items)
    batches: dict[int, _ShardBatch] = {}
    for position, item in enumerate(items):
        try:
            sid, name = locate(item.task_id)
        except TaskNotFoundError as exc:
            outcomes[position] = exc
            continue
        index = space.shard_of(sid)
        if index not in batches:
            batches[index] = _ShardBatch(space.shard(index))
        batches[index].add(position, item, sid, name)
    calls = [scripts.run("complete", b.keys(), b.args(now)) for b in batches.values()]
    # One shard (always so on a single node): no task to schedule for the one call.
    replies = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
    for batch, shard_replies in zip(batches.values(), replies, strict=True):
        for position, task_id, reply in zip(
            batch.positions, batch.task_ids, shard_replies, strict=True
        ):
            outcomes[position] = completion_of(reply, task_id)
    return [outcome for outcome in outcomes if outcome is not None]
