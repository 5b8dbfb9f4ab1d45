"""Scheduling keys: `services:` as a mapping with caps and rate limits, a task's
`concurrency`, checked at load with file and line; the key rendered at plan time; and
the lease rule (`LeaseRoom`) and the token bucket, on their own."""

from __future__ import annotations

import pytest

from scenarist.core.catalog import parse_catalog
from scenarist.core.errors import CatalogError, RenderError
from scenarist.core.gates import (
    Bucket,
    GateView,
    LeaseCounts,
    LeaseRoom,
    RateLimit,
    ServiceGate,
    bucket_tokens,
    gate_view,
)

MAPPED = """\
services:
  text-service: {}
  audio-service: {rate_limit: {per_second: 2, burst: 5}}
  image-service: {max_in_flight: 4}
Voices:
  params:
    voice_model: {type: string, default: warm}
  tasks:
    - id: script
      service: text-service
    - id: voice
      service: audio-service
      count: 2
      depends_on: [script]
      concurrency: {key: "tts-{{ voice_model }}", limit: 1}
"""


def test_services_as_a_mapping_give_gates_and_names() -> None:
    catalog = parse_catalog(MAPPED, "c.yml")
    assert catalog.services == ("text-service", "audio-service", "image-service")
    assert catalog.gates == {
        "audio-service": ServiceGate(rate_limit=RateLimit(2.0, 5)),
        "image-service": ServiceGate(max_in_flight=4),
    }


def test_the_list_form_keeps_working_without_gates() -> None:
    listed = "services: [text-service, audio-service]\n"
    catalog = parse_catalog(MAPPED.replace(MAPPED.split("Voices:", 1)[0], listed), "c")
    assert catalog.services == ("text-service", "audio-service")
    assert catalog.gates == {}


def test_the_concurrency_key_renders_per_task_at_plan_time() -> None:
    catalog = parse_catalog(MAPPED, "c.yml")
    voices = [t for t in catalog.plan("Voices", {"voice_model": "deep"}).tasks if t.index]
    assert [(t.concurrency_key, t.concurrency_limit) for t in voices] == [("tts-deep", 1)] * 2
    script = catalog.plan("Voices", {}).tasks[0]
    assert (script.concurrency_key, script.concurrency_limit) == (None, None)
    described = catalog.describe()[0]["tasks"][1]
    assert described["concurrency"] == {"key": "tts-{{ voice_model }}", "limit": 1}


def test_a_key_rendering_to_nothing_is_refused_at_plan_time() -> None:
    catalog = parse_catalog(MAPPED.replace("tts-{{", "{{"), "c.yml")
    with pytest.raises(RenderError, match=r"concurrency\.key"):
        catalog.plan("Voices", {"voice_model": ""})


def bad(services: str, task_extra: str = "") -> CatalogError:
    text = f"services:\n{services}\nS:\n  tasks:\n    - id: a\n      service: s\n{task_extra}"
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "bad.yml")
    return caught.value


@pytest.mark.parametrize(
    ("services", "line", "message"),
    [
        ("  s: {max_in_flight: 0}", 2, "'services.s.max_in_flight' must be a positive integer"),
        ("  s: {max_in_flight: two}", 2, "'services.s.max_in_flight' must be a positive"),
        ("  s: {rate_limit: 3}", 2, "'services.s.rate_limit' must be a mapping"),
        ("  s: {rate_limit: {burst: 2}}", 2, "'services.s.rate_limit' needs 'per_second'"),
        (
            "  s:\n    rate_limit:\n      per_second: -1",
            4,
            "'services.s.rate_limit.per_second' must be a positive number",
        ),
        (
            "  s:\n    rate_limit: {per_second: 1, burst: 0}",
            3,
            "'services.s.rate_limit.burst' must be a positive integer",
        ),
        ("  s: {cap: 3}", 2, "unknown key 'cap' in service 's'"),
        ("  s: [1]", 2, "service 's': must be a mapping"),
    ],
)
def test_bad_service_limits_name_the_field_and_line(services: str, line: int, message: str) -> None:
    error = bad(services)
    assert message in error.message, error.message
    assert (error.file, error.line) == ("bad.yml", line)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("      concurrency: voice\n", "'concurrency' must be a mapping {key, limit}"),
        ("      concurrency: {key: v, limit: 0}\n", "'concurrency.limit' must be a positive"),
        ("      concurrency: {limit: 1}\n", "'concurrency.key' must be a non-empty string"),
        ("      concurrency: {key: v, limit: 1, per: x}\n", "unknown key 'per' in concurrency"),
        ("      concurrency: {key: '{{ v', limit: 1}\n", "concurrency.key: template syntax"),
    ],
)
def test_bad_concurrency_names_the_task_and_line(extra: str, message: str) -> None:
    error = bad("  s: {}", extra)
    assert message in error.message, error.message
    assert (error.line, error.task) == (7, "a")


