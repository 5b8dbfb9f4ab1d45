"""A worker token scoped to some services completes a batch after one store read of the
batch's tasks (to check their services), not one read per task."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from scenarist.api.app import create_app
from scenarist.api.deps import AppServices
from tests.api.conftest import SEED_VIDEO, make_settings

WORKER = "scoped-worker-token-0123"  # text-service and image-service only
TOKENS = [
    {"token": "client-token-0123456789", "role": "client"},
    {"token": WORKER, "role": "worker", "services": ["image-service", "text-service"]},
]
CLIENT_AUTH = {"Authorization": "Bearer client-token-0123456789"}
WORKER_AUTH = {"Authorization": f"Bearer {WORKER}"}


def counted(calls: Counter[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return await method(*args, **kwargs)

    return wrapper


async def test_a_scoped_batch_completion_reads_its_tasks_once(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'api.db'}", tokens=TOKENS))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(3):
                created = await client.post("/generate", json=SEED_VIDEO, headers=CLIENT_AUTH)
                assert created.status_code == 201
            leased = await client.post(
                "/queues/text-service/lease", json={"max_tasks": 3}, headers=WORKER_AUTH
            )
            tasks = leased.json()["tasks"]
            assert len(tasks) == 3
            services: AppServices = app.state.services
            store = services.orchestrator.store
            calls: Counter[str] = Counter()
            for name in ("get_task", "get_tasks"):
                setattr(store, name, counted(calls, name, getattr(store, name)))
            items = [{"id": t["id"], "lease_token": t["lease_token"]} for t in tasks]
            batch = await client.post("/tasks/complete", json={"items": items}, headers=WORKER_AUTH)
            assert batch.status_code == 200, batch.text
            assert [o["ok"] for o in batch.json()["outcomes"]] == [True, True, True]
            assert calls == Counter({"get_tasks": 1})
