"""The farm's caps and rate limits: scenarist's catalog caps the image pool below its
worker slots and rate-limits the audio pool; the section reports what was observed.

- in flight: the most tasks of a service processing at once, from interval overlap after
  the run: the server's lease intervals (`started_at` to `finished_at`, the span the
  store counts against the cap) and the workers' own start/end records (nested inside
  those); plus the most `/queues` showed while polled every ~10 ms during the run;
- leases per second of the rate-limited service: from the server's lease times, over the
  gaps between consecutive leases while another task of the service waited, leaving out
  the first `burst` leases (the bucket starts full): the rate is the limiter's only
  while it has a backlog.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from benchmarks.farm.spec import AUDIO, IMAGE, SLOTS, service_of
from benchmarks.farm.systems import FarmSystem
from benchmarks.harness.records import ExecutionRecord

import scenarist

CAP_SERVICE, CAP, CAP_SLOTS = IMAGE, 2, 4  # 4 worker slots, at most 2 processing
RATE_SERVICE, PER_SECOND, BURST, RATE_SLOTS = AUDIO, 10.0, 2, 3
CAPS_SLOTS = {**SLOTS, CAP_SERVICE: CAP_SLOTS, RATE_SERVICE: RATE_SLOTS}
SAMPLE_EVERY_S = 0.01
NS = 1e9
SPAN_KEYS = ("service", "queued_at", "started_at", "finished_at")


def write_catalog(path: Path) -> Path:
    """The packaged catalog with `services:` as the mapping of the caps run."""
    packaged = Path(scenarist.__file__).parent / "scenarios.yml"
    catalog = yaml.safe_load(packaged.read_text())
    catalog["services"] = {
        name: {} for name in catalog["services"] if name not in (CAP_SERVICE, RATE_SERVICE)
    }
    catalog["services"][CAP_SERVICE] = {"max_in_flight": CAP}
    catalog["services"][RATE_SERVICE] = {"rate_limit": {"per_second": PER_SECOND, "burst": BURST}}
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return path


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one moment; one ending when another starts (a lease
    completed and the next taken in the same step) does not overlap it."""
    spans = list(intervals)
    # At equal times -1 sorts first: the end before the start.
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def steady_rate(leases: Sequence[float], readies: Sequence[float], burst: int) -> float | None:
    """Leases per second over the gaps the bucket alone decided: from lease i to lease
    i+1 for i >= `burst` (the first leases spend the full bucket), when task i+1 was
    already ready at lease i (`readies`: when each task of the service became ready)."""
    leases, readies = sorted(leases), sorted(readies)
    gaps = [
        leases[i + 1] - leases[i]
        for i in range(burst, len(leases) - 1)
        if sum(1 for r in readies if r <= leases[i]) >= i + 2
    ]
    return len(gaps) / sum(gaps) if gaps and sum(gaps) > 0 else None


@dataclass
class QueueSampler:
    """Polls `GET /queues` in a thread from the moment the workers are ready, keeps each
    service's highest `in_flight`, and once the records are in reads the lease spans."""

    api_url: str = ""
    highest: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, system: FarmSystem) -> None:
        self.api_url = system.api_url
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=5.0) as client:
            while not self._stop.wait(SAMPLE_EVERY_S):
                for queue in client.get("/queues").json()["queues"]:
                    service = queue["service"]
                    self.highest[service] = max(self.highest.get(service, 0), queue["in_flight"])
                self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def finish(self, system: FarmSystem) -> list[dict[str, Any]]:
        self.stop()
        return lease_spans(system.api_url)


def lease_spans(api_url: str) -> list[dict[str, Any]]:
    """The capped and rate-limited tasks' service, ready, lease and end times (one attempt
    each: the run is verified to have run every task once)."""
    spans: list[dict[str, Any]] = []
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        cursor: str | None = None
        scenario_ids: list[str] = []
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = client.get("/scenarios", params=params).raise_for_status().json()
            scenario_ids += [s["id"] for s in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        for scenario_id in scenario_ids:
            tasks = client.get(f"/scenarios/{scenario_id}/tasks", params={"limit": 500})
            for task in tasks.raise_for_status().json()["items"]:
                if task["service"] not in (CAP_SERVICE, RATE_SERVICE):
                    continue
                detail = client.get(f"/tasks/{task['id']}").raise_for_status().json()
                spans.append({key: detail[key] for key in SPAN_KEYS})
    return spans


@dataclass(frozen=True)
class CapsRun:
    cap_server: int  # most image tasks leased at once (server lease intervals)
    cap_worker: int  # ... from the workers' records
    cap_sampled: int  # ... the highest /queues showed
    samples: int
    rate: float | None  # steady leases per second of the rate-limited service
    leases: int

    def to_json(self) -> dict[str, object]:
        return {
            "cap_service": CAP_SERVICE, "cap": CAP, "cap_slots": CAP_SLOTS,
            "in_flight_max_server": self.cap_server, "in_flight_max_worker": self.cap_worker,
            "in_flight_max_sampled": self.cap_sampled, "queue_samples": self.samples,
            "rate_service": RATE_SERVICE, "per_second": PER_SECOND, "burst": BURST,
            "rate_slots": RATE_SLOTS, "leases": self.leases, "steady_rate": self.rate,
        }  # fmt: skip


def measure_caps(
    spans: Sequence[dict[str, Any]], records: Sequence[ExecutionRecord], sampler: QueueSampler
) -> CapsRun:
    capped = [s for s in spans if s["service"] == CAP_SERVICE]
    limited = [s for s in spans if s["service"] == RATE_SERVICE]
    worker = [
        (r.start_ns / NS, r.end_ns / NS) for r in records if service_of(r.name) == CAP_SERVICE
    ]
    return CapsRun(
        cap_server=max_overlap((s["started_at"], s["finished_at"]) for s in capped),
        cap_worker=max_overlap(worker),
        cap_sampled=sampler.highest.get(CAP_SERVICE, 0),
        samples=sampler.samples,
        rate=steady_rate(
            [s["started_at"] for s in limited], [s["queued_at"] for s in limited], BURST
        ),
        leases=len(limited),
    )


def caps_table(runs: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"| run | {CAP_SERVICE} max in flight: leases / workers / /queues (samples) "
        f"| cap ({CAP_SLOTS} slots) | {RATE_SERVICE} steady leases/s "
        f"| limit ({RATE_SLOTS} slots) | off by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(runs, 1):
        rate = r["steady_rate"]
        shown = "-" if rate is None else f"{rate:.2f}"
        off = "-" if rate is None else f"{100 * (rate / PER_SECOND - 1):+.1f}%"
        lines.append(
            f"| {i} | {r['in_flight_max_server']} / {r['in_flight_max_worker']} / "
            f"{r['in_flight_max_sampled']} ({r['queue_samples']}) | {CAP} | {shown} "
            f"| {PER_SECOND:g} (burst {BURST}) | {off} |"
        )
    return "\n".join(lines)
