"""Wake asyncio waiters from Redis pub/sub, with ONE pub/sub connection per store.

The scripts PUBLISH a one-byte message on `<prefix>:ready:<service>` when a task becomes
ready and on `<prefix>:events:<scenario>` when a scenario gets events. The notifier
pattern-subscribes to both families once (lazily, on the first wait) and resolves the
futures of the waiters of the channel; waiting never polls Redis. When the connection
drops, the notifier opens a new one from its `PubSubSource` (on a cluster: another node)
and subscribes again; waiters meanwhile just reach their timeout.
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

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5
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
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def wait(self, channels: Sequence[str], timeout: float) -> None:
        """Return when a message arrives on one of `channels`, or after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        woken: asyncio.Future[None] = loop.create_future()
        for channel in channels:
            self._waiters.setdefault(channel, set()).add(woken)
        try:
            self._start()
            # The first waiter also waits for the subscription, so a publish that follows
            # this call is not missed.
            async with asyncio.timeout_at(deadline):
                await self._subscribed.wait()
                await woken
        except TimeoutError:
            return
        finally:
            self._forget(channels, woken)

    def _forget(self, channels: Sequence[str], woken: asyncio.Future[None]) -> None:
        for channel in channels:
            waiting = self._waiters.get(channel)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiters[channel]

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
        for woken in self._waiters.get(name, ()):
            if not woken.done():
                woken.set_result(None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
