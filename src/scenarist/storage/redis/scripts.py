"""Load and run the Lua scripts: one file per atomic operation, plus the helper files.

On a single node all operations are ONE Redis Function library (FUNCTION LOAD once, then
FCALL per call): the shared helpers are built when the library loads instead of on every
call, which is most of what a short script like complete costs. Each operation is still
one atomic function with the KEYS/ARGV contract its file documents. When the library is
missing (server restart, FUNCTION FLUSH) the call fails with "Function not found"; the
library is loaded and the call repeated, as EVALSHA callers do on NOSCRIPT.

The same files also build one EVAL script per operation (library, `begin`, operation),
run by EVALSHA with NOSCRIPT fallback; the cluster scripts (cluster.py) use those.

Script calls made concurrently (in the same event-loop turn, e.g. the shards of a batch
completion, or calls of several requests) are corked into one pipeline: one round trip
and one socket write for the batch, each call still its own atomic function with its own
outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from scenarist.storage.redis.keys import FUNCTION_LIBRARIES

LIBRARY = "_lib.lua"
# Helper files, in load order: later ones use the earlier ones' helpers.
HELPERS = (LIBRARY, "_groups.lua", "_lease.lua")
LIBRARY_PREFIX = "scenarist_"
LIBRARY_REGISTRY = FUNCTION_LIBRARIES
# A library nobody loaded for this long is deleted by the next load of another version. A
# process still using it loads it again on "Function not found" (one FUNCTION LOAD), so
# two versions running side by side during an upgrade never delete each other's in a loop.
STALE_LIBRARY_SECONDS = 3600.0
OPERATIONS = (
    "create",
    "lease",
    "lease_many",
    "claim",
    "heartbeat",
    "complete",
    "fail",
    "expire",
    "hand_back",
    "cancel",
    "retry",
    "rerun",
    "callbacks_claim",
    "callbacks_finish",
    "promote",
    "stats",
    "tenant_stats",
    "heads",
    "cache_clear",
    "gate_reserve",
    "gate_confirm",
    "lease_planned",
    "fair_charge",
)


def lua_source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


def operation_source(operation: str) -> str:
    """The EVAL script of `operation`: library, `begin` with the script's KEYS/ARGV, then
    the operation's own text."""
    return f"{helpers_source()}\nbegin(KEYS, ARGV)\n{lua_source(f'{operation}.lua')}"


def helpers_source() -> str:
    return "\n".join(lua_source(name) for name in HELPERS)


def library_version() -> str:
    """Names the loaded library and its functions after its source: a server shared by
    two versions of scenarist holds both, each calling its own."""
    texts = [
        *(lua_source(name) for name in HELPERS),
        *(lua_source(f"{op}.lua") for op in OPERATIONS),
    ]
    return hashlib.sha1("\0".join(texts).encode()).hexdigest()[:12]


def function_name(operation: str, version: str) -> str:
    return f"scenarist_{version}_{operation}"


def library_source(version: str) -> str:
    """One library: the helpers once, then each operation as a function whose parameters
    shadow KEYS and ARGV, so the operation's text runs unchanged."""
    parts = [f"#!lua name={LIBRARY_PREFIX}{version}", helpers_source()]
    for op in OPERATIONS:
        parts.append(
            f"redis.register_function('{function_name(op, version)}', function(KEYS, ARGV)\n"
            f"begin(KEYS, ARGV)\n{lua_source(f'{op}.lua')}\nend)"
        )
    return "\n".join(parts)


def is_missing_function(result: object) -> bool:
    return isinstance(result, ResponseError) and "Function not found" in str(result)


@dataclass(slots=True)
class _Call:
    function: str
    keys: list[str]
    args: list[str | int]
    outcome: asyncio.Future[Any]


@dataclass(slots=True)
class _Corker:
    """Collects the function calls of one event-loop turn and sends them as one pipeline."""

    client: Redis
    library: str
    version: str
    pending: list[_Call] = field(default_factory=list)
    flushing: set[asyncio.Task[None]] = field(default_factory=set)

    def submit(self, function: str, keys: list[str], args: list[str | int]) -> Any:
        loop = asyncio.get_running_loop()
        call = _Call(function, keys, args, loop.create_future())
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
        results: list[Any]
        if len(batch) == 1:  # a turn with one call (a lone submit): no pipeline object
            results = [await self._call(batch[0])]
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for call in batch:
                    pipe.fcall(call.function, len(call.keys), *call.keys, *call.args)
                results = await pipe.execute(raise_on_error=False)
        if any(is_missing_function(result) for result in results):
            await self._load_library()
            for i, (call, result) in enumerate(zip(batch, results, strict=True)):
                if is_missing_function(result):  # nothing ran: repeat the call
                    results[i] = await self._call(call)
        return results

    async def _call(self, call: _Call) -> Any:
        """One call on its own; a script error is its result, as in a pipeline."""
        try:
            return await self.client.fcall(call.function, len(call.keys), *call.keys, *call.args)
        except ResponseError as exc:
            return exc

    async def _load_library(self) -> None:
        try:
            await self.client.function_load(self.library)
        except ResponseError as exc:
            if "already exists" not in str(exc):  # loaded meanwhile by another client
                raise
        await delete_stale_libraries(self.client, self.version, now=time.time())


async def delete_stale_libraries(client: Redis, version: str, *, now: float) -> list[str]:
    """Record that `version` was loaded now and delete every other scenarist library not
    loaded for STALE_LIBRARY_SECONDS (or loaded before the registry existed): each change
    of the Lua source loads a new library, and without this the old ones stay forever."""
    await client.hset(LIBRARY_REGISTRY, version, repr(now))
    loaded = {str(k): str(v) for k, v in (await client.hgetall(LIBRARY_REGISTRY)).items()}
    deleted = []
    for library in await client.function_list(library=f"{LIBRARY_PREFIX}*"):
        name = str(dict(zip(library[::2], library[1::2], strict=True))["library_name"])
        other = name.removeprefix(LIBRARY_PREFIX)
        last = loaded.get(other)
        if other == version or (last is not None and now - float(last) < STALE_LIBRARY_SECONDS):
            continue
        with contextlib.suppress(ResponseError):  # deleted meanwhile by another process
            await client.function_delete(name)
        await client.hdel(LIBRARY_REGISTRY, other)
        deleted.append(name)
    return deleted


class Scripts:
    """Every operation bound to a client and its common ARGV, called through the function
    library; `by_name` holds the same operations as EVAL scripts (cluster.py)."""

    def __init__(self, client: Redis, common_args: tuple[str, ...]) -> None:
        self.by_name = {op: client.register_script(operation_source(op)) for op in OPERATIONS}
        self.common_args = common_args  # ARGV[1..4]: retention, publish_lists, lists, channels
        version = library_version()
        self._functions = {op: function_name(op, version) for op in OPERATIONS}
        self._corker = _Corker(client, library_source(version), version)

    async def run(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        function = self._functions[operation]
        return await self._corker.submit(function, keys, [*self.common_args, *args])
