#!/usr/bin/env python3
"""Start-up time of `scenarist` commands: wall clock from spawn to exit, per command.

    python benchmarks/cli_startup.py           # 15 runs per command
    python benchmarks/cli_startup.py -n 30

Runs the installed `scenarist` script (the one beside this interpreter) as a user would:
`--help`, `graph`, `validate`, and `status` of a real scenario on a `scenarist serve`
(SQLite in a temporary directory, a free loopback port) that this script starts first and
stops by pid at the end. A bare `python -c pass` row shows the interpreter's own share.
Prints a Markdown table of the median and the spread (fastest, slowest) of the wall clock
in milliseconds, and the median CPU time (user + system) of the child, which other jobs on
a shared machine disturb much less. It asserts nothing: compare runs before and after a
change.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
SCENARIST = str(BIN / "scenarist")
SERVER_START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(workdir: Path) -> Iterator[str]:
    """A `scenarist serve` on a free loopback port, stopped by its pid afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [SCENARIST, "serve", "--port", str(port), "--store", f"sqlite:///{workdir / 'db'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"scenarist serve did not start; see {log.name}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()


def submit(url: str) -> str:
    body = json.dumps({"scenario": "CreateVideo", "description": "start-up"}).encode()
    request = urllib.request.Request(
        f"{url}/generate", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        scenario_id: str = json.load(response)["scenario_id"]
        return scenario_id


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: Sequence[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of `runs` runs (after one unmeasured run that warms the
    file cache)."""
    wall, cpu = [], []
    for attempt in range(runs + 1):
        cpu_before, started = children_cpu_seconds(), time.perf_counter()
        result = subprocess.run(argv, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr!r}")
        if attempt:
            wall.append(elapsed)
            cpu.append(children_cpu_seconds() - cpu_before)
    return wall, cpu


def packaged_catalog() -> str:
    script = "from scenarist.core.catalog import default_catalog_path as p; print(p())"
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs per command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as url:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "scenarist --help": [SCENARIST, "--help"],
            "scenarist status ID": [SCENARIST, "status", submit(url), "--url", url],
            "scenarist graph CreateVideo": [
                *(SCENARIST, "graph", "CreateVideo", "--param", "description=x")
            ],
            "scenarist validate CATALOG": [SCENARIST, "validate", packaged_catalog()],
            "scenarist serve --help": [SCENARIST, "serve", "--help"],
        }
        print(f"{args.runs} runs each, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print("| command | median ms | fastest ms | slowest ms | CPU median ms |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, argv in commands.items():
            wall, cpu = time_command(argv, args.runs)
            print(
                f"| `{name}` | {statistics.median(wall) * 1000:.0f} | {min(wall) * 1000:.0f} "
                f"| {max(wall) * 1000:.0f} | {statistics.median(cpu) * 1000:.0f} |"
            )


if __name__ == "__main__":
    main()
