"""Load and run the Lua scripts: one file per atomic operation, run by SHA (EVALSHA).

Each operation file is prefixed with `lua/_lib.lua` (shared helpers) at load time, so an
operation is still a single script. Calls go out by EVALSHA; on NOSCRIPT (after a server
restart or a SCRIPT FLUSH) the script is loaded and the call repeated.

Script calls made concurrently (in the same event-loop turn, e.g. a worker completing a
batch with asyncio.gather) are corked into one pipeline: one round trip and one socket
write for the batch, each call still its own atomic script with its own outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

LIBRARY = "_lib.lua"
OPERATIONS = (
    "create",
    "lease",
    "claim",
    "heartbeat",
    "complete",
    "fail",
    "expire",
    "cancel",
    "retry",
    "callbacks_claim",
    "callbacks_finish",
    "promote",
    "stats",
)


def lua_source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


def operation_source(operation: str) -> str:
    """The text actually loaded into Redis for `operation`: library, then the operation."""
    return lua_source(LIBRARY) + "\n" + lua_source(f"{operation}.lua")


@dataclass(slots=True)
class _Call:
    script: AsyncScript
    keys: list[str]
    args: list[str | int]
    outcome: asyncio.Future[Any]


@dataclass(slots=True)
class _Corker:
    """Collects the script calls of one event-loop turn and sends them as one pipeline."""

    client: Redis
    pending: list[_Call] = field(default_factory=list)
    flushing: set[asyncio.Task[None]] = field(default_factory=set)

    def submit(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        loop = asyncio.get_running_loop()
        call = _Call(script, keys, args, loop.create_future())
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append(call)
        return call.outcome

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.create_task(self._send(batch))
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            if len(batch) == 1:
                call = batch[0]
                results: list[Any] = [await call.script(keys=call.keys, args=call.args)]
            else:
                results = await self._pipeline(batch)
        except Exception as exc:  # every caller sees the failure (e.g. Redis is down)
            for call in batch:
                if not call.outcome.done():
                    call.outcome.set_exception(exc)
            return
        for call, result in zip(batch, results, strict=True):
            if call.outcome.done():
                continue
            if isinstance(result, Exception):
                call.outcome.set_exception(result)
            else:
                call.outcome.set_result(result)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        for i, (call, result) in enumerate(zip(batch, results, strict=True)):
            if isinstance(result, NoScriptError):  # loads the script and repeats the call
                results[i] = await call.script(keys=call.keys, args=call.args)
        return results


class Scripts:
    """One registered script per operation, bound to a client and its common ARGV."""

    def __init__(self, client: Redis, common_args: tuple[str, ...]) -> None:
        self.by_name = {op: client.register_script(operation_source(op)) for op in OPERATIONS}
        self.common_args = common_args  # ARGV[1..4]: retention, publish_lists, lists, channels
        self._corker = _Corker(client)

    async def run(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        return await self._corker.submit(self.by_name[operation], keys, [*self.common_args, *args])
