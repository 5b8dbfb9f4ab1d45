"""Load the Lua scripts: one file per atomic operation, run by SHA (EVALSHA).

Each operation file is prefixed with `lua/_lib.lua` (shared helpers) at load time, so an
operation is still a single script. redis-py's `AsyncScript` sends EVALSHA and falls back
to SCRIPT LOAD on NOSCRIPT (after a restart or a SCRIPT FLUSH).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

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


@dataclass(frozen=True, slots=True)
class Scripts:
    """One registered script per operation, bound to a client and its common ARGV."""

    by_name: dict[str, AsyncScript]
    common_args: tuple[str, ...]  # ARGV[1..4]: retention, publish_lists, list prefix, channels

    @classmethod
    def register(cls, client: Redis, common_args: tuple[str, ...]) -> Scripts:
        by_name = {op: client.register_script(operation_source(op)) for op in OPERATIONS}
        return cls(by_name=by_name, common_args=common_args)

    async def run(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        script = self.by_name[operation]
        return await script(keys=cast(list[Any], keys), args=[*self.common_args, *args])
