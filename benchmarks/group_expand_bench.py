#!/usr/bin/env python3
"""One completion that expands a `for_each` group of N instances (default 10,000), through
the service: rendering the N payloads (`service/group_render.py`) and the store's one
transaction or script (`complete` with the payloads: N instances created, the dependent
rewired), on SQLite and on Redis (complete.lua: one script call).

    python benchmarks/group_expand_bench.py                  # N = 10000, 5 runs, both
    python benchmarks/group_expand_bench.py -n 1000 10000 --repeat 5 --store redis

SQLite uses a temporary file; Redis its own redis-server on a free loopback port
(stopped by pid at the end). Prints the median and the spread (min-max) of the whole
completion and of its store part, per store and N.
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

from scenarist.core.catalog import parse_catalog  # noqa: E402
from scenarist.service.orchestrator import Orchestrator  # noqa: E402
from scenarist.storage.base import Store  # noqa: E402
from scenarist.storage.redis.store import RedisStore  # noqa: E402
from scenarist.storage.sqlite.store import SqliteStore  # noqa: E402

CATALOG = """
Storyboard:
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      max_items: 100000
      payload: {prompt: "{{ item.prompt }}", n: "{{ index }}", of: "{{ count }}"}
    - id: cut
      service: video-service
      depends_on: [shot]
"""


class Timer:
    """Records how long the store's `complete` calls took (the service's part is the
    rest of the completion)."""

    spent = 0.0

    async def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await super().complete(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.spent += time.perf_counter() - started


class TimedSqlite(Timer, SqliteStore):
    pass


class TimedRedis(Timer, RedisStore):
    pass


async def open_store(kind: str, directory: Path, redis_url: str, run: int) -> Store:
    if kind == "sqlite":
        return await TimedSqlite.open(Path(tempfile.mkdtemp(dir=directory)) / "s.db")
    # A fresh key prefix per run: nothing of an earlier run is in the way.
    return await TimedRedis.open(redis_url, key_prefix=f"bench{run}")


async def one_run(store: Store, n: int) -> tuple[float, float]:
    try:
        service = Orchestrator(store, parse_catalog(CATALOG, "bench.yml"))
        await service.submit("Storyboard", {})
        [outline] = await service.lease(["text-service"], max_tasks=1)
        shots = {"shots": [{"prompt": f"shot {i}"} for i in range(n)]}
        started = time.perf_counter()
        await service.complete(outline.id, outline.lease_token, result_ref=None, result=shots)
        elapsed = time.perf_counter() - started
        tasks = await store.list_tasks(outline.scenario_id)
        assert len(tasks) == n + 2, len(tasks)
        return elapsed, store.spent  # type: ignore[attr-defined]
    finally:
        await store.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--store", choices=["sqlite", "redis"], nargs="+", default=["sqlite", "redis"]
    )
    args = parser.parse_args()
    print(
        f"{'store':>7}  {'instances':>10}  {'completion (median, min-max)':>30}  {'store part':>30}"
    )
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisProcess(Path(directory) / "redis").start() if "redis" in args.store else None
        try:
            url = redis.url if redis else ""
            run = 0
            for kind in args.store:
                for n in args.n:
                    runs = []
                    for _ in range(args.repeat):
                        run += 1
                        store = await open_store(kind, Path(directory), url, run)
                        runs.append(await one_run(store, n))
                    total, part = [r[0] for r in runs], [r[1] for r in runs]
                    print(f"{kind:>7}  {n:>10}  {spread(total):>30}  {spread(part):>30}")
        finally:
            if redis is not None:
                redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
