"""Prometheus metrics: an `Observer` the service calls after state changes, queue gauges
refreshed from the store on every scrape, and HTTP request metrics (request_metrics.py).
Each app owns its registry (no globals), so several apps in one process (tests) never
share counters.

prometheus_client adds a `<name>_created` series (the time a series was first seen) to
every counter and histogram. Nothing here reads them and they double the families a
scrape parses; the library can switch them off only process-wide (an environment
variable or a module global), so the exposition filters them out of this app's view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from scenarist.api.request_metrics import HttpMetrics
from scenarist.core.model import QueueStats, Scenario, Task
from scenarist.core.step_cache import CacheCount
from scenarist.core.tenants import TenantView
from scenarist.core.usage import UsageTotal

DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# Media tasks run from milliseconds (a stub) to an hour (a long render); scenarios longer.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)
SCENARIO_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


class PrometheusObserver:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submitted = Counter(
            "scenarist_scenarios_submitted", "Scenarios submitted", ["template"], registry=r
        )
        self.leased = Counter("scenarist_tasks_leased", "Task leases", ["service"], registry=r)
        self.completed = Counter(
            "scenarist_tasks_completed", "Tasks completed successfully", ["service"], registry=r
        )
        self.failed = Counter(
            "scenarist_tasks_failed",
            "Task failures (final=true: no attempts left; false: retried)",
            ["service", "final"],
            registry=r,
        )
        self.expired = Counter(
            "scenarist_leases_expired", "Leases reaped after expiring", registry=r
        )
        self.finished = Counter(
            "scenarist_scenarios_finished",
            "Scenarios that became final, by outcome (again after a retry)",
            ["status"],
            registry=r,
        )
        self.dispatch_latency = Histogram(
            "scenarist_dispatch_latency_seconds",
            "Time from a task becoming ready to its lease",
            ["service"],
            buckets=DISPATCH_BUCKETS,
            registry=r,
        )
        self.task_wait = Histogram(
            "scenarist_task_wait_seconds",
            "Time a task attempt spent queued (retry backoff included) until its lease",
            ["service"],
            buckets=DISPATCH_BUCKETS,
            registry=r,
        )
        self.task_run = Histogram(
            "scenarist_task_run_seconds",
            "Time from a lease to the end of its attempt (success, failure or expiry)",
            ["service"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.scenario_duration = Histogram(
            "scenarist_scenario_duration_seconds",
            "Time from a scenario's submission to its end (counted each time it ends)",
            ["template"],
            buckets=SCENARIO_BUCKETS,
            registry=r,
        )
        self.ready = Gauge("scenarist_queue_ready", "Leasable tasks", ["service"], registry=r)
        self.delayed = Gauge(
            "scenarist_queue_delayed", "Queued tasks in retry backoff", ["service"], registry=r
        )
        self.live_workers = Gauge(
            "scenarist_workers_live",
            "Workers that leased or heartbeated lately (not stale), per service they lease",
            ["service"],
            registry=r,
        )
        self.in_flight = Gauge(
            "scenarist_queue_in_flight", "Tasks being processed", ["service"], registry=r
        )
        self.oldest_age = Gauge(
            "scenarist_queue_oldest_ready_age_seconds",
            "Age of the oldest ready task",
            ["service"],
            registry=r,
        )
        self.held = Gauge(
            "scenarist_queue_held",
            "Ready tasks held back at lease time, by what holds them",
            ["service", "reason"],
            registry=r,
        )
        self.cap = Gauge(
            "scenarist_service_max_in_flight", "A service's cap (catalog)", ["service"], registry=r
        )
        self.tokens = Gauge(
            "scenarist_service_rate_tokens",
            "Tokens left in a service's rate-limit bucket",
            ["service"],
            registry=r,
        )
        self.tenant_ready = Gauge(
            "scenarist_tenant_ready", "A tenant's leasable tasks, every service", ["tenant"],
            registry=r,
        )  # fmt: skip
        self.tenant_in_flight = Gauge(
            "scenarist_tenant_in_flight", "A tenant's tasks being processed", ["tenant"],
            registry=r,
        )  # fmt: skip
        self.http = HttpMetrics(r)
        self.usage = UsageCollector()
        r.register(self.usage)
        self.cache = CacheCollector()
        r.register(self.cache)
        self._exposed = WithoutCreatedSeries(r)
        # Label children of the counters (never cleared, unlike the queue gauges).
        self._leased_series: dict[str, tuple[Counter, Histogram, Histogram]] = {}
        self._run_series: dict[str, Histogram] = {}
        self._completed_series: dict[str, Counter] = {}

    # --- Observer -----------------------------------------------------------------------

    def scenario_submitted(self, scenario: Scenario) -> None:
        self.submitted.labels(scenario.template).inc()

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None:
        for task in tasks:
            leased, latency, wait = self._lease_series(task.service)
            leased.inc()
            ready_since = task.available_at or task.queued_at
            if ready_since is not None:
                latency.observe(max(0.0, now - ready_since))
            if task.queued_at is not None:
                wait.observe(max(0.0, now - task.queued_at))

    def attempt_ended(self, service: str, run_seconds: float) -> None:
        run = self._run_series.get(service)
        if run is None:
            run = self._run_series[service] = self.task_run.labels(service)
        run.observe(run_seconds)

    def task_completed(self, task: Task) -> None:
        completed = self._completed_series.get(task.service)
        if completed is None:
            completed = self._completed_series[task.service] = self.completed.labels(task.service)
        completed.inc()

    def _lease_series(self, service: str) -> tuple[Counter, Histogram, Histogram]:
        # `labels()` takes a lock and validates the label values on every call; the
        # per-task hooks run once per leased or completed task, so keep the children.
        series = self._leased_series.get(service)
        if series is None:
            series = (
                self.leased.labels(service),
                self.dispatch_latency.labels(service),
                self.task_wait.labels(service),
            )
            self._leased_series[service] = series
        return series

    def task_failed(self, task: Task, *, final: bool) -> None:
        self.failed.labels(task.service, "true" if final else "false").inc()

    def leases_expired(self, count: int) -> None:
        self.expired.inc(count)

    def scenario_finished(self, scenario: Scenario) -> None:
        self.finished.labels(scenario.status.value).inc()
        if scenario.finished_at is not None:
            duration = max(0.0, scenario.finished_at - scenario.created_at)
            self.scenario_duration.labels(scenario.template).observe(duration)

    # --- scrape -------------------------------------------------------------------------

    def exposition(
        self,
        queues: Sequence[QueueStats],
        usage: Sequence[UsageTotal] = (),
        live_workers: Mapping[str, int] | None = None,
        cache: Sequence[CacheCount] = (),
        tenants: Sequence[TenantView] = (),
    ) -> bytes:
        """The text exposition, with queue gauges set from `queues`, the usage counters
        from `usage`, the live workers per service from `live_workers` and the step
        cache's counters from `cache` (all fresh from the store)."""
        self.usage.totals = usage
        self.cache.counts = cache
        gauges = (self.ready, self.delayed, self.in_flight, self.oldest_age, self.live_workers)
        for gauge in (
            *gauges,
            self.held,
            self.cap,
            self.tokens,
            self.tenant_ready,
            self.tenant_in_flight,
        ):
            gauge.clear()  # a service that disappeared must not keep its last value
        for tenant in tenants:
            self.tenant_ready.labels(tenant.tenant).set(tenant.ready)
            self.tenant_in_flight.labels(tenant.tenant).set(tenant.in_flight)
        for service, count in (live_workers or {}).items():
            self.live_workers.labels(service).set(count)
        for q in queues:
            self.ready.labels(q.service).set(q.ready)
            self.delayed.labels(q.service).set(q.delayed)
            self.in_flight.labels(q.service).set(q.in_flight)
            if q.oldest_ready_age is not None:
                self.oldest_age.labels(q.service).set(q.oldest_ready_age)
            held = {"group": q.held, "key": q.held_by_key, "cap": q.held_by_cap}
            for reason, n in {**held, "rate": q.held_by_rate}.items():
                self.held.labels(q.service, reason).set(n)
            if q.max_in_flight is not None:
                self.cap.labels(q.service).set(q.max_in_flight)
            if q.tokens is not None:
                self.tokens.labels(q.service).set(q.tokens)
        return generate_latest(self._exposed)


