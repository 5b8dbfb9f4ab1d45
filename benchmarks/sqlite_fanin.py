#!/usr/bin/env python3
"""Cost of a wide fan-in on the SQLite store: one scenario of P root tasks joined by one
task; time to lease and complete every root (the join is released by the last one).

    python benchmarks/sqlite_fanin.py            # P = 1000
    python benchmarks/sqlite_fanin.py --parents 300 1000 3000

Uses a temporary file. Times are wall clock on this machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "src"))

from scenarist.core.model import ScenarioPlan, TaskSpec  # noqa: E402
from scenarist.service.records import build_records, new_scenario_id  # noqa: E402
from scenarist.storage.sqlite.store import SqliteStore  # noqa: E402

T0 = 1_700_000_000.0


def join_plan(parents: int, service: str) -> ScenarioPlan:
    def spec(name: str, deps: tuple[str, ...], level: int) -> TaskSpec:
        return TaskSpec(name, name, None, service, {}, deps, level, 1, 60.0)

    roots = [spec(f"p_{i}", (), 0) for i in range(parents)]
    join = spec("join", tuple(r.name for r in roots), 1)
    return ScenarioPlan(template="FanIn", params={}, tasks=(*roots, join))


async def complete_all_parents(store: SqliteStore, parents: int) -> tuple[float, bool]:
    """Seconds spent completing the parents (leases excluded), and whether the join was
    released by the last completion."""
    service = f"fanin-{parents}"  # one queue per run: an earlier run's join is never leased
    scenario, tasks = build_records(
        join_plan(parents, service), scenario_id=new_scenario_id(), now=T0, idempotency_key=None,
        callback_url=None,
    )  # fmt: skip
    await store.create_scenario(scenario, tasks)
    leased = await store.lease(
        service, max_tasks=parents, lease_seconds=600, worker_id="bench", now=T0, nonce="n"
    )
    assert len(leased) == parents, len(leased)
    started = time.perf_counter()
    released: tuple[str, ...] = ()
    for task in leased:
        done = await store.complete(task.id, task.lease_token, result_ref="r", result=None, now=T0)
        released += done.released
    elapsed = time.perf_counter() - started
    return elapsed, released == (f"{scenario.id}:join",)


async def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "fanin.db")
        try:
            for parents in sizes:
                elapsed, released_once = await complete_all_parents(store, parents)
                print(
                    f"parents={parents:>6}  total={elapsed * 1000:9.1f} ms  "
                    f"per completion={elapsed / parents * 1e6:8.1f} us  "
                    f"join released once={released_once}"
                )
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parents", type=int, nargs="+", default=[1000])
    asyncio.run(main(parser.parse_args().parents))
