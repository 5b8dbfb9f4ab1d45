"""Wake-ups for long polls without lost notifications.

A caller *watches* first, then checks the store, then waits on the watch. A notification
that lands between the check and the wait is kept by the watch, so the wait returns at
once instead of sleeping until its timeout (the classic check-then-sleep race).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable


class Watch:
    """Registered under some keys (channel names) until closed; fired by the first notify
    of one of them."""

    def __init__(self, hub: WatchHub, keys: tuple[str, ...]) -> None:
        self._hub = hub
        self._keys = keys
        self._fired = asyncio.Event()

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def fire(self) -> None:
        self._fired.set()

    async def wait(self, timeout: float) -> None:
        """Return when notified since the watch began, or after `timeout` seconds."""
        if self._fired.is_set() or timeout <= 0:
            return
        try:
            await asyncio.wait_for(self._fired.wait(), timeout)
        except TimeoutError:
            return

    def close(self) -> None:
        self._hub.forget(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys


class WatchHub:
    """The watches of one process, by key. `on_unwatched` hears of keys whose last watch
    closed (a notifier can stop listening for them)."""

    def __init__(self, on_unwatched: Callable[[list[str]], None] | None = None) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self._on_unwatched = on_unwatched

    def watched(self, key: str) -> bool:
        return key in self._watches

    def watch(self, keys: Iterable[str]) -> Watch:
        watch = Watch(self, tuple(keys))
        for key in watch.keys:
            self._watches.setdefault(key, set()).add(watch)
        return watch

    def notify(self, keys: Iterable[str]) -> None:
        for key in keys:
            for watch in self._watches.get(key, ()):
                watch.fire()

    def forget(self, watch: Watch) -> None:
        unwatched = []
        for key in watch.keys:
            watches = self._watches.get(key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[key]
                    unwatched.append(key)
        if unwatched and self._on_unwatched is not None:
            self._on_unwatched(unwatched)
