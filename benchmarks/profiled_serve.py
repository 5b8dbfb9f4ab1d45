"""`scenarist serve` under cProfile with a CPU clock, for `submit_cpu.py --profile`.

    python benchmarks/profiled_serve.py OUT.prof serve --store redis://... --port N

The profiler starts off: SIGUSR1 switches it on (after the caller's warm-up, so imports,
start-up and first-call costs stay out), and the statistics are written when the process
gets SIGTERM or SIGINT (uvicorn re-raises the signal after its shutdown, so a plain
`python -m cProfile` never writes them). `time.process_time` is the clock: a sampling
profiler reading the wall clock counts the moments the kernel hands the core to Redis
right after each write to it as time spent writing, which on two busy cores made a socket
write look like a quarter of the server.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out = sys.argv.pop(1)
    profile = cProfile.Profile(time.process_time)

    def start(_signum: int, _frame: FrameType | None) -> None:
        profile.enable()

    def dump(_signum: int, _frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out)
        os._exit(0)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGTERM, dump)
    signal.signal(signal.SIGINT, dump)
    from scenarist.cli.main import main as scenarist

    sys.argv = ["scenarist", *sys.argv[1:]]
    scenarist()


if __name__ == "__main__":
    main()
