#!/usr/bin/env python3
"""Server CPU per submitted CreateVideo (3 slides) scenario, read from /proc.

    python benchmarks/submit_cpu.py                        # POST /generate, one at a time
    python benchmarks/submit_cpu.py --mode batch           # POST /generate/batch of 100
    python benchmarks/submit_cpu.py --clients 8            # 8 submitters at once
    python benchmarks/submit_cpu.py --profile profile.txt  # + py-spy on the server

Starts a private redis-server and one `scenarist serve --store redis://... --no-access-log`
(the run_all.py server), submits `--count` scenarios per round with the SDK's asyncio
client after a warm-up, and prints the server's and Redis's CPU time per scenario
(utime + stime from /proc, so other jobs on the machine do not count), median and range
over `--repeat` rounds. With `--profile`, one more round runs under `py-spy record`
(sampling the server, idle time left out) and the share of the samples each part of the
request handling appears in is printed; the collapsed stacks go to the given file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.processes import ManagedProcess  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess, free_port  # noqa: E402
from benchmarks.harness.rss import tree_cpu_seconds  # noqa: E402

from scenarist.worker.client import AsyncScenaristClient, SubmitItem  # noqa: E402

BATCH = 100
WARM_UP = 50
_START_TIMEOUT_S = 60.0
# Parts of a request, by a frame that marks them (inclusive: a sample counts for every
# part its stack passes through). Shares overlap; they do not sum to 100%.
PARTS = {
    "uvicorn + httptools (HTTP parsing, socket writes)": "uvicorn/protocols",
    "Starlette/FastAPI routing and middleware": "starlette/routing.py",
    "FastAPI request handling (body read, dependencies, validation)": "fastapi/routing.py",
    "pydantic validation of the body": "pydantic",
    "scenarist route function (generate)": "scenarist/api/routers/generate",
    "Orchestrator.submit": "(submit (scenarist/service/orchestrator.py",
    "template expansion (Catalog.plan)": "scenarist/core/expand.py",
    "records (build_records, request digest)": "scenarist/service/records.py",
    "Redis encoding of the records (codec)": "scenarist/storage/redis/codec.py",
    "redis-py and hiredis (commands, replies)": "redis/",
    "response JSON (orjson)": "generated_body",
    "asyncio / uvloop event loop": "asyncio/",
}


def start_server(workdir: Path, redis_url: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    args = [sys.executable, "-m", "scenarist", "serve", "--port", str(port)]
    args += ["--store", redis_url, "--no-access-log"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    server = ManagedProcess.spawn("api", args, workdir / "server.log", env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if not server.is_running() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the API server did not start:\n{server.log_tail()}")
        time.sleep(0.05)


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


def profile(url: str, server_pid: int, args: argparse.Namespace) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out: Path = args.profile
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(server_pid), "--format", "raw", "--rate", "500",
         "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches
    asyncio.run(asyncio.wait_for(submit_round(url, args.count * 2, args.mode, args.clients), 300))
    spy.send_signal(subprocess.signal.SIGINT)  # type: ignore[attr-defined]
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
    if not out.exists():
        err = spy.stderr.read().decode() if spy.stderr else ""
        print(f"py-spy wrote no profile (cannot attach here?): {err.strip()[:300]}")
        return
    print_shares(out)


def print_shares(path: Path) -> None:
    """Shares of the busy samples (the event loop's idle wait left out)."""
    busy: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if "select" in leaf or ("_run_once" in leaf and "epoll" in stack):
            continue
        busy[stack] += int(count)
    total = sum(busy.values())
    if not total:
        print("no busy samples")
        return
    print(f"\nprofile: {total} busy samples; share of them passing through:")
    for name, marker in PARTS.items():
        share = sum(n for stack, n in busy.items() if marker in stack) / total
        print(f"  {100 * share:5.1f}%  {name}")
    leaves: Counter[str] = Counter()
    for stack, n in busy.items():
        leaves[stack.rsplit(";", 1)[-1]] += n
    print("\nlargest self time:")
    for leaf, n in leaves.most_common(12):
        print(f"  {100 * n / total:5.1f}%  {leaf}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["single", "batch"], default="single")
    parser.add_argument("--count", type=int, default=300, help="scenarios per round")
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds")
    parser.add_argument("--clients", type=int, default=1, help="submitters at once (single)")
    parser.add_argument("--profile", type=Path, help="also profile with py-spy (raw stacks)")
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
                if args.profile is not None:
                    profile(url, server.pid, args)
            finally:
                server.stop()
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
