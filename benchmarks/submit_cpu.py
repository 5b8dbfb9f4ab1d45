#!/usr/bin/env python3
"""Server CPU per submitted CreateVideo (3 slides) scenario, read from /proc.

    python benchmarks/submit_cpu.py                        # POST /generate, one at a time
    python benchmarks/submit_cpu.py --mode batch           # POST /generate/batch of 100
    python benchmarks/submit_cpu.py --clients 8            # 8 submitters at once
    python benchmarks/submit_cpu.py --store sqlite         # the SQLite store
    python benchmarks/submit_cpu.py --src OLD/src --src src   # A/B, rounds interleaved
    python benchmarks/submit_cpu.py --same-params          # every scenario alike
    python benchmarks/submit_cpu.py --profile submit.prof  # + cProfile shares

Starts a private redis-server (or a SQLite file per server) and one `scenarist serve
--no-access-log` (the run_all.py server) per `--src` tree (default: this checkout's),
submits `--count` scenarios per round with the SDK's asyncio client after a warm-up, and
prints the server's (and Redis's) CPU time per scenario (utime + stime from /proc, so
other jobs on the machine do not count), median and range over `--repeat` rounds. With
several `--src`, the servers run side by side and their rounds alternate, so a change in
the machine's load falls on every side alike.

With `--profile`, one more server per tree runs a round under cProfile with a CPU clock
(profiled_serve.py), switched on after its warm-up: the profile holds that round alone.
It prints the Python function calls per scenario (deterministic, unlike any time) and the
share of each part of the request handling in the profiled CPU time (the statistics go to
the given file, suffixed per tree when there are several; read them with
`python -m pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
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
PARTS: dict[str, tuple[str, ...]] = {
    "the whole ASGI app (middleware, routing, endpoint)": ("fastapi/applications.py:*(__call__)",),
    "  route matching": ("starlette/routing.py:*(_match)", "fastapi/routing.py:*(_match)"),
    "  FastAPI dependencies and parameters": ("utils.py:*(solve_dependencies)",),
    "    header and query parameters": ("utils.py:*(request_params_to_args)",),
    "    body validation": ("utils.py:*(request_body_to_args)",),
    "  the lean /generate handler (decision 74)": ("generate.py:*(handle_generate)",),
    "    its body validation": ("generate.py:*(parse_body)",),
    "  the endpoint (submit and answer)": (
        "routers/generate.py:*(generate)",
        "routers/generate.py:*(submit_and_answer)",
    ),
    "    Orchestrator.submit": ("orchestrator.py:*(submit)",),
    "      template expansion (Catalog.plan)": ("catalog.py:*(plan)",),
    "      records (build_records)": ("records.py:*(build_records)",),
    "      Redis records encoding (Submitter._run_shard)": ("submit.py:*(_run_shard)",),
    "      SQLite insert (SqliteStore.create_scenario)": ("sqlite/store.py:*(create_scenario)",),
    "    Redis calls sent (script corker: redis-py, hiredis)": ("redis/scripts.py:*(_send)",),
}


@dataclass
class Server:
    src: Path
    process: ManagedProcess
    url: str


def start_server(
    workdir: Path, src: Path, store_url: str, *, profile_to: Path | None = None
) -> Server:
    port = free_port()
    launcher = ["-m", "scenarist"]
    if profile_to is not None:
        launcher = [str(REPO_ROOT / "benchmarks" / "profiled_serve.py"), str(profile_to)]
    args = [sys.executable, *launcher, "serve", "--port", str(port)]
    args += ["--store", store_url, "--no-access-log"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    log = workdir / f"server-{port}.log"
    process = ManagedProcess.spawn("api", args, log, env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, url, _START_TIMEOUT_S)
    return Server(src, process, url)


def params(n: int | None) -> dict[str, object]:
    """Scenario n's own description; None: the one every scenario shares (--same-params,
    the case an expansion cache would serve: decision 75)."""
    number = "" if n is None else f", number {n}"
    return {"description": f"A video about cats{number}", "slides_count": 3}


async def submit_round(url: str, count: int, args: argparse.Namespace) -> None:
    mode, clients, same = args.mode, args.clients, args.same_params
    async with AsyncScenaristClient(url, max_connections=clients) as client:
        if mode == "batch":
            for start in range(0, count, BATCH):
                items = [
                    SubmitItem("CreateVideo", params(None if same else n))
                    for n in range(start, start + BATCH)
                ]
                outcomes = await client.submit_many(items[: count - start])
                assert all(o["status"] == 201 for o in outcomes), outcomes[:3]
            return

        async def loop(first: int) -> None:
            for n in range(first, count, clients):
                await client.submit("CreateVideo", params(None if same else n))

        await asyncio.gather(*(loop(i) for i in range(clients)))


def measure(server: Server, redis_pid: int | None, args: argparse.Namespace) -> list[float]:
    """[server ms, redis ms (when there is a Redis)] of CPU per scenario for one round."""
    pids = [server.process.pid] + ([] if redis_pid is None else [redis_pid])
    before = [tree_cpu_seconds([pid]) for pid in pids]
    asyncio.run(asyncio.wait_for(submit_round(server.url, args.count, args), 300))
    after = [tree_cpu_seconds([pid]) for pid in pids]
    return [(a - b) * 1000 / args.count for a, b in zip(after, before, strict=True)]


def store_url(workdir: Path, redis: RedisProcess | None, index: int) -> str:
    if redis is None:
        return f"sqlite:///{workdir / f'store-{index}.db'}"
    return f"{redis.url.rstrip('/').rsplit('/', 1)[0]}/{index}"  # a database per server


def profile(
    workdir: Path, redis: RedisProcess | None, args: argparse.Namespace, index: int
) -> None:
    """One more server under cProfile (profiled_serve.py): a warm-up with the profiler
    off, SIGUSR1 to switch it on, the same round as measured, SIGTERM to write it."""
    src: Path = args.src[index]
    out: Path = args.profile
    if len(args.src) > 1:
        out = out.with_name(f"{out.stem}-{index}{out.suffix}")
    server = start_server(
        workdir, src, store_url(workdir, redis, len(args.src) + index), profile_to=out
    )
    try:
        asyncio.run(submit_round(server.url, WARM_UP, args))
        os.kill(server.process.pid, signal.SIGUSR1)
        time.sleep(0.2)  # the handler runs between two bytecodes of the idle loop
        asyncio.run(asyncio.wait_for(submit_round(server.url, args.count, args), 300))
    finally:
        server.process.stop()
    print(f"\nprofile of {src} ({out})")
    print_shares(out, args.count)


def print_shares(path: Path, scenarios: int) -> None:
    stats = pstats.Stats(str(path))
    cumulative: dict[str, float] = {}
    for (file, _line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{'/'.join(file.split('/')[-2:])}:*({name})"
        # Same-named functions (Starlette's and FastAPI's applications.py __call__) nest:
        # the outermost, largest, is the part's figure.
        cumulative[key] = max(cumulative.get(key, 0.0), entry[3])
    total = stats.total_tt  # type: ignore[attr-defined]
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(f"  {calls / scenarios:,.0f} Python function calls per scenario; "
          f"{1000 * total / scenarios:.2f} ms profiled CPU per scenario (the rest of 100%: "
          "uvicorn's protocol and the event loop)")  # fmt: skip
    for name, markers in PARTS.items():
        found = max((t for key, t in cumulative.items() if key.endswith(markers)), default=0.0)
        if found:
            print(f"  {100 * found / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["single", "batch"], default="single")
    parser.add_argument("--store", choices=["redis", "sqlite"], default="redis")
    parser.add_argument("--count", type=int, default=300, help="scenarios per round")
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds")
    parser.add_argument("--clients", type=int, default=1, help="submitters at once (single)")
    parser.add_argument(
        "--src",
        type=Path,
        action="append",
        help="a source tree (its `src` directory) to serve; repeat to compare (default: "
        "this checkout's)",
    )
    parser.add_argument("--profile", type=Path, help="also profile a round (cProfile file)")
    parser.add_argument(
        "--same-params", action="store_true", help="every scenario with the same parameters"
    )
    args = parser.parse_args()
    args.src = [p.resolve() for p in (args.src or [REPO_ROOT / "src"])]
    with tempfile.TemporaryDirectory(prefix="scenarist-submit-cpu-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir / "redis").start() if args.store == "redis" else None
        try:
            run(workdir, redis, args)
            if args.profile is not None:
                for index in range(len(args.src)):
                    profile(workdir, redis, args, index)
        finally:
            if redis is not None:
                redis.stop()


def run(workdir: Path, redis: RedisProcess | None, args: argparse.Namespace) -> None:
    servers: list[Server] = []
    try:
        for index, src in enumerate(args.src):
            servers.append(start_server(workdir, src, store_url(workdir, redis, index)))
        for server in servers:
            asyncio.run(submit_round(server.url, WARM_UP, args))
        rounds: list[list[list[float]]] = [[] for _ in servers]
        redis_pid = None if redis is None else redis.pid
        for _ in range(args.repeat):  # interleaved: round r of every tree, then r + 1
            for index, server in enumerate(servers):
                rounds[index].append(measure(server, redis_pid, args))
        load = os.getloadavg()[0]
        print(f"{args.store} store, mode {args.mode}, {args.clients} client(s), "
              f"{'the same' if args.same_params else 'distinct'} parameters, "
              f"{args.count} scenarios x {args.repeat} rounds; load {load:.1f}")  # fmt: skip
        for server, measured in zip(servers, rounds, strict=True):
            print(f"{server.src}:")
            for column, name in enumerate(("server", "redis")[: len(measured[0])]):
                values = [r[column] for r in measured]
                listed = " ".join(f"{v:.2f}" for v in values)
                print(f"  {name} CPU per scenario: median {statistics.median(values):.3f} ms "
                      f"(range {min(values):.3f}-{max(values):.3f}; rounds {listed})")  # fmt: skip
    finally:
        for server in servers:
            server.process.stop()


if __name__ == "__main__":
    main()
