#!/usr/bin/env python3
"""Callback fairness: how long 20 scenarios' callbacks take while one receiver drips its
answer (one byte every 2 s, for up to --hold seconds), against the app in-process on a
temporary SQLite store; then what one receiver answering with a 400 MiB body costs in
peak memory (--huge).

    python benchmarks/callback_fairness.py [--hold 60] [--callbacks 20]
    python benchmarks/callback_fairness.py --huge

The slow scenario ends first; once its receiver has been called, the other scenarios end
and the script times how long until all of them ended and every callback arrived, and how
long the slow delivery kept its connection. Not part of CI (the behaviour is tested in
tests/api/test_callbacks.py); the figures are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.api.callback_receivers import DripReceiver, HugeBodyReceiver, Receiver  # noqa: E402
from tests.api.conftest import drive_to_end, submit  # noqa: E402
from tests.support.app import make_settings, serve  # noqa: E402


async def measure(hold: float, callbacks: int) -> None:
    slow, fast = DripReceiver(period=2.0).start(), Receiver().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = make_settings(
                f"sqlite:///{Path(tmp) / 'bench.db'}", callback_allow=("127.0.0.1",)
            )
            async with serve(settings) as client:
                await finish(client, slow.url)
                await asyncio.to_thread(slow.requested.wait, 30)
                slow_since = time.perf_counter()
                asyncio.get_running_loop().call_later(hold, slow.released.set)
                started = time.perf_counter()
                for _ in range(callbacks):
                    await finish(client, fast.url)
                while len(fast.received) < callbacks:
                    await asyncio.sleep(0.01)
                took = time.perf_counter() - started
                await asyncio.to_thread(slow.client_gone.wait, hold + 5)
                slow_gone = time.perf_counter() - slow_since
    finally:
        slow.released.set()
        slow.stop()
        fast.stop()
    print(f"{callbacks} scenarios ended and their callbacks arrived in {took:.2f} s")
    gone = f"{slow_gone:.1f} s" if slow.client_gone.is_set() else "never (receiver released)"
    print(f"the slow delivery hung up after {gone}")


async def measure_huge() -> None:
    huge = HugeBodyReceiver().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = make_settings(
                f"sqlite:///{Path(tmp) / 'bench.db'}", callback_allow=("127.0.0.1",)
            )
            async with serve(settings) as client:
                before = peak_rss_mib()
                await finish(client, huge.url)
                await asyncio.to_thread(huge.done.wait, 120)
                while huge.requests < 1:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.5)  # the delivery's reading, if any, ends here
                after = peak_rss_mib()
    finally:
        huge.stop()
    sent = huge.body_bytes_sent / 2**20
    print(
        f"400 MiB answer: receiver wrote {sent:.1f} MiB; peak RSS {before:.0f} -> {after:.0f} MiB"
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def finish(client: object, url: str) -> None:
    body = {"scenario": "CreateVoice", "description": "hi", "callback_url": url}
    created = await submit(client, body)  # type: ignore[arg-type]
    await drive_to_end(client, created["scenario_id"])  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the slow one drips")
    parser.add_argument("--callbacks", type=int, default=20)
    parser.add_argument("--huge", action="store_true", help="measure a 400 MiB answer instead")
    args = parser.parse_args()
    asyncio.run(measure_huge() if args.huge else measure(args.hold, args.callbacks))


if __name__ == "__main__":
    main()
