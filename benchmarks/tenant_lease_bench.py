#!/usr/bin/env python3
"""What tenants cost a lease (decision 79): a backlog of queued tasks split between two
tenants, then leases of one task, with and without the catalog's tenants, on SQLite and
on one Redis node. Without tenants the walk is the plain ready order; with them, one
stream per (service, tenant) and the passes read and written in the lease's step.

    python benchmarks/tenant_lease_bench.py                      # 20,000 queued, both stores
    python benchmarks/tenant_lease_bench.py --queued 5000 --leases 200 --repeat 5 --store redis

SQLite uses a temporary file; Redis its own redis-server on a free loopback port
(stopped by pid at the end). Prints the median and the spread (min-max) of the mean time
per lease over the rounds, per store, with and without tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT / "src", REPO_ROOT):  # run as a script: scenarist and benchmarks.*
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.harness.redis_proc import RedisProcess  # noqa: E402

from scenarist.core.model import ScenarioPlan, TaskSpec  # noqa: E402
from scenarist.core.tenants import NO_TENANTS, TenantPolicy, Tenants  # noqa: E402
from scenarist.service.records import build_records, new_scenario_id  # noqa: E402
from scenarist.storage.base import Store  # noqa: E402
from scenarist.storage.redis.store import RedisStore  # noqa: E402
from scenarist.storage.sqlite.store import SqliteStore  # noqa: E402

TENANTS: Tenants = {"a": TenantPolicy(), "b": TenantPolicy(weight=2.0)}
PER_SCENARIO = 1000
T0 = 1_700_000_000.0


def scenario_plan() -> ScenarioPlan:
    tasks = tuple(
        TaskSpec(
            name=f"t{i}", template_id="t", index=i + 1, service="svc", payload={},
            depends_on=(), level=0, max_attempts=3, timeout_seconds=60.0,
        )
        for i in range(PER_SCENARIO)
    )  # fmt: skip
    return ScenarioPlan(template="Flat", params={}, tasks=tasks)


async def fill(store: Store, queued: int) -> None:
    the_plan = scenario_plan()
    for k in range(max(1, queued // PER_SCENARIO)):
        scenario, tasks = build_records(
            the_plan, scenario_id=new_scenario_id(), now=T0, tenant="a" if k % 2 else "b"
        )
        await store.create_scenario(scenario, tasks)


async def per_lease(store: Store, leases: int, tenants: Tenants, start: float) -> float:
    began = time.perf_counter()
    for i in range(leases):
        await store.lease(
            "svc", max_tasks=1, lease_seconds=None, worker_id="w", now=start + i,
            nonce=f"n{start + i:.0f}", tenants=tenants,
        )  # fmt: skip
    return (time.perf_counter() - began) / leases


async def measure(store: Store, args: argparse.Namespace) -> dict[str, list[float]]:
    await fill(store, args.queued)
    rounds: dict[str, list[float]] = {"without tenants": [], "with tenants": []}
    clock = T0 + 1
    for _ in range(args.repeat):  # alternating, so a busy moment does not land on one
        for name, tenants in (("without tenants", NO_TENANTS), ("with tenants", TENANTS)):
            rounds[name].append(await per_lease(store, args.leases, tenants, clock))
            clock += args.leases
    return rounds


def shown(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.3f} ms ({min(ms):.3f}-{max(ms):.3f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=20_000, help="queued tasks, two tenants")
    parser.add_argument("--leases", type=int, default=300, help="leases of one task per round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=["sqlite", "redis", "both"], default="both")
    args = parser.parse_args()
    if min(args.queued, args.leases, args.repeat) < 1:
        parser.error("--queued, --leases and --repeat must be at least 1")
    print(f"{args.queued} queued tasks of two tenants, {args.leases} leases of one per round")
    print("| store | without tenants | with tenants |\n| --- | --- | --- |")
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            store = await SqliteStore.open(Path(tmp) / "bench.db")
            try:
                rounds = await measure(store, args)
            finally:
                await store.close()
        print(f"| SQLite | {shown(rounds['without tenants'])} | {shown(rounds['with tenants'])} |")
    if args.store in ("redis", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            redis = RedisProcess(Path(tmp)).start()
            try:
                store = await RedisStore.open(redis.url)
                try:
                    rounds = await measure(store, args)
                finally:
                    await store.close()
            finally:
                redis.stop()
        print(f"| Redis | {shown(rounds['without tenants'])} | {shown(rounds['with tenants'])} |")


if __name__ == "__main__":
    asyncio.run(main())
