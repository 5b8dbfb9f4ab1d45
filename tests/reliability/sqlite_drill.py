"""SQLite: a process SIGKILLed in the middle of its writes loses no committed state.

A child process runs the real service layer on a SQLite file in a tight loop (submit a
fan-in of 20 jobs in one transaction, lease them, complete each) and prints one line per
operation *after* the store call returned, i.e. after its transaction committed. The
parent kills it at a random moment, which usually lands inside a transaction, then opens
the file and checks: integrity_check is ok, every printed operation is there, every
scenario has all of its tasks or none, and the counters agree with the tasks.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scenarist.core.errors import ScenarioNotFoundError
from scenarist.storage import open_store
from scenarist.storage.base import Store
from tests.support.live_server import RELIABILITY_CATALOG

JOBS_PER_SCENARIO = 20

WRITER_SCRIPT = """\
import asyncio
import sys
from pathlib import Path

from scenarist.core.catalog import load_catalog
from scenarist.service.orchestrator import Orchestrator
from scenarist.storage import open_store
from scenarist.storage.base import Store


async def main(db: str, catalog: str, jobs: int) -> None:
    store = await open_store(f"sqlite:///{db}")
    orchestrator = Orchestrator(store, load_catalog(Path(catalog)))
    while True:
        submitted = await orchestrator.submit("FanIn", {"n": jobs})
        print(f"S {submitted.scenario.id} {len(submitted.tasks)}", flush=True)
        for task in await orchestrator.lease("test-service", max_tasks=jobs, lease_seconds=600):
            await orchestrator.complete(task.id, task.lease_token, result_ref="ref")
            print(f"C {task.id}", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@dataclass
class SqliteKillReport:
    kills: int = 0
    acked_submissions: int = 0
    acked_completions: int = 0
    lost: list[str] = field(default_factory=list)
    torn_scenarios: list[str] = field(default_factory=list)  # some tasks missing
    counter_mismatches: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)  # integrity_check answers


def run_writer_and_kill(workdir: Path, db: Path, rng: random.Random) -> list[str]:
    """One writer process, SIGKILLed at a random moment; returns its acknowledged lines."""
    catalog = workdir / "scenarios.yml"
    catalog.write_text(RELIABILITY_CATALOG, encoding="utf-8")
    script = workdir / "sqlite_writer.py"
    script.write_text(WRITER_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIST_")}
    process = subprocess.Popen(
        [sys.executable, str(script), str(db), str(catalog), str(JOBS_PER_SCENARIO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    acked: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: acked.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not acked and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert acked, f"the writer acknowledged nothing (exit {process.poll()})"
        time.sleep(rng.uniform(0.05, 0.6))
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        reader.join(timeout=10)
    return [line.strip() for line in acked if line.strip()]


def integrity_check(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def verify(db: Path, acked: list[str], report: SqliteKillReport) -> None:
    store = await open_store(f"sqlite:///{db}")
    try:
        for line in acked:
            kind, ident, *rest = line.split()
            if kind == "S":
                report.acked_submissions += 1
                await check_scenario(store, ident, int(rest[0]), report)
            else:
                report.acked_completions += 1
                if (await store.get_task(ident)).status.value != "success":
                    report.lost.append(f"completion of {ident}")
    finally:
        await store.close()


async def check_scenario(
    store: Store, scenario_id: str, count: int, report: SqliteKillReport
) -> None:
    try:
        scenario = await store.get_scenario(scenario_id)
        tasks = await store.list_tasks(scenario_id)
    except ScenarioNotFoundError:
        report.lost.append(f"submission of {scenario_id}")
        return
    if len(tasks) != count:
        report.torn_scenarios.append(f"{scenario_id}: {len(tasks)} of {count} tasks")
    counted = Counter(t.status for t in tasks)
    stored = {s: n for s, n in scenario.progress.by_status.items() if n}
    if stored != dict(counted):
        report.counter_mismatches.append(f"{scenario_id}: {stored} != {dict(counted)}")


def sqlite_kill_drill(workdir: Path, *, kills: int, seed: int) -> SqliteKillReport:
    """`kills` writer processes in turn on one database file, each SIGKILLed."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "scenarist.db"
    rng = random.Random(seed)
    report = SqliteKillReport()
    for _ in range(kills):
        acked = run_writer_and_kill(workdir, db, rng)
        report.kills += 1
        report.integrity.append(integrity_check(db))
        asyncio.run(verify(db, acked, report))
    return report
