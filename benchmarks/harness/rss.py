"""Peak resident memory and CPU time of a set of process trees, read from /proc.

Memory: the sum over every monitored process and its descendants (Celery or Dramatiq may
fork) is sampled every `interval_s`; the peak of that sum is the run's figure.
CPU: user + system time of the same trees, read before and after a run; a process's
reaped children count too (`cutime`, `cstime`), so a pool that replaced a child is not
undercounted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

_PROC = Path("/proc")


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _parent_map() -> dict[int, list[int]]:
    """pid -> child pids, from /proc/<pid>/stat (field 4 after the command name)."""
    children: dict[int, list[int]] = {}
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def _rss_from_proc(pid: int) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _cpu_seconds_from_proc(pid: int) -> float:
    """utime + stime + cutime + cstime (fields 14-17 of /proc/<pid>/stat), in seconds."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / _TICKS_PER_S


def _tree_pids(root_pids: Iterable[int]) -> list[int]:
    """The given processes and all their descendants, each once."""
    children = _parent_map()
    seen: dict[int, None] = {}
    pending = list(root_pids)
    while pending:
        pid = pending.pop()
        if pid not in seen:
            seen[pid] = None
            pending.extend(children.get(pid, []))
    return list(seen)


def tree_rss_bytes(root_pids: Iterable[int]) -> int:
    """RSS of the given processes and all their descendants (0 for ones already gone)."""
    return sum(_rss_from_proc(pid) for pid in _tree_pids(root_pids))


def tree_cpu_seconds(root_pids: Iterable[int]) -> float:
    """CPU time used so far by the given processes and all their descendants."""
    return sum(_cpu_seconds_from_proc(pid) for pid in _tree_pids(root_pids))


class PeakRssSampler:
    """`with PeakRssSampler(lambda: pids) as sampler: ...` then read `sampler.peak_bytes`."""

    def __init__(self, pids: Callable[[], Iterable[int]], interval_s: float = 0.1) -> None:
        self._pids = pids
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_bytes = 0

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self._pids()))

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.sample()

    def __enter__(self) -> PeakRssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join()
        self.sample()
