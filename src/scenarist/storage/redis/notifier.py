"""Wake asyncio waiters from Redis pub/sub, with ONE pub/sub connection per store.

The scripts PUBLISH a one-byte message on `<prefix>:ready:<service>` when a task becomes
ready and on `<prefix>:events:<scenario>` when a scenario gets events. The notifier
pattern-subscribes to both families once (lazily, on the first wait) and resolves the
futures of the waiters of the channel; waiting never polls Redis. When the connection
drops, redis-py re-subscribes on reconnect; waiters meanwhile just reach their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5


class Notifier:
    def __init__(self, client: Redis, patterns: Sequence[str]) -> None:
        self._client = client
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
        pubsub = self._client.pubsub()
        try:
            await self._subscribe(pubsub)
            while True:
                try:
                    message = await pubsub.get_message(timeout=None)
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    self._subscribed.clear()
                    log.warning("redis pub/sub connection lost, reconnecting: %s", exc)
                    await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                    continue
                if message is not None:
                    self._dispatch(message)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscribe(self, pubsub: PubSub) -> None:
        while True:
            try:
                await pubsub.psubscribe(*self._patterns)
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis pub/sub subscribe failed, retrying: %s", exc)
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)

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
