#!/usr/bin/env python3
"""One completion that expands a `for_each` group of N instances (default 10,000), through
the service: rendering the N payloads (`service/group_render.py`) and the store's one
transaction (`complete` with the payloads: N inserts, the dependent rewired). SQLite
only: the Redis store does not expand groups yet (decision 55).

    python benchmarks/group_expand_bench.py                  # N = 10000, 5 runs
    python benchmarks/group_expand_bench.py -n 1000 10000 --repeat 5

Uses a temporary file. Prints the median and the spread (min-max) of the whole
completion and of its store part, per N.
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
if str(REPO_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "src"))

from scenarist.core.catalog import parse_catalog  # noqa: E402
from scenarist.service.orchestrator import Orchestrator  # noqa: E402
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


class TimedStore(SqliteStore):
    """Records how long the store's `complete` calls took (the service's part is the
    rest of the completion)."""

    spent = 0.0

    async def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await super().complete(*args, **kwargs)
        finally:
            self.spent += time.perf_counter() - started


async def one_run(directory: Path, n: int) -> tuple[float, float]:
    store = await TimedStore.open(Path(tempfile.mkdtemp(dir=directory)) / "s.db")
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
        return elapsed, store.spent
    finally:
        await store.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'instances':>10}  {'completion (median, min-max)':>30}  {'store part':>30}")
    with tempfile.TemporaryDirectory() as directory:
        for n in args.n:
            runs = [await one_run(Path(directory), n) for _ in range(args.repeat)]
            total, store = [r[0] for r in runs], [r[1] for r in runs]
            print(f"{n:>10}  {spread(total):>30}  {spread(store):>30}")


if __name__ == "__main__":
    asyncio.run(main())
