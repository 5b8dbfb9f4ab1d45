#!/usr/bin/env python3
"""A scenario of ~10,000 tasks: what submitting it, reading it and viewing it costs.

    python benchmarks/big_scenario_bench.py             # Redis and SQLite, 7 rounds each
    python benchmarks/big_scenario_bench.py --store sqlite --rounds 3 --slides 1000
    git archive BASE src | tar -x -C /tmp/base   # then, before and after side by side:
    python benchmarks/big_scenario_bench.py --server-src /tmp/base/src --server-src src

One `scenarist serve` process per store (Redis: its own redis-server on a free loopback
port; SQLite: a file in a temporary directory), both stopped by pid at the end. The
catalog is the packaged one plus `BigVideo`, CreateVideo's shape with `slides_count` up
to 4,998: script -> voice, slide_prompt_1..N -> slide_image_1..N (zipped) -> video, so
N = 4,998 gives 9,999 tasks. Over loopback it measures, median and spread of --rounds:

- submit: POST /generate of one BigVideo scenario (a fresh one each round);
- every read the API and the dashboard offer on that scenario: the full body, the body
  without tasks, the first page of its tasks, the dashboard's scenario page and the first
  page of one group's instances.

A read the server does not offer (404 or 422, e.g. run on an older checkout) is printed
as "not served". It asserts nothing; compare runs before and after a change.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.processes import ManagedProcess, wait_until_healthy  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess, free_port  # noqa: E402

MAX_SLIDES = 4998
BIG_VIDEO = f"""
BigVideo:
  description: CreateVideo's shape with up to {MAX_SLIDES} slides (9,999 tasks)
  params:
    description: {{type: string, required: true, max_length: 200}}
    slides_count: {{type: integer, default: 3, minimum: 1, maximum: {MAX_SLIDES}}}
  tasks:
    - id: script
      service: text-service
      payload: {{prompt: "Write about {{{{ description }}}} in {{{{ slides_count }}}} parts"}}
    - id: voice
      service: audio-service
      depends_on: [script]
    - id: slide_prompt
      service: text-service
      count: "{{{{ slides_count }}}}"
      depends_on: [script]
      payload: {{part: "{{{{ index }}}}"}}
    - id: slide_image
      service: image-service
      count: "{{{{ slides_count }}}}"
      depends_on: [slide_prompt]
      payload: {{part: "{{{{ index }}}}"}}
    - id: video
      service: video-service
      depends_on: [voice, slide_image]
