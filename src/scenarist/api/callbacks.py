"""Scenario-end callbacks: a background loop that drains the store's outbox.

When a scenario with a `callback_url` ends, the store puts it in an outbox. This loop
claims due entries (`claim_due_callbacks`, which hides each from other processes for a
while), POSTs a JSON summary signed with HMAC-SHA256 over the exact body bytes
(`X-Scenarist-Signature: sha256=<hex>`), and either drops the entry (2xx) or schedules
another try with exponential backoff. Delivery is at-least-once and never runs on a
request path. Attempt counts live in this process; after a restart counting starts over.

The receivers are chosen by clients, so none of them may hold the loop up or weigh on
the server: deliveries run side by side (up to `concurrency`; a slow receiver holds one
slot, never the loop), each has one deadline for everything from DNS to the status line,
and a response body is never read beyond a short excerpt for the log. Addresses go
through the policy of callback_policy.py; a refused address is given up at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import httpcore

from scenarist.api.callback_transport import PolicyConnectError
from scenarist.api.schemas import ProgressPublic
from scenarist.core.errors import StoreUnavailableError
from scenarist.core.model import Scenario
from scenarist.service.policy import RetryPolicy
from scenarist.storage.base import Store

SIGNATURE_HEADER = "X-Scenarist-Signature"
CLAIM_BATCH = 20
RESPONSE_EXCERPT_BYTES = 1024  # of a failed delivery's body, for the log; never more
TRANSPORT_ERRORS = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    OSError,
)
log = logging.getLogger(__name__)


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def callback_body(scenario: Scenario) -> bytes:
    summary: dict[str, Any] = {
        "event": "scenario.finished",
        "scenario_id": scenario.id,
        "scenario": scenario.template,
        "status": scenario.status.value,
        "progress": ProgressPublic.of(scenario.progress).model_dump(),
        "created_at": scenario.created_at,
        "finished_at": scenario.finished_at,
    }
    return json.dumps(summary, separators=(",", ":"), sort_keys=True).encode()


def host_of(url: str) -> str:
    """The receiver a callback goes to, for the per-host limit: host and port."""
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or parts.scheme}"


class Outcome(Enum):
    DELIVERED = "delivered"
    FAILED = "failed"  # worth another try later
    REFUSED = "refused"  # the address policy refused the host: another try cannot help


@dataclass
class CallbackSender:
    store: Store
    pool: httpcore.AsyncConnectionPool
    secret: bytes | None
    clock: Callable[[], float]
    deadline: float = 10.0  # seconds per delivery, DNS to status line
    concurrency: int = 16
    per_host: int = 2  # deliveries at once to one host: a slow host cannot take every slot
    max_attempts: int = 8
    interval: float = 1.0
    claim_seconds: float = 60.0  # hidden from other processes while one delivers
    retry_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_seconds=1.0))
    rng: random.Random = field(default_factory=random.Random)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    host_load: Counter[str] = field(default_factory=Counter)  # deliveries running per host
    slot_freed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and start deliveries until `stop`; then let the running ones finish (a
        cancellation cancels them: their entries stay claimed and come due again)."""
        try:
            while not stop.is_set():
                claimed = await self.start_due()
                if claimed and len(self.in_flight) < self.concurrency:
                    continue  # more may be due right away
                await self.pause(stop)
            if self.in_flight:
                await asyncio.wait(self.in_flight)
        finally:
            for delivery in self.in_flight:
                delivery.cancel()
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    async def start_due(self) -> int:
        """Claim as many due entries as there are free slots and start delivering them
        (or defer those whose host is at its limit). Returns how many were claimed."""
        free = self.concurrency - len(self.in_flight)
        if free <= 0:
            return 0
        try:
            due = await self.store.claim_due_callbacks(
                now=self.clock(),
                limit=min(free, CLAIM_BATCH),
                # hidden until well after the deadline, so no other process starts the
                # same delivery while this one may still be going on
                lease_seconds=max(self.claim_seconds, 2 * self.deadline),
            )
        except StoreUnavailableError as exc:
            log.warning("callback delivery skipped: %s", exc)
            return 0
        for scenario in due:
            assert scenario.callback_url is not None
            host = host_of(scenario.callback_url)
            if self.host_load[host] >= self.per_host:
                await self.defer(scenario.id)
                continue
            self.host_load[host] += 1
            delivery = asyncio.create_task(self.deliver(scenario))
            self.in_flight.add(delivery)
            delivery.add_done_callback(functools.partial(self.delivery_done, host=host))
        return len(due)

    async def defer(self, scenario_id: str) -> None:
        """Its host already has `per_host` deliveries running: due again after the next
        poll, behind what was due before it (no attempt is counted). Many callbacks to one
        slow receiver so wait their turn instead of taking every slot from other hosts."""
        try:
            await self.store.finish_callback(scenario_id, retry_at=self.clock() + self.interval)
        except StoreUnavailableError as exc:  # stays claimed; due again when the claim ends
            log.warning("callback not deferred: %s", exc)

    def delivery_done(self, delivery: asyncio.Task[None], *, host: str) -> None:
        self.in_flight.discard(delivery)
        self.host_load[host] -= 1
        if self.host_load[host] <= 0:
            del self.host_load[host]
        self.slot_freed.set()
        if not delivery.cancelled() and delivery.exception() is not None:
            log.error("callback delivery crashed", exc_info=delivery.exception())

    async def pause(self, stop: asyncio.Event) -> None:
        """Until the next poll, `stop`, or (when every slot is busy) a slot coming free."""
        self.slot_freed.clear()
        waits = [asyncio.ensure_future(stop.wait())]
        if len(self.in_flight) >= self.concurrency:
            waits.append(asyncio.ensure_future(self.slot_freed.wait()))
        try:
            await asyncio.wait(waits, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def deliver_due(self) -> bool:
        """One round, start to finish: claim what is due and deliver it (tests, tools)."""
        started = await self.start_due()
        if self.in_flight:
            await asyncio.wait(self.in_flight)
        return bool(started)

    async def deliver(self, scenario: Scenario) -> None:
        assert scenario.callback_url is not None
        attempt = self.attempts.get(scenario.id, 0) + 1
        outcome = await self.post(scenario.callback_url, callback_body(scenario), scenario.id)
        try:
            await self.settle(scenario.id, attempt, outcome)
        except StoreUnavailableError as exc:
            # The entry stays claimed; it comes due again when the claim runs out.
            log.warning("callback outcome not recorded: %s", exc)

    async def settle(self, scenario_id: str, attempt: int, outcome: Outcome) -> None:
        if outcome is Outcome.FAILED and attempt < self.max_attempts:
            self.attempts[scenario_id] = attempt
            retry_at = self.clock() + self.retry_policy.delay(attempt, self.rng)
            await self.store.finish_callback(scenario_id, retry_at=retry_at)
            return
        if outcome is Outcome.FAILED:
            log.error(
                "giving up on callback after %d attempts",
                attempt,
                extra={"scenario_id": scenario_id},
            )
        self.attempts.pop(scenario_id, None)
        await self.store.finish_callback(scenario_id, retry_at=None)

    async def post(self, url: str, body: bytes, scenario_id: str) -> Outcome:
        headers: list[tuple[bytes | str, bytes | str]] = [
            ("Content-Type", "application/json"),
            ("User-Agent", "scenarist-callback"),
            ("X-Scenarist-Event", "scenario.finished"),
            ("X-Scenarist-Delivery", scenario_id),
        ]
        if self.secret is not None:
            headers.append((SIGNATURE_HEADER, sign(self.secret, body)))
        context = {"scenario_id": scenario_id}
        try:
            async with (
                asyncio.timeout(self.deadline),
                self.pool.stream("POST", url, headers=headers, content=body) as response,
            ):
                if 200 <= response.status < 300:
                    return Outcome.DELIVERED
                excerpt = await read_at_most(response, RESPONSE_EXCERPT_BYTES)
        except PolicyConnectError as exc:
            log.error("callback refused, not retried: %s", exc, extra=context)
            return Outcome.REFUSED
        except TimeoutError:
            log.warning("callback got no answer within %gs", self.deadline, extra=context)
            return Outcome.FAILED
        except TRANSPORT_ERRORS as exc:
            log.warning("callback failed: %r", exc, extra=context)
            return Outcome.FAILED
        log.warning(
            "callback answered %d: %s",
            response.status,
            excerpt.decode("utf-8", "replace"),
            extra=context,
        )
        return Outcome.FAILED


async def read_at_most(response: httpcore.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the body; the rest is never read (closing the response
    closes the connection instead of draining it)."""
    excerpt = b""
    async for chunk in response.aiter_stream():
        excerpt += chunk[: limit - len(excerpt)]
        if len(excerpt) >= limit:
            break
    return excerpt
