#!/usr/bin/env python3
"""Server CPU per submitted CreateVideo (3 slides) scenario, read from /proc.

    python benchmarks/submit_cpu.py                        # POST /generate, one at a time
    python benchmarks/submit_cpu.py --mode batch           # POST /generate/batch of 100
    python benchmarks/submit_cpu.py --clients 8            # 8 submitters at once
    python benchmarks/submit_cpu.py --profile submit.prof  # + cProfile shares

Starts a private redis-server and one `scenarist serve --store redis://... --no-access-log`
(the run_all.py server), submits `--count` scenarios per round with the SDK's asyncio
client after a warm-up, and prints the server's and Redis's CPU time per scenario
(utime + stime from /proc, so other jobs on the machine do not count), median and range
over `--repeat` rounds. With `--profile`, one more server runs a round under cProfile
with a CPU clock (profiled_serve.py) and the share of each part of the request handling
in the event loop's CPU time is printed (the statistics go to the given file; read them
with `python -m pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.processes import ManagedProcess, wait_until_healthy  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess, free_port  # noqa: E402
from benchmarks.harness.rss import tree_cpu_seconds  # noqa: E402

from scenarist.worker.client import AsyncScenaristClient, SubmitItem  # noqa: E402

BATCH = 100
WARM_UP = 50
_START_TIMEOUT_S = 60.0
# Parts of a request by the function that does them; cumulative CPU time, so nested parts
# are included in their parents (the shares overlap and do not sum to 100%).
PARTS = {
    "the whole ASGI app (middleware, routing, endpoint)": "applications.py:*(__call__)",
    "  middleware stack (metrics, body guard, errors)": "request_metrics.py:*(__call__)",
    "  route matching": "routing.py:*(_match)",
    "  FastAPI dependencies and parameters": "utils.py:*(solve_dependencies)",
    "    header and query parameters": "utils.py:*(request_params_to_args)",
    "    body validation": "utils.py:*(request_body_to_args)",
    "  the endpoint (generate)": "generate.py:*(generate)",
    "    Orchestrator.submit": "orchestrator.py:*(submit)",
    "      template expansion (Catalog.plan)": "catalog.py:*(plan)",
    "      records (build_records)": "records.py:*(build_records)",
    "      Redis records encoding (Submitter._run_shard)": "submit.py:*(_run_shard)",
    "Redis calls sent (script corker: redis-py, hiredis)": "scripts.py:*(_send)",
}


def start_server(
    workdir: Path, redis_url: str, *, profile_to: Path | None = None
) -> tuple[ManagedProcess, str]:
    port = free_port()
    launcher = ["-m", "scenarist"]
    if profile_to is not None:
        launcher = [str(REPO_ROOT / "benchmarks" / "profiled_serve.py"), str(profile_to)]
    args = [sys.executable, *launcher, "serve", "--port", str(port)]
    args += ["--store", redis_url, "--no-access-log"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    server = ManagedProcess.spawn("api", args, workdir / "server.log", env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(server, url, _START_TIMEOUT_S)
    return server, url


def params(n: int) -> dict[str, object]:
    return {"description": f"A video about cats, number {n}", "slides_count": 3}


async def submit_round(url: str, count: int, mode: str, clients: int) -> None:
    async with AsyncScenaristClient(url, max_connections=clients) as client:
        if mode == "batch":
            for start in range(0, count, BATCH):
                items = [SubmitItem("CreateVideo", params(n)) for n in range(start, start + BATCH)]
                outcomes = await client.submit_many(items[: count - start])
                assert all(o["status"] == 201 for o in outcomes), outcomes[:3]
            return

        async def loop(first: int) -> None:
            for n in range(first, count, clients):
                await client.submit("CreateVideo", params(n))

        await asyncio.gather(*(loop(i) for i in range(clients)))


def measure(url: str, pids: tuple[int, int], args: argparse.Namespace) -> tuple[float, float]:
    server_before, redis_before = (tree_cpu_seconds([pid]) for pid in pids)
    asyncio.run(asyncio.wait_for(submit_round(url, args.count, args.mode, args.clients), 300))
    server_after, redis_after = (tree_cpu_seconds([pid]) for pid in pids)
    per = 1000 / args.count
    return (server_after - server_before) * per, (redis_after - redis_before) * per


def profile(workdir: Path, redis_url: str, args: argparse.Namespace) -> None:
    """One more server, under cProfile with a CPU clock (profiled_serve.py): a warm-up,
    the same round as measured, then the shares of its parts in the busy CPU time."""
    out: Path = args.profile
    server, url = start_server(workdir, redis_url, profile_to=out)
    try:
        asyncio.run(submit_round(url, WARM_UP, args.mode, args.clients))
        asyncio.run(asyncio.wait_for(submit_round(url, args.count, args.mode, args.clients), 300))
    finally:
        server.stop()
    print_shares(out)


def print_shares(path: Path) -> None:
    stats = pstats.Stats(str(path))
    cumulative = {
        f"{file.rsplit('/', 1)[-1]}:*({name})": entry[3]
        for (file, _line, name), entry in stats.stats.items()  # type: ignore[attr-defined]
    }
    loop = sum(t for key, t in cumulative.items() if key.endswith("runners.py:*(run)"))
    print(f"\nprofile (cProfile, CPU clock; {loop:.2f} s in the event loop, start-up excluded):")
    for name, marker in PARTS.items():
        found = sum(t for key, t in cumulative.items() if key.endswith(marker))
        print(f"  {100 * found / loop:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["single", "batch"], default="single")
    parser.add_argument("--count", type=int, default=300, help="scenarios per round")
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds")
    parser.add_argument("--clients", type=int, default=1, help="submitters at once (single)")
    parser.add_argument("--profile", type=Path, help="also profile a round (cProfile file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scenarist-submit-cpu-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir / "redis").start()
        try:
            server, url = start_server(workdir, redis.url)
            try:
                pids = (server.pid, redis.pid)
                asyncio.run(submit_round(url, WARM_UP, args.mode, args.clients))
                rounds = [measure(url, pids, args) for _ in range(args.repeat)]
                server_ms = [r[0] for r in rounds]
                redis_ms = [r[1] for r in rounds]
                print(f"mode {args.mode}, {args.clients} client(s), {args.count} scenarios x "
                      f"{args.repeat} rounds; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
                for name, values in (("server", server_ms), ("redis", redis_ms)):
                    print(f"{name} CPU per scenario: median {statistics.median(values):.3f} ms "
                          f"(range {min(values):.3f}-{max(values):.3f})")  # fmt: skip
            finally:
                server.stop()
            if args.profile is not None:
                profile(workdir, redis.url, args)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
