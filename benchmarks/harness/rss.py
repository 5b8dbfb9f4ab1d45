"""Peak resident memory of a set of process trees, sampled in a background thread.

The sum over every monitored process and its descendants (Celery or Dramatiq may fork)
is sampled every `interval_s`; the peak of that sum is the run's figure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

_PROC = Path("/proc")


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


def tree_rss_bytes(root_pids: Iterable[int]) -> int:
    """RSS of the given processes and all their descendants (0 for ones already gone)."""
    children = _parent_map()
    seen: set[int] = set()
    pending = list(root_pids)
    total = 0
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_from_proc(pid)
        pending.extend(children.get(pid, []))
    return total


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
