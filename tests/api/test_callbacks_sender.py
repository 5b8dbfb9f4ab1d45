"""The callback sender against an in-memory outbox: what it reads of an answer, how many
deliveries it runs at once, and what it records after each outcome."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest

from scenarist.api.callback_transport import callback_pool
from scenarist.api.callbacks import CallbackSender, Outcome, host_of
from scenarist.core.callback_addresses import CallbackAddressPolicy
from scenarist.core.model import Progress, Scenario, ScenarioStatus
from scenarist.service.policy import RetryPolicy
from tests.api.callback_receivers import WAIT_SECONDS, DripReceiver, HugeBodyReceiver, Receiver

LOOPBACK = CallbackAddressPolicy.from_entries(["127.0.0.1"])
NOW = 1_000.0


class Outbox:
    """The two store calls the sender makes, kept in memory."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.due = list(scenarios)
        self.finished: list[tuple[str, float | None]] = []
        self.claimed_for: list[float] = []

    async def claim_due_callbacks(
        self, *, now: float, limit: int, lease_seconds: float
    ) -> list[Scenario]:
        claimed, self.due = self.due[:limit], self.due[limit:]
        self.claimed_for.append(lease_seconds)
        return claimed

    async def finish_callback(self, scenario_id: str, *, retry_at: float | None) -> None:
        self.finished.append((scenario_id, retry_at))


