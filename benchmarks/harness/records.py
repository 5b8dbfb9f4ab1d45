"""Execution records: what every no-op task body writes, whichever system ran it.

A task appends one line `name<TAB>scenario<TAB>start_ns<TAB>end_ns` to a file owned by its
worker process (`exec-<pid>.log` in the run's records directory), with a single unbuffered
`os.write` on an O_APPEND descriptor. That costs a few microseconds, never touches the
Redis instance being measured, and survives a worker killed without a clean shutdown
(the bytes are in the kernel once `write` returns). Times come from `time.time_ns()`, the
one clock all processes on the machine share.

Standard library only: the peer runners import this inside their own virtualenvs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

RECORDS_DIR_ENV = "BENCH_RECORDS_DIR"
_RECORD_PREFIX = "exec-"
_READY_PREFIX = "ready-"

_descriptors: dict[tuple[int, str], int] = {}


@dataclass(frozen=True)
class ExecutionRecord:
    name: str
    scenario_id: str
    start_ns: int
    end_ns: int


def records_dir_from_env() -> Path:
    value = os.environ.get(RECORDS_DIR_ENV)
    if not value:
        raise RuntimeError(f"{RECORDS_DIR_ENV} is not set: the harness sets it for every worker")
    return Path(value)


def _descriptor(directory: Path) -> int:
    # Keyed by pid too: a forked child must not share its parent's file.
    key = (os.getpid(), str(directory))
    found = _descriptors.get(key)
    if found is None:
        path = directory / f"{_RECORD_PREFIX}{os.getpid()}.log"
        found = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _descriptors[key] = found
    return found


def format_record(record: ExecutionRecord) -> str:
    return f"{record.name}\t{record.scenario_id}\t{record.start_ns}\t{record.end_ns}\n"


def write_record(record: ExecutionRecord, directory: Path | None = None) -> None:
    target = directory if directory is not None else records_dir_from_env()
    os.write(_descriptor(target), format_record(record).encode())


def run_noop_task(name: str, scenario_id: str, directory: Path | None = None) -> None:
    """The body of every benchmark task: no work, one execution record."""
    start_ns = time.time_ns()
    write_record(ExecutionRecord(name, scenario_id, start_ns, time.time_ns()), directory)


def parse_records(text: str) -> list[ExecutionRecord]:
    records = []
    for line in text.splitlines():
        if not line:
            continue
        name, scenario_id, start_ns, end_ns = line.split("\t")
        records.append(ExecutionRecord(name, scenario_id, int(start_ns), int(end_ns)))
    return records


def read_records(directory: Path) -> list[ExecutionRecord]:
    records: list[ExecutionRecord] = []
    for path in sorted(directory.glob(f"{_RECORD_PREFIX}*.log")):
        records.extend(parse_records(path.read_text()))
    return records


def count_records(directory: Path) -> int:
    """Complete lines written so far (reads every file whole; see RecordCounter to poll)."""
    total = 0
    for path in directory.glob(f"{_RECORD_PREFIX}*.log"):
        total += path.read_bytes().count(b"\n")
    return total


class RecordCounter:
    """Complete lines written so far, reading only the bytes added since the last call.

    The harness polls every few milliseconds while the system under test runs on the same
    cores; re-reading every file whole would cost it CPU that grows with the run.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._offsets: dict[Path, int] = {}
        self._total = 0

    def count(self) -> int:
        for path in self._directory.glob(f"{_RECORD_PREFIX}*.log"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as file:
                file.seek(offset)
                added = file.read()
            self._offsets[path] = offset + len(added)
            self._total += added.count(b"\n")
        return self._total


def mark_worker_ready(directory: Path | None = None) -> None:
    """Called by a worker once it consumes; the harness submits only after all are ready."""
    target = directory if directory is not None else records_dir_from_env()
    (target / f"{_READY_PREFIX}{os.getpid()}").touch()


def count_ready_workers(directory: Path) -> int:
    return sum(1 for _ in directory.glob(f"{_READY_PREFIX}*"))