class UsageCollector:
    """`scenarist_usage_total{name,service}`: the store's usage totals (core/usage.py)
    added up over hours and templates. The store keeps them, not this process, so every
    API process exports the same monotonic counters and a restart loses nothing."""

    def __init__(self) -> None:
        self.totals: Sequence[UsageTotal] = ()

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        sums: dict[tuple[str, str], float] = {}
        for total in self.totals:
            key = (total.name, total.service)
            sums[key] = sums.get(key, 0.0) + total.value
        for (name, service), value in sorted(sums.items()):
            family.add_metric([name, service], value)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "scenarist_usage",
            "Usage workers reported with completions and failures (every attempt)",
            labels=["name", "service"],
        )


class CacheCollector:
    """`scenarist_cache_hits_total{service}` / `scenarist_cache_misses_total{service}`:
    the store's counts of step cache lookups (core/step_cache.py), kept by the store like
    the usage totals, so every API process exports the same counters."""

    def __init__(self) -> None:
        self.counts: Sequence[CacheCount] = ()

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        hits, misses = self._families()
        for count in self.counts:
            hits.add_metric([count.service], count.hits)
            misses.add_metric([count.service], count.misses)
        return [hits, misses]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "scenarist_cache_hits",
                "Cached tasks that became ready and were served from the step cache",
                labels=["service"],
            ),
            CounterMetricFamily(
                "scenarist_cache_misses",
                "Cached tasks that became ready and found no unexpired entry (they run)",
                labels=["service"],
            ),
        )


class WithoutCreatedSeries:
    """A view of a registry without the `_created` series (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield kept
