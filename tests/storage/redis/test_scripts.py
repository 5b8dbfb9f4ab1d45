"""Every Lua script documents what it touches, and the loader recovers from NOSCRIPT."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from scenarist.storage.redis.scripts import HELPERS, LIBRARY, OPERATIONS, lua_source
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, diamond, lease, submit

pytestmark = pytest.mark.redis

LUA_DIR = resources.files("scenarist.storage.redis").joinpath("lua")


def _header(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_every_lua_file_is_an_operation_or_a_helper_file() -> None:
    files = {p.name for p in LUA_DIR.iterdir() if p.name.endswith(".lua")}
    assert files == {*HELPERS, *(f"{op}.lua" for op in OPERATIONS)}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_header_documents_every_key_and_argument_used(operation: str) -> None:
    source = lua_source(f"{operation}.lua")
    header = _header(source)
    assert header.startswith(f"-- {operation}.lua: "), "header must name the file and its job"
    body = source[len(header) :]
    for kind in ("KEYS", "ARGV"):
        used = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", body)}
        for index in used:
            if kind == "ARGV" and index <= 4:
                continue  # common configuration, documented once in _lib.lua
            documented = re.search(rf"^-- {kind}\[{index}(\.\.\d*)?\]\s+\S+", header, re.M) or (
                re.search(rf"^-- {kind}\[(\d+)\.\.(\d+)\]", header, re.M)
            )
            assert documented, f"{operation}.lua uses {kind}[{index}] without documenting it"
    assert "-- KEYS[1]" in header
    assert "shard prefix" in header
    assert "ARGV[1..4]" in header


def test_library_documents_common_keys_and_arguments() -> None:
    header = _header(lua_source(LIBRARY))
    for entry in ("KEYS[1]", "ARGV[1]", "ARGV[2]", "ARGV[3]", "ARGV[4]"):
        assert f"--   {entry}" in header


async def test_scripts_reload_after_script_flush(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond())
    await rstore.client.script_flush()
    (task,) = await lease(rstore, now=T0 + 1, max_tasks=1)
    await rstore.client.script_flush()
    done = await rstore.complete(task.id, task.lease_token, result_ref="r", result=None, now=T0 + 2)
    assert sorted(done.released) == [f"{scenario.id}:b", f"{scenario.id}:c"]


async def test_corked_pipeline_reloads_after_script_flush(rstore: RedisStore) -> None:
    """Concurrent calls go out as one pipeline; NOSCRIPT inside it is recovered per call."""
    import asyncio

    scenario, _ = await submit(rstore, diamond())
    (a,) = await lease(rstore, now=T0 + 1, max_tasks=1)
    await rstore.complete(a.id, a.lease_token, result_ref="r", result=None, now=T0 + 2)
    leased = await rstore.lease(
        "svc", max_tasks=2, lease_seconds=None, worker_id=None, now=T0 + 3, nonce="n"
    )
    await rstore.client.script_flush()
    outcomes = await asyncio.gather(
        *(rstore.complete(t.id, t.lease_token, result_ref="r", result=None, now=T0 + 4)
          for t in leased)
    )  # fmt: skip
    released = [r for o in outcomes for r in o.released]
    assert released == [f"{scenario.id}:d"], "the fan-in is released exactly once"


async def test_declared_keys_must_match_the_lua_layout(rstore: RedisStore) -> None:
    from redis.exceptions import ResponseError

    scenario, _ = await submit(rstore, diamond())
    keys = rstore.key_space.for_scenario(scenario.id).scenario_keys(scenario.id)
    keys[3] = keys[3] + "-elsewhere"
    with pytest.raises(ResponseError, match="key layout mismatch"):
        await rstore._scripts.run("cancel", keys, [scenario.id, repr(T0)])


@pytest.mark.redis
async def test_task_ids_tie_break_byte_wise_whatever_the_servers_locale(
    rstore: RedisStore,
) -> None:
    """lease_many.lua merges queue heads with `bytes_less`, not Lua's `<`, which follows
    the server's collation locale: ids must compare as ZPOPMIN and SQLite compare them."""
    pairs = [("slide_b", "slidea"), ("B", "a"), ("a", "ab"), ("ab", "a"), ("x", "x"), ("é", "z")]
    script = (
        lua_source(LIBRARY)
        + "\nlocal out = {}\n"
        + "".join(
            f"out[#out + 1] = bytes_less({a!r}, {b!r}) and 1 or 0\n" for a, b in pairs
        ).replace("'", '"')
        + "return out\n"
    )
    answers = await rstore.client.eval(script, 0)
    assert answers == [int(a.encode() < b.encode()) for a, b in pairs]
