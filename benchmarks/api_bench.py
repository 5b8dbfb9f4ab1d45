#!/usr/bin/env python3
"""HTTP API benchmark: one `scenarist serve` process (Redis store), load from this process.

    python benchmarks/api_bench.py --quick     # < 60 s
    python benchmarks/api_bench.py             # larger runs

Measures, over loopback:
- submit latency: POST /generate of a CreateVideo scenario (3 slides), one at a time;
- seed PATCH throughput: PATCH /tasks/{id}/status {"status": "success"} on queued tasks
  (claim and finish in one call), several concurrent clients;
- complete throughput: POST /tasks/{id}/complete, one request per leased task;
- lease+complete cycle: POST /queues/{service}/lease (max_tasks=B) then one
  POST /tasks/complete for the batch, several concurrent worker loops.

Starts its own redis-server on a free loopback port and the API server on another, both
stopped by pid at the end. Wide scenarios (many independent tasks) come from a small
benchmark catalog written to a temporary file, so every measured task is leasable at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.processes import ManagedProcess, wait_until_healthy  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess, free_port  # noqa: E402

from scenarist.worker.transport import HttpTransport  # noqa: E402

SERVICE = "bench-service"
WIDE_SIZE = 1000
CATALOG = f"""
services: [text-service, audio-service, image-service, video-service, {SERVICE}]
Wide:
  description: n independent tasks of one service
  params:
    n: {{type: integer, default: 100, minimum: 1, maximum: {WIDE_SIZE}}}
  tasks:
    - id: t
      service: {SERVICE}
      count: "{{{{ n }}}}"
      payload: {{part: "{{{{ index }}}}"}}
"""
_START_TIMEOUT_S = 30.0


def with_video_template(catalog: str) -> str:
    """The packaged catalog plus the benchmark's Wide template, in one file."""
    from importlib import resources

    packaged = resources.files("scenarist").joinpath("scenarios.yml").read_text()
    packaged = "\n".join(line for line in packaged.splitlines() if not line.startswith("services:"))
    return packaged + "\n" + catalog


class Api:
    """The load generator's client: orjson bodies on the SDK's keep-alive transport.

    It shares the two cores with the server it measures; httpx's client spent more CPU per
    request than the server did, so it capped the figures below the server's capacity.
    """

    def __init__(self, url: str, connections: int) -> None:
        self.http = HttpTransport(url, max_connections=connections)

    async def call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        reply = await self.http.request(method, path, orjson.dumps(body), timeout=60.0)
        if reply.status >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status} {reply.text[:300]}")
        return orjson.loads(reply.body)

    async def submit_wide(self, n: int) -> list[str]:
        answer = await self.call("POST", "/generate", {"scenario": "Wide", "n": n})
        return [task["id"] for task in answer["tasks"]]

    async def lease(self, max_tasks: int) -> list[dict[str, Any]]:
        body = {"max_tasks": max_tasks, "lease_seconds": 60}
        tasks: list[dict[str, Any]] = (await self.call("POST", f"/queues/{SERVICE}/lease", body))[
            "tasks"
        ]
        return tasks


async def bench_submit(api: Api, count: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, scenarios/s) of sequential POST /generate of CreateVideo."""
    body = {"scenario": "CreateVideo", "description": "benchmark", "slides_count": 3}
    samples = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        await api.call("POST", "/generate", body)
        samples.append((time.perf_counter() - began) * 1000)
    rate = count / (time.perf_counter() - start)
    return statistics.median(samples), percentile(samples, 0.99), rate


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def fill(api: Api, total: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < total:
        ids += await api.submit_wide(min(WIDE_SIZE, total - len(ids)))
    return ids


async def in_parallel(clients: int, work: Callable[[int], Awaitable[int]]) -> float:
    """Run `clients` loops at once; tasks per second over all of them."""
    start = time.perf_counter()
    done = await asyncio.gather(*(work(i) for i in range(clients)))
    return sum(done) / (time.perf_counter() - start)


async def bench_patch(api: Api, total: int, clients: int) -> float:
    ids = await fill(api, total)

    async def work(index: int) -> int:
        mine = ids[index::clients]
        for task_id in mine:
            await api.call("PATCH", f"/tasks/{task_id}/status", {"status": "success"})
        return len(mine)

    return await in_parallel(clients, work)


async def bench_complete_each(api: Api, total: int, clients: int) -> float:
    await fill(api, total)
    leased: list[dict[str, Any]] = []
    while len(leased) < total:
        leased += await api.lease(min(1000, total - len(leased)))

    async def work(index: int) -> int:
        mine = leased[index::clients]
        for task in mine:
            body = {"lease_token": task["lease_token"], "result_ref": "r"}
            await api.call("POST", f"/tasks/{task['id']}/complete", body)
        return len(mine)

    return await in_parallel(clients, work)


async def bench_cycle(api: Api, total: int, clients: int, batch: int) -> float:
    await fill(api, total)

    async def work(_: int) -> int:
        done = 0
        while True:
            tasks = await api.lease(batch)
            if not tasks:
                return done
            items = [{"id": t["id"], "lease_token": t["lease_token"]} for t in tasks]
            answer = await api.call("POST", "/tasks/complete", {"items": items})
            if not all(outcome["ok"] for outcome in answer["outcomes"]):
                raise RuntimeError("a batch completion was refused")
            done += len(tasks)

    return await in_parallel(clients, work)


def start_server(workdir: Path, redis_url: str) -> tuple[ManagedProcess, str]:
    catalog = workdir / "catalog.yml"
    catalog.write_text(with_video_template(CATALOG))
    port = free_port()
    args = [sys.executable, "-m", "scenarist", "serve", "--port", str(port)]
    args += ["--store", redis_url, "--scenarios", str(catalog)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    server = ManagedProcess.spawn("api", args, workdir / "server.log", env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(server, url, _START_TIMEOUT_S)
    return server, url


async def run(url: str, quick: bool, clients: int, batch: int) -> None:
    sizes = {"submit": 200 if quick else 1000, "each": 3000 if quick else 10_000,
             "cycle": 10_000 if quick else 50_000}  # fmt: skip
    api = Api(url, connections=clients + 2)
    try:
        await bench_submit(api, 20)  # warm-up: imports, template compilation, connections
        p50, p99, rate = await bench_submit(api, sizes["submit"])
        print(f"submit CreateVideo (9 tasks):        p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
              f"{rate:.0f} scenarios/s sequential")  # fmt: skip
        patch = await bench_patch(api, sizes["each"], clients)
        print(f"PATCH status=success, {clients} clients:   {patch:8.0f} tasks/s")
        each = await bench_complete_each(api, sizes["each"], clients)
        print(f"POST complete per task, {clients} clients:  {each:8.0f} tasks/s")
        cycle = await bench_cycle(api, sizes["cycle"], clients, batch)
        print(f"lease+batch complete (batch {batch}), {clients} loops: {cycle:8.0f} tasks/s")
    finally:
        await api.http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 60 s")
    parser.add_argument("--clients", type=int, default=8, help="concurrent request loops")
    parser.add_argument("--batch", type=int, default=100, help="max_tasks per lease")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scenarist-api-bench-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir / "redis").start()
        try:
            server, url = start_server(workdir, redis.url)
            try:
                asyncio.run(asyncio.wait_for(run(url, args.quick, args.clients, args.batch), 600))
            finally:
                server.stop()
        finally:
            redis.stop()


if __name__ == "__main__":
    try:
        main()
    except subprocess.SubprocessError as error:
        sys.exit(f"api_bench: {error}")