def counts(
    in_flight: int = 0, keys: dict[str, int] | None = None, bucket: Bucket | None = None
) -> LeaseCounts:
    return LeaseCounts(
        in_flight=lambda service: in_flight,
        key_running=lambda key: (keys or {}).get(key, 0),
        group_running=lambda scenario_id, group: 0,
        bucket=lambda service: bucket,
    )


def task(service: str = "img", key: str | None = None, limit: int | None = None) -> dict:
    return {
        "service": service,
        "scenario_id": "s",
        "max_parallel": None,
        "parallel_group": None,
        "concurrency_key": key,
        "concurrency_limit": limit,
        "affinity": None,
    }


def test_a_lease_stops_at_the_cap_counting_what_it_took() -> None:
    room = LeaseRoom({"img": ServiceGate(max_in_flight=3)}, counts(in_flight=1), now=0.0)
    assert [room.admit(task()) for _ in range(4)] == [True, True, False, False]
    assert room.admit(task("other"))  # an ungated service is not held


def test_a_key_holds_its_tasks_but_not_the_others() -> None:
    room = LeaseRoom({}, counts(keys={"v": 1}), now=0.0)
    assert not room.admit(task(key="v", limit=1))
    assert room.admit(task(key="w", limit=2))
    assert room.admit(task(key="w", limit=2))
    assert not room.admit(task(key="w", limit=2))
    assert room.admit(task())


def test_the_bucket_starts_full_refills_and_is_stored_when_spent() -> None:
    rate = RateLimit(per_second=2.0, burst=3)
    room = LeaseRoom({"tts": ServiceGate(rate_limit=rate)}, counts(), now=10.0)
    assert [room.admit(task("tts")) for _ in range(4)] == [True, True, True, False]
    assert room.spent_buckets() == {"tts": Bucket(0.0, 10.0)}
    assert bucket_tokens(rate, Bucket(0.0, 10.0), 10.75) == 1.5
    assert bucket_tokens(rate, Bucket(0.0, 10.0), 99.0) == 3.0  # never above the burst
    assert bucket_tokens(rate, Bucket(1.0, 10.0), 9.0) == 1.0  # a clock behind refills nothing
    later = LeaseRoom({"tts": ServiceGate(rate_limit=rate)}, counts(bucket=Bucket(0, 10)), now=11)
    assert [later.admit(task("tts")) for _ in range(3)] == [True, True, False]
    untouched = LeaseRoom({"tts": ServiceGate(rate_limit=rate)}, counts(), now=12.0)
    assert untouched.service_room("tts") == 3
    assert untouched.spent_buckets() == {}


def test_the_view_splits_held_tasks_between_cap_and_rate() -> None:
    gate = ServiceGate(max_in_flight=4, rate_limit=RateLimit(1.0, 2))
    view = gate_view(gate, free=10, in_flight=1, bucket=Bucket(0.5, 0.0), now=1.0)
    assert view == GateView(max_in_flight=4, tokens=1.5, held_by_cap=7, held_by_rate=2)
    assert gate_view(None, free=3, in_flight=0, bucket=None, now=0.0) == GateView(None, None, 0, 0)
