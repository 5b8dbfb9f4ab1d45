"""Commands framed by hiredis are byte for byte what redis-py's own framing sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from scenarist.storage.redis.packing import with_hiredis_packing
from scenarist.storage.redis.store import RedisStore

COMMANDS = [
    ("FCALL", "scenarist_0123_complete", 2, "{p:0}:", "{p:0}:s:x", "604800.0", "", "+tok.1"),
    ("CONFIG GET", "maxmemory"),
    ("SET", b"raw\x00bytes", "ünïcødé \r\n", 1.5, -7, 2**62),
    ("SET", "k", memoryview(b"view"), bytearray(b"array")),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_framing_matches_redis_py(command: tuple[object, ...]) -> None:
    packed = with_hiredis_packing(Connection)().pack_command(*command)
    assert b"".join(packed) == b"".join(Connection().pack_command(*command))


def test_unencodable_arguments_are_refused_as_redis_py_does() -> None:
    with pytest.raises(DataError):
        with_hiredis_packing(Connection)().pack_command("SET", "k", object())


def test_each_connection_kind_keeps_its_class() -> None:
    for base in (Connection, SSLConnection, UnixDomainSocketConnection):
        packing = with_hiredis_packing(base)
        assert issubclass(packing, base)
        assert with_hiredis_packing(packing) is packing is with_hiredis_packing(base)


@pytest.mark.redis
async def test_a_single_node_store_frames_with_hiredis(rstore: RedisStore) -> None:
    pool_class = rstore.client.connection_pool.connection_class
    assert pool_class is with_hiredis_packing(Connection)
    await rstore.ping()
