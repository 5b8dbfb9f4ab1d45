"""The notifier subscribes only to channels someone watches, and loses no wake-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from scenarist.storage.redis.notifier import ClientPubSub, Notifier
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, diamond, lease, submit
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

CHANNEL = "scenarist:events:s1"


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    yield redis
    await redis.aclose()


@pytest.fixture
async def notifier(client: Redis) -> AsyncIterator[Notifier]:
    opened = Notifier(ClientPubSub(client), linger_seconds=0.0)
    yield opened
    await opened.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def assert_woken_by_publish(notifier: Notifier, client: Redis) -> None:
    with await notifier.watch([CHANNEL]) as watch:
        await client.publish(CHANNEL, "1")
        started = time.monotonic()
        await watch.wait(5.0)
        assert watch.fired
        assert time.monotonic() - started < 1.0


async def test_a_store_subscribes_only_while_a_scenario_is_watched(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond())
    [a] = await lease(rstore, now=T0 + 1)
    await rstore.complete(a.id, a.lease_token, result_ref=None, result=None, now=T0 + 2)
    assert await rstore.client.pubsub_channels() == []
    assert await rstore.client.pubsub_numpat() == 0
    channel = rstore.key_space.events_channel(scenario.id)
    with await rstore.watch_events(scenario.id) as watch:
        assert await rstore.client.pubsub_channels() == [channel]
        await lease(rstore, now=T0 + 3)
        await watch.wait(5.0)
        assert watch.fired


async def test_the_last_watch_closing_unsubscribes(notifier: Notifier, client: Redis) -> None:
    first = await notifier.watch([CHANNEL])
    second = await notifier.watch([CHANNEL, "scenarist:ready:svc"])
    first.close()
    await asyncio.sleep(0.05)
    assert CHANNEL in await client.pubsub_channels()
    second.close()

    async def unsubscribed() -> bool:
        return await client.pubsub_channels() == []

    await eventually(unsubscribed)
    assert notifier.channels == frozenset()
    await assert_woken_by_publish(notifier, client)


async def test_a_channel_dropped_and_taken_up_at_once_ends_subscribed(
    notifier: Notifier, client: Redis
) -> None:
    """UNSUBSCRIBE and the next SUBSCRIBE reach Redis in that order."""
    for _ in range(5):
        (await notifier.watch([CHANNEL])).close()
        await asyncio.sleep(0)  # the linger (none here) is over: UNSUBSCRIBE is queued
    await assert_woken_by_publish(notifier, client)
    assert await client.pubsub_channels() == [CHANNEL]


async def test_a_channel_lingers_after_its_last_watch(client: Redis) -> None:
    notifier = Notifier(ClientPubSub(client), linger_seconds=30.0)
    try:
        (await notifier.watch([CHANNEL])).close()
        assert notifier.channels == {CHANNEL}
        started = time.monotonic()
        await assert_woken_by_publish(notifier, client)
        assert time.monotonic() - started < 1.0
        assert await client.pubsub_channels() == [CHANNEL]
    finally:
        await notifier.close()


async def test_watches_fire_when_the_connection_comes_back(
    notifier: Notifier, client: Redis
) -> None:
    """A publish may have been missed while disconnected: the watch fires (spuriously
    allowed), and the channel is subscribed again."""
    with await notifier.watch([CHANNEL]) as watch:
        assert not watch.fired
        await client.client_kill_filter(_type="pubsub")
        await watch.wait(5.0)
        assert watch.fired

    async def subscribed_again() -> bool:
        return await client.pubsub_channels() == [CHANNEL]

    with await notifier.watch([CHANNEL]):
        await eventually(subscribed_again)
    await assert_woken_by_publish(notifier, client)