"""
_START_TIMEOUT_S = 30.0
_REQUEST_TIMEOUT_S = 120.0
_MAX_RENDER_REFUSALS = 10


@dataclass(frozen=True)
class Sample:
    seconds: float
    size: int  # response body bytes
    status: int


def catalog_text() -> str:
    packaged = resources.files("scenarist").joinpath("scenarios.yml").read_text()
    return packaged + "\n" + BIG_VIDEO


def start_server(workdir: Path, store_url: str, source: Path) -> tuple[ManagedProcess, str]:
    catalog = workdir / "catalog.yml"
    catalog.write_text(catalog_text())
    port = free_port()
    args = [sys.executable, "-m", "scenarist", "serve", "--port", str(port)]
    args += ["--store", store_url, "--scenarios", str(catalog)]
    env = {**os.environ, "PYTHONPATH": str(source)}
    server = ManagedProcess.spawn("api", args, workdir / "server.log", env, workdir)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(server, url, _START_TIMEOUT_S)
    return server, url


def timed(call: Callable[[], httpx.Response]) -> Sample:
    start = time.perf_counter()
    response = call()
    size = len(response.content)  # the whole body is read inside the timing
    return Sample(time.perf_counter() - start, size, response.status_code)


def spread(samples: list[Sample]) -> str:
    times = sorted(s.seconds * 1000 for s in samples)
    median = statistics.median(times)
    return f"{median:9.1f} ms  (min {times[0]:.1f}, max {times[-1]:.1f})"


def report(label: str, samples: list[Sample]) -> None:
    served = [s for s in samples if s.status in (200, 201)]
    if not served:
        status = samples[0].status if samples else 0
        print(f"  {label:<44} not served (HTTP {status})")
        return
    size = statistics.median(s.size for s in served)
    print(f"  {label:<44} {size / 1024:10.1f} KiB  {spread(served)}")


def measure(url: str, slides: int, rounds: int) -> None:
    body = {"scenario": "BigVideo", "params": {"description": "bench", "slides_count": slides}}
    with httpx.Client(base_url=url, timeout=_REQUEST_TIMEOUT_S) as http:
        submits: list[Sample] = []
        scenario_id = ""
        refused = 0
        while len(submits) < rounds:
            start = time.perf_counter()
            response = http.post("/generate", json=body)
            elapsed = time.perf_counter() - start
            # Rendering one plan has a 1 s wall-clock cap: on a loaded machine 9,999
            # payloads can pass it. Such a refusal is counted and tried again (bounded).
            if "render-failed" in response.text and refused < _MAX_RENDER_REFUSALS:
                refused += 1
                continue
            if response.status_code != 201:
                raise SystemExit(f"submit answered HTTP {response.status_code}: {response.text}")
            submits.append(Sample(elapsed, len(response.content), response.status_code))
        if refused:
            print(f"  ({refused} submits refused by the render time cap and tried again)")
        last = http.get("/scenarios", params={"scenario": "BigVideo", "limit": 1}).json()
        scenario_id = last["items"][0]["id"]
        total = http.get(f"/scenarios/{scenario_id}", params={"tasks": "none"}).json()
        if total.get("status") == 422:  # a server without ?tasks=none
            total = http.get(f"/scenarios/{scenario_id}").json()
        if "progress" not in total:
            raise SystemExit(f"reading scenario {scenario_id} failed: {total}")
        print(f"  scenario {scenario_id}: {total['progress']['total']} tasks")
        report("POST /generate (submit)", submits)
        reads = {
            "GET /scenarios/{id}": (f"/scenarios/{scenario_id}", {}),
            "GET /scenarios/{id}?tasks=none": (f"/scenarios/{scenario_id}", {"tasks": "none"}),
            "GET /scenarios/{id}/tasks?limit=100": (
                f"/scenarios/{scenario_id}/tasks",
                {"limit": 100},
            ),
            "GET /ui/scenarios/{id} (dashboard page)": (f"/ui/scenarios/{scenario_id}", {}),
            "GET /ui/.../groups/slide_image (first page)": (
                f"/ui/scenarios/{scenario_id}/groups/slide_image",
                {},
            ),
        }
        for label, (path, params) in reads.items():
            http.get(path, params=params)  # warm-up: first-use imports and caches
            read = functools.partial(http.get, path, params=params)
            samples = [timed(read) for _ in range(rounds)]
            report(label, samples)


def run_store(name: str, slides: int, rounds: int, source: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"scenarist-big-{name}-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir / "redis").start() if name == "redis" else None
        store_url = redis.url if redis else f"sqlite:///{workdir / 'scenarist.db'}"
        try:
            server, url = start_server(workdir, store_url, source)
            try:
                print(f"{name}: BigVideo slides_count={slides}, {rounds} rounds, from {source}")
                measure(url, slides, rounds)
            finally:
                server.stop()
        finally:
            if redis is not None:
                redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--slides", type=int, default=MAX_SLIDES, help=f"1..{MAX_SLIDES}")
    parser.add_argument("--rounds", type=int, default=7, help="samples per measurement")
    parser.add_argument(
        "--server-src",
        type=Path,
        action="append",
        help="a `src` directory to run the server from (e.g. an exported older commit, to "
        "compare before and after on one machine state); repeat it to alternate between "
        "several; default: this checkout",
    )
    args = parser.parse_args()
    if not 1 <= args.slides <= MAX_SLIDES or not 1 <= args.rounds <= 50:
        parser.error(f"--slides must be 1..{MAX_SLIDES} and --rounds 1..50")
    stores = ["redis", "sqlite"] if args.store == "both" else [args.store]
    sources = args.server_src or [REPO_ROOT / "src"]
    for source in sources:
        if not (source / "scenarist" / "__init__.py").is_file():
            parser.error(f"--server-src {source}: no scenarist package there")
    for name in stores:
        for source in sources:
            run_store(name, args.slides, args.rounds, source.resolve())


if __name__ == "__main__":
    main()
