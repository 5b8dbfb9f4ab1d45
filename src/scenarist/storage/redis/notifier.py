"""Wake asyncio waiters from Redis pub/sub, with ONE pub/sub connection per store.

The scripts PUBLISH a one-byte message on `<prefix>:ready:<service>` when a task becomes
ready and on `<prefix>:events:<scenario>` when a scenario gets events. The notifier
SUBSCRIBEs to a channel only while some watch needs it (and for a short linger after the
last one closes, so a stream follower that re-watches after every read keeps its
subscription): a process that watches nothing receives nothing, however busy the store.
A watch is returned once Redis has confirmed its channels' subscription, so a message
published after that reaches it; waiting never polls Redis.

Subscribe and unsubscribe commands go out in the order they were decided, from one
sender, and each channel's confirmations are matched to its SUBSCRIBEs oldest first, so
a channel dropped and taken up again ends subscribed. When the connection drops, the
notifier opens a new one from its `PubSubSource` (on a cluster: another node),
subscribes to every channel still needed and fires those channels' watches once
confirmed: a message may have been published meanwhile, and spurious fires are allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scenarist.storage.watch import Watch, WatchHub

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5
SUBSCRIBE_WAIT_SECONDS = 1.0
LINGER_SECONDS = 5.0
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
    def __init__(self, source: PubSubSource, *, linger_seconds: float = LINGER_SECONDS) -> None:
        self._source = source
        self._linger_seconds = linger_seconds
        self._watches = WatchHub(on_unwatched=self._unwatched)
        # Channels subscribed (or being subscribed): done once Redis confirmed it.
        self._subscribed: dict[str, asyncio.Future[None]] = {}
        # Per channel, the SUBSCRIBEs sent on this connection and not confirmed yet.
        self._unconfirmed: dict[str, deque[asyncio.Future[None]]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._commands: deque[tuple[str, tuple[str, ...]]] = deque()
        self._pubsub: PubSub | None = None
        self._sender: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def watch(self, channels: Sequence[str]) -> Watch:
        """Watch `channels`; fires on the first message on one of them from now on.

        Waits (briefly) for the subscription first, so a message published after this
        returns is not missed; with Redis unreachable the watch fires once the connection
        is back, and its waiters meanwhile reach their timeout."""
        self._start()
        watch = self._watches.watch(channels)
        try:
            self._subscribe([ch for ch in watch.keys if ch not in self._subscribed])
            for channel in watch.keys:
                if (handle := self._lingering.pop(channel, None)) is not None:
                    handle.cancel()
            pending = [self._subscribed[ch] for ch in watch.keys if not self._subscribed[ch].done()]
            if pending:
                await asyncio.wait(pending, timeout=SUBSCRIBE_WAIT_SECONDS)
        except BaseException:
            watch.close()
            raise
        return watch

    @property
    def channels(self) -> frozenset[str]:
        """The channels subscribed now or being subscribed."""
        return frozenset(self._subscribed)

    def _subscribe(self, channels: list[str]) -> None:
        if not channels:
            return
        loop = asyncio.get_running_loop()
        for channel in channels:
            self._subscribed[channel] = loop.create_future()
        if self._pubsub is not None:  # else the reader subscribes once it is connected
            self._send("SUBSCRIBE", channels)

    def _unwatched(self, channels: Iterable[str]) -> None:
        """The last watch of `channels` closed: drop them after the linger."""
        loop = asyncio.get_running_loop()
        for channel in channels:
            if channel in self._subscribed and channel not in self._lingering:
                self._lingering[channel] = loop.call_later(
                    self._linger_seconds, self._drop, channel
                )

    def _drop(self, channel: str) -> None:
        self._lingering.pop(channel, None)
        if self._watches.watched(channel) or self._subscribed.pop(channel, None) is None:
            return
        if self._pubsub is not None:
            self._send("UNSUBSCRIBE", [channel])

    def _send(self, command: str, channels: list[str]) -> None:
        if command == "SUBSCRIBE":
            for channel in channels:
                self._unconfirmed.setdefault(channel, deque()).append(self._subscribed[channel])
        self._commands.append((command, tuple(channels)))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all(), name="scenarist-subscriber")

    async def _send_all(self) -> None:
        """One sender, so commands reach Redis in the order they were decided."""
        while self._commands and (pubsub := self._pubsub) is not None:
            command, channels = self._commands.popleft()
            try:
                # redis-py remembers these, and subscribes again when it reconnects the
                # connection on its own (see _dispatch).
                if command == "SUBSCRIBE":
                    await pubsub.subscribe(*channels)
                else:
                    await pubsub.unsubscribe(*channels)
            except _LOST:
                return  # the reader reconnects and subscribes to what is still needed

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
            await pubsub.connect()  # type: ignore[no-untyped-call]
        except _LOST as exc:
            log.warning("redis pub/sub connection failed, retrying: %s", exc)
            return
        try:
            self._resubscribe(pubsub)
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._dispatch(message)
        except _LOST as exc:
            log.warning("redis pub/sub connection lost, reconnecting: %s", exc)
        finally:
            self._pubsub = None
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _resubscribe(self, pubsub: PubSub) -> None:
        """Start a new connection with every channel still needed. The watches of those
        confirmed on a lost connection fire once it is confirmed again: what was
        published while disconnected is unknown."""
        self._pubsub = pubsub
        self._commands.clear()
        self._unconfirmed.clear()
        loop = asyncio.get_running_loop()
        for channel, confirmed in list(self._subscribed.items()):
            if confirmed.done():
                self._subscribed[channel] = loop.create_future()
                self._subscribed[channel].add_done_callback(functools.partial(self._fire, channel))
        if self._subscribed:
            self._send("SUBSCRIBE", list(self._subscribed))

    def _fire(self, channel: str, _: object) -> None:
        self._watches.notify([channel])

    def _dispatch(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "message":
            self._watches.notify([name])
        elif kind == "subscribe":
            self._confirm(name)

    def _confirm(self, channel: str) -> None:
        waiting = self._unconfirmed.get(channel)
        if not waiting:
            # Not asked for on this connection: redis-py reconnected by itself and
            # subscribed again. What was published in between is unknown.
            self._watches.notify([channel])
            return
        confirmed = waiting.popleft()
        if not waiting:
            del self._unconfirmed[channel]
        if not confirmed.done():
            confirmed.set_result(None)

    async def close(self) -> None:
        for handle in self._lingering.values():
            handle.cancel()
        self._lingering.clear()
        for task in (self._sender, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sender = self._reader = None
