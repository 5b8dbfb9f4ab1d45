"""The span of one ended attempt, built from the task as it was while processing."""

from __future__ import annotations

import dataclasses

from scenarist.core.model import Task, TaskStatus
from scenarist.core.trace_ids import TraceParent, attempt_span_id, parse_traceparent
from scenarist.service.attempt_spans import attempt_span

TRACE = TraceParent(0xABC, 0xDEF)
RUNNING = Task(
    id="s:voice", scenario_id="s", name="voice", service="audio-service", payload={},
    depends_on=("script",), dependents=("video",), level=1, status=TaskStatus.PROCESSING,
    attempt=2, max_attempts=3, timeout_seconds=30.0, created_at=100.0, queued_at=110.0,
    started_at=112.0, lease_token="n1.2", lease_expires_at=150.0, lease_seconds=30.0,
    worker_id="gpu-7",
)  # fmt: skip


def test_an_expired_attempt_has_its_lease_last_heartbeat_expiry_and_retry() -> None:
    span = attempt_span(RUNNING, TRACE, 151.0, "lease expired", 155.0, expired=True)
    assert span.context == TraceParent(0xABC, attempt_span_id("s:voice", "n1.2"))
    assert span.parent_span_id == 0xDEF
    assert (span.start, span.end, span.error) == (110.0, 151.0, "lease expired")
    assert [(e.name, e.at) for e in span.events] == [
        ("leased", 112.0), ("heartbeat", 120.0), ("lease expired", 151.0), ("retry", 151.0),
    ]  # fmt: skip
    assert span.attributes["scenarist.worker_id"] == "gpu-7"
    assert span.attributes["scenarist.outcome"] == "retry"


def test_no_heartbeat_event_without_a_renewal_and_ids_differ_per_lease() -> None:
    fresh = dataclasses.replace(RUNNING, lease_expires_at=142.0)
    span = attempt_span(fresh, TRACE, 130.0, None, None, expired=False)
    assert [e.name for e in span.events] == ["leased"]
    assert span.attributes["scenarist.outcome"] == "success"
    assert attempt_span_id("s:voice", "n1.2") != attempt_span_id("s:voice", "n2.2")


def test_traceparent_parsing_follows_the_w3c_rules() -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parsed = parse_traceparent(good)
    assert parsed is not None
    assert parsed.header() == good
    assert parsed.sampled
    for bad in (None, "", "junk", good.upper(), "ff" + good[2:],
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"):  # fmt: skip
        assert parse_traceparent(bad) is None
    unsampled = parse_traceparent(good[:-2] + "00")
    assert unsampled is not None
    assert not unsampled.sampled