class CountingBackend(httpcore.AsyncNetworkBackend):
    """The real backend, counting every byte read from its sockets."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.bytes_read = 0

    async def connect_tcp(
        self, host: str, port: int, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        stream = await self.inner.connect_tcp(host, port, **options)
        backend = self
        original_read = stream.read

        async def read(max_bytes: int, timeout: float | None = None) -> bytes:
            data = await original_read(max_bytes, timeout)
            backend.bytes_read += len(data)
            return data

        stream.read = read  # type: ignore[method-assign]
        return stream


def ended(scenario_id: str, url: str) -> Scenario:
    progress = Progress(total=0, by_status={}, by_service={})
    return Scenario(
        id=scenario_id,
        template="CreateVoice",
        params={},
        status=ScenarioStatus.SUCCESS,
        progress=progress,
        created_at=NOW,
        finished_at=NOW,
        callback_url=url,
    )


def sender(outbox: Outbox, pool: httpcore.AsyncConnectionPool, **options: Any) -> CallbackSender:
    return CallbackSender(store=outbox, pool=pool, secret=None, clock=lambda: NOW, **options)  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


async def test_a_huge_answer_is_read_no_further_than_its_head() -> None:
    huge = HugeBodyReceiver().start()
    counting = CountingBackend()
    try:
        async with callback_pool(LOOPBACK, max_connections=1, inner=counting) as pool:
            outcome = await sender(Outbox([]), pool).post(huge.url, b"{}", "s1")
    finally:
        huge.stop()
    assert outcome is Outcome.DELIVERED
    assert counting.bytes_read < 256 * 1024  # of a 400 MiB body


async def test_a_failed_answer_is_read_only_for_a_short_excerpt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge = HugeBodyReceiver()
    huge.answer = lambda conn: conn.sendall(  # type: ignore[method-assign]
        b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000\r\n\r\n" + b"e" * 1_000_000
    )
    huge.start()
    counting = CountingBackend()
    try:
        async with callback_pool(LOOPBACK, max_connections=1, inner=counting) as pool:
            outcome = await sender(Outbox([]), pool).post(huge.url, b"{}", "s1")
    finally:
        huge.stop()
    assert outcome is Outcome.FAILED
    assert counting.bytes_read < 256 * 1024
    assert "e" * 1024 in caplog.text
    assert "e" * 1025 not in caplog.text


async def test_deliveries_run_side_by_side_up_to_the_concurrency() -> None:
    drips = [DripReceiver().start() for _ in range(3)]
    outbox = Outbox([ended(f"s{i}", d.url) for i, d in enumerate(drips)])
    stop = asyncio.Event()
    try:
        async with callback_pool(LOOPBACK, max_connections=8) as pool:
            loop = asyncio.create_task(sender(outbox, pool, concurrency=2, interval=0.01).run(stop))
            assert await asyncio.to_thread(drips[0].requested.wait, WAIT_SECONDS)
            assert await asyncio.to_thread(drips[1].requested.wait, WAIT_SECONDS)
            assert outbox.due == [ended("s2", drips[2].url)]  # no slot: not even claimed
            drips[0].released.set()  # its delivery ends (a broken answer: retried later)
            assert await asyncio.to_thread(drips[2].requested.wait, WAIT_SECONDS)
            stop.set()
            for drip in drips:
                drip.released.set()
            await asyncio.wait_for(loop, WAIT_SECONDS)
    finally:
        for drip in drips:
            drip.stop()


async def test_a_failure_is_retried_with_the_same_backoff_as_before(receiver: Receiver) -> None:
    receiver.failures = 2
    outbox = Outbox([ended("s1", receiver.url)])
    policy = RetryPolicy(base_seconds=1.0)
    async with callback_pool(LOOPBACK, max_connections=1) as pool:
        callbacks = sender(outbox, pool, rng=random.Random(7), retry_policy=policy)
        for _ in range(3):
            await callbacks.deliver_due()
            outbox.due = [ended("s1", receiver.url)]
    expected = random.Random(7)
    first, second = (NOW + policy.delay(n, expected) for n in (1, 2))
    assert outbox.finished == [("s1", first), ("s1", second), ("s1", None)]
    assert [status for _, _, status in receiver.received] == [500, 500, 204]


async def test_it_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.failures = 99
    outbox = Outbox([])
    async with callback_pool(LOOPBACK, max_connections=1) as pool:
        callbacks = sender(outbox, pool, max_attempts=2)
        for _ in range(2):
            outbox.due = [ended("s1", receiver.url)]
            await callbacks.deliver_due()
    assert [retry_at is None for _, retry_at in outbox.finished] == [False, True]


async def test_a_refused_address_is_given_up_at_once(receiver: Receiver) -> None:
    outbox = Outbox([ended("s1", receiver.url)])
    async with callback_pool(CallbackAddressPolicy(), max_connections=1) as pool:
        await sender(outbox, pool).deliver_due()
    assert outbox.finished == [("s1", None)]
    assert receiver.received == []


async def test_an_entry_stays_claimed_well_past_the_deadline(receiver: Receiver) -> None:
    outbox = Outbox([ended("s1", receiver.url)])
    async with callback_pool(LOOPBACK, max_connections=1) as pool:
        await sender(outbox, pool, deadline=100.0, claim_seconds=60.0).deliver_due()
    assert outbox.claimed_for == [200.0]  # no other process may start it meanwhile


class DueOrderOutbox(Outbox):
    """An outbox that, like the stores, hands out due entries oldest first and takes a
    deferred entry back with its new due time."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        super().__init__(scenarios)
        self.due_at = {s.id: NOW + i * 1e-3 for i, s in enumerate(scenarios)}
        self.by_id = {s.id: s for s in scenarios}

    async def claim_due_callbacks(
        self, *, now: float, limit: int, lease_seconds: float
    ) -> list[Scenario]:
        ready = sorted((at, i) for i, at in self.due_at.items() if at <= now + 1)
        claimed = [self.by_id[i] for _, i in ready[:limit]]
        for scenario in claimed:
            del self.due_at[scenario.id]
        return claimed

    async def finish_callback(self, scenario_id: str, *, retry_at: float | None) -> None:
        await super().finish_callback(scenario_id, retry_at=retry_at)
        if retry_at is not None:
            self.due_at[scenario_id] = retry_at + 10  # not due again within this test


async def test_many_callbacks_to_one_slow_host_leave_slots_for_other_hosts(
    receiver: Receiver,
) -> None:
    drip = DripReceiver().start()
    slow = [ended(f"slow{i}", drip.url) for i in range(8)]  # twice the concurrency
    outbox = DueOrderOutbox([*slow, ended("fast", receiver.url)])
    stop = asyncio.Event()
    try:
        async with callback_pool(LOOPBACK, max_connections=8) as pool:
            callbacks = sender(outbox, pool, concurrency=4, per_host=2, deadline=60.0)
            running = asyncio.create_task(callbacks.run(stop))
            arrived = await asyncio.to_thread(receiver.arrived.wait, WAIT_SECONDS)
            assert arrived, "the other host's callback waited for the slow host's"
            assert callbacks.host_load[host_of(drip.url)] == 2
            deferred = {i for i, at in outbox.finished if at is not None}
            assert deferred == {f"slow{i}" for i in range(2, 8)}
            stop.set()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    finally:
        drip.stop()
