"""Wake asyncio waiters from Redis pub/sub, with ONE pub/sub connection per store.

The scripts PUBLISH a one-byte message on `<prefix>:ready:<service>` when a task becomes
ready and on `<prefix>:events:<scenario>` when a scenario gets events. The notifier
pattern-subscribes to both families once (lazily, on the first watch) and fires the
watches of the channel; waiting never polls Redis. When the connection
drops, the notifier opens a new one from its `PubSubSource` (on a cluster: another node)
and subscribes again; watches meanwhile just reach their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scenarist.storage.watch import Watch, WatchHub

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5
SUBSCRIBE_WAIT_SECONDS = 1.0
_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


class PubSubSource(Protocol):
    async def open(self) -> PubSub:
        """A new, unsubscribed pub/sub connection."""

    async def close(self) -> None:
        """Release what `open` created."""


class ClientPubSub:
    """Pub/sub connections of one single-node client."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def open(self) -> PubSub:
        return self._client.pubsub()

    async def close(self) -> None:
        return None


class Notifier:
    def __init__(
        self, client: Redis, patterns: Sequence[str], source: PubSubSource | None = None
    ) -> None:
        self._source = source or ClientPubSub(client)
        self._patterns = tuple(patterns)
        self._watches = WatchHub()
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def watch(self, channels: Sequence[str]) -> Watch:
        """Watch `channels`; fires on the first message on one of them from now on.

        Waits (briefly) for the subscription first, so a message published after this
        returns is not missed; with Redis unreachable the watch simply never fires and its
        waiters reach their timeout."""
        self._start()
        if not self._subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
        return self._watches.watch(channels)

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name="scenarist-notifier")

    async def _read_forever(self) -> None:
        try:
            while True:
                await self._listen_once()
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
        finally:
            await self._source.close()

    async def _listen_once(self) -> None:
        """Subscribe on a fresh connection and dispatch until that connection is lost."""
        try:
            pubsub = await self._source.open()
        except _LOST as exc:
            log.warning("redis pub/sub connection failed, retrying: %s", exc)
            return
        try:
            await pubsub.psubscribe(*self._patterns)
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._dispatch(message)
        except _LOST as exc:
            log.warning("redis pub/sub connection lost, reconnecting: %s", exc)
        finally:
            self._subscribed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "psubscribe":
            if message.get("data") == len(self._patterns):
                self._subscribed.set()
            return
        if kind != "pmessage":
            return
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        self._watches.notify([name])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
