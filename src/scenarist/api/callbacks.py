"""Scenario-end callbacks: a background loop that drains the store's outbox.

When a scenario with a `callback_url` ends, the store puts it in an outbox. This loop
claims due entries (`claim_due_callbacks`, which hides each from other processes for a
while), POSTs a JSON summary signed with HMAC-SHA256 over the exact body bytes
(`X-Scenarist-Signature: sha256=<hex>`), and either drops the entry (2xx) or schedules
another try with exponential backoff. Delivery is at-least-once and never runs on a
request path. Attempt counts live in this process; after a restart counting starts over.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from scenarist.api.schemas import ProgressPublic
from scenarist.core.errors import StoreUnavailableError
from scenarist.core.model import Scenario
from scenarist.service.policy import RetryPolicy
from scenarist.storage.base import Store

SIGNATURE_HEADER = "X-Scenarist-Signature"
CLAIM_BATCH = 20
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


@dataclass
class CallbackSender:
    store: Store
    client: httpx.AsyncClient
    secret: bytes | None
    clock: Callable[[], float]
    max_attempts: int = 8
    interval: float = 1.0
    claim_seconds: float = 60.0  # hidden from other processes while one delivers
    retry_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_seconds=1.0))
    rng: random.Random = field(default_factory=random.Random)
    attempts: dict[str, int] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered_any = await self.deliver_due()
            except StoreUnavailableError as exc:
                log.warning("callback delivery skipped: %s", exc)
                delivered_any = False
            if delivered_any:
                continue  # more may be due right away
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue

    async def deliver_due(self) -> bool:
        due = await self.store.claim_due_callbacks(
            now=self.clock(), limit=CLAIM_BATCH, lease_seconds=self.claim_seconds
        )
        if due:
            await asyncio.gather(*(self.deliver(scenario) for scenario in due))
        return bool(due)

    async def deliver(self, scenario: Scenario) -> None:
        assert scenario.callback_url is not None
        attempt = self.attempts.get(scenario.id, 0) + 1
        ok = await self.post(scenario.callback_url, callback_body(scenario), scenario.id)
        if ok or attempt >= self.max_attempts:
            if not ok:
                log.error(
                    "giving up on callback after %d attempts",
                    attempt,
                    extra={"scenario_id": scenario.id},
                )
            self.attempts.pop(scenario.id, None)
            await self.store.finish_callback(scenario.id, retry_at=None)
            return
        self.attempts[scenario.id] = attempt
        retry_at = self.clock() + self.retry_policy.delay(attempt, self.rng)
        await self.store.finish_callback(scenario.id, retry_at=retry_at)

    async def post(self, url: str, body: bytes, scenario_id: str) -> bool:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "scenarist-callback",
            "X-Scenarist-Event": "scenario.finished",
            "X-Scenarist-Delivery": scenario_id,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("callback failed: %s", exc, extra={"scenario_id": scenario_id})
            return False
        if response.is_success:
            return True
        log.warning(
            "callback answered %d", response.status_code, extra={"scenario_id": scenario_id}
        )
        return False
