"""Hostile input over real HTTP to a server process (default catalog): every case gets a
4xx problem+json (or is stored as plain data), never a 5xx, and the process's memory
stays bounded however often the cases are repeated."""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.probes import assert_problem
from tests.support.live_server import ServerProcess

pytestmark = [pytest.mark.slow]

JSON = {"content-type": "application/json"}
TEN_MB = 10 * 1024 * 1024
NESTING = 100_000
RSS_GROWTH_LIMIT = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("bad-input")
    process = ServerProcess(workdir, store_url=f"sqlite:///{workdir / 'db.sqlite'}", catalog=None)
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


_submissions = itertools.count()


def leased_text_task(client: httpx.Client) -> dict[str, Any]:
    # Each submission its own description: the packaged CreateVideo caches its script step,
    # so a repeated one would be served from the step cache with nothing to lease.
    description = f"input tests {next(_submissions)}"
    body = {"scenario": "CreateVideo", "description": description, "slides_count": 1}
    assert client.post("/generate", json=body).status_code == 201
    tasks: list[dict[str, Any]] = client.post("/queues/text-service/lease", json={}).json()["tasks"]
    assert tasks, "nothing to lease"
    return tasks[0]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def malformed_json(client: httpx.Client) -> None:
    for raw in (b'{"scenario": "CreateVideo",', b"{'single': 'quotes'}", b"\xff\xfe{}", b"[1,]"):
        assert_problem(client.post("/generate", content=raw, headers=JSON), 400)


def wrong_types(client: httpx.Client) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/generate", {"scenario": 5}, "scenario"),
        (
            "/generate",
            {"scenario": "CreateVideo", "description": "x", "slides_count": "many"},
            "slides_count",
        ),
        ("/generate", {"scenario": "CreateVideo", "description": ["x"]}, "description"),
        ("/queues/text-service/lease", {"max_tasks": "ten"}, "max_tasks"),
        ("/queues/text-service/lease", {"lease_seconds": -5}, "lease_seconds"),
        ("/tasks/complete", {"items": "all"}, "items"),
    ]
    for path, body, field in cases:
        problem = assert_problem(client.post(path, json=body), 422)
        assert field in (problem.get("field") or "") + problem["detail"], problem


NON_FINITE = (b"NaN", b"Infinity", b"1e400", b"-1e400", b"123456789012345678901234567890")


def non_finite_numbers(client: httpx.Client) -> None:
    for number in NON_FINITE:
        raw = b'{"scenario":"CreateVideo","description":"x","slides_count":' + number + b"}"
        assert_problem(client.post("/generate", content=raw, headers=JSON), 400, 422)
        # Free-form JSON (a parameter the template does not bound, a result) too: a store
        # cannot encode a 100-bit integer, and NaN is not JSON (it was stored as null).
        extra = b'{"scenario":"CreateVideo","description":"x","params":{"n":' + number + b"}}"
        assert_problem(client.post("/generate", content=extra, headers=JSON), 422)
        task = leased_text_task(client)
        token = task["lease_token"].encode()
        result = b'{"lease_token":"%s","result_ref":"r","result":{"n":%s}}' % (token, number)
        url = f"/tasks/{task['id']}/complete"
        assert_problem(client.post(url, content=result, headers=JSON), 422)
        item = b'{"id":"%s","lease_token":"%s","result_ref":"r","result":{"n":[%s]}}' % (
            task["id"].encode(),
            token,
            number,
        )
        batch = b'{"items":[' + item + b"]}"
        assert_problem(client.post("/tasks/complete", content=batch, headers=JSON), 422)
        assert client.get(f"/tasks/{task['id']}").json()["status"] == "processing"
        seed = leased_text_task(client)  # the seed PATCH must refuse before it claims
        client.post(f"/tasks/{seed['id']}/fail", json={"lease_token": seed["lease_token"],
                    "error": "x", "retryable": True})  # fmt: skip
        patch = b'{"status":"success","result":{"n":%s}}' % number
        refused = client.patch(f"/tasks/{seed['id']}/status", content=patch, headers=JSON)
        assert_problem(refused, 422)
        after = client.get(f"/tasks/{seed['id']}").json()
        assert (after["status"], after["worker_id"]) == ("queued", None)


def ten_megabyte_bodies(client: httpx.Client) -> None:
    big = b'{"scenario":"CreateVideo","description":"' + b"a" * TEN_MB + b'"}'
    assert_problem(client.post("/generate", content=big, headers=JSON), 413)
    task = leased_text_task(client)
    result = b'{"lease_token":"t","result_ref":"r","result":{"blob":"' + b"b" * TEN_MB + b'"}}'
    assert_problem(client.post(f"/tasks/{task['id']}/complete", content=result, headers=JSON), 413)
    streamed = client.post("/generate", content=chunks(TEN_MB), headers=JSON)  # no length
    assert_problem(streamed, 413)


def deeply_nested_json(client: httpx.Client) -> None:
    params = b'{"scenario":"CreateVideo","description":"x","slides_count":' + nested(NESTING) + b"}"
    assert_problem(client.post("/generate", content=params, headers=JSON), 400, 422)
    task = leased_text_task(client)
    body = b'{"lease_token":"%s","result_ref":"r","result":{"deep":' % task["lease_token"].encode()
    response = client.post(
        f"/tasks/{task['id']}/complete", content=body + nested(NESTING) + b"}}", headers=JSON
    )
    assert_problem(response, 400, 422)
    assert client.get(f"/tasks/{task['id']}").json()["status"] == "processing"


def unicode_and_control_characters(client: httpx.Client) -> None:
    text = "\x00\x07\x1b[31m\u202eevil\u202c \u0301 \ufeff \U0001f408 \ud7ff \uffff"
    body = {"scenario": "CreateVideo", "description": text, "slides_count": 1}
    created = client.post("/generate", json=body)
    assert created.status_code == 201, created.text
    stored = client.get(f"/scenarios/{created.json()['scenario_id']}").json()
    assert stored["params"]["description"] == text  # kept as data, byte for byte
    for lone in (rb"\ud800", rb"\udfff", rb"\ud83d x"):
        raw = b'{"scenario":"CreateVideo","description":"' + lone + b'","slides_count":1}'
        assert_problem(client.post("/generate", content=raw, headers=JSON), 400)
    task = leased_text_task(client)
    raw = b'{"lease_token":"%s","result_ref":"\\udc00"}' % task["lease_token"].encode()
    assert_problem(client.post(f"/tasks/{task['id']}/complete", content=raw, headers=JSON), 400)


def template_bombs(client: httpx.Client) -> None:
    """Parameters are data: a template in a parameter is copied, never evaluated."""
    bombs = [
        "{{ 'a' * 10**9 }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ lipsum.__globals__['os'].system('true') }}",
    ]
    for bomb in bombs:
        body = {"scenario": "CreateVideo", "description": bomb, "slides_count": 1}
        created = client.post("/generate", json=body)
        assert created.status_code == 201, created.text
        stored = client.get(f"/scenarios/{created.json()['scenario_id']}").json()
        assert stored["params"]["description"] == bomb
    leased = client.post("/queues/text-service/lease", json={"max_tasks": 100}).json()["tasks"]
    payloads = " ".join(str(t["payload"]) for t in leased)
    assert all(bomb in payloads for bomb in bombs), payloads


def out_of_bound_counts(client: httpx.Client) -> None:
    for count in (100_000, 101, 0, -1):
        body = {"scenario": "CreateVideo", "description": "x", "slides_count": count}
        problem = assert_problem(client.post("/generate", json=body), 422)
        assert problem.get("field") == "slides_count", problem
        assert "slides_count" in problem["detail"]


def unknown_ids(client: httpx.Client) -> None:
    token = {"lease_token": "abc.1", "result_ref": "r"}
    for method, path, body in [
        ("GET", "/scenarios/01NOSUCHSCENARIO", None),
        ("GET", "/tasks/01NOSUCHSCENARIO:script", None),
        ("GET", "/tasks/no-colon-at-all", None),
        ("POST", "/tasks/01NOSUCHSCENARIO:script/complete", token),
        ("POST", "/tasks/01NOSUCHSCENARIO:script/heartbeat", {"lease_token": "abc.1"}),
        ("POST", "/scenarios/01NOSUCHSCENARIO/cancel", None),
        ("POST", "/scenarios/01NOSUCHSCENARIO/retry", None),
        ("GET", "/templates/NoSuchTemplate", None),
        ("GET", "/tasks/..%2F..%2Fetc%2Fpasswd", None),
        ("GET", "/scenarios/..%2F..%2Fetc%2Fpasswd", None),
    ]:
        assert_problem(client.request(method, path, json=body), 404)
    assert client.post("/generate", json={"scenario": "NoSuch"}).status_code == 404


def path_traversal_in_result_ref(client: httpx.Client, canary: Path) -> None:
    """A result_ref is a reference for workers; the server stores it and never opens it.
    The canary is a FIFO: had the server opened it for reading, a non-blocking open for
    writing would succeed instead of failing with ENXIO (no reader)."""
    refs = ["../../../../etc/passwd", "file:///etc/shadow", str(canary), "\\\\host\\share"]
    for ref in refs:
        task = leased_text_task(client)
        body = {"lease_token": task["lease_token"], "result_ref": ref, "result": {"path": ref}}
        done = client.post(f"/tasks/{task['id']}/complete", json=body)
        assert done.status_code == 200, done.text
        stored = client.get(f"/tasks/{task['id']}").json()
        assert (stored["result_ref"], stored["result"]) == (ref, {"path": ref})
        client.get(f"/scenarios/{task['scenario_id']}")
        client.get(f"/ui/scenarios/{task['scenario_id']}")
    with pytest.raises(OSError, match="No such device or address") as no_reader:
        os.close(os.open(canary, os.O_WRONLY | os.O_NONBLOCK))
    assert no_reader.value.errno == errno.ENXIO


CASES: dict[str, Callable[[httpx.Client], None]] = {
    "malformed_json": malformed_json,
    "wrong_types": wrong_types,
    "non_finite_numbers": non_finite_numbers,
    "ten_megabyte_bodies": ten_megabyte_bodies,
    "deeply_nested_json": deeply_nested_json,
    "unicode_and_control_characters": unicode_and_control_characters,
    "template_bombs": template_bombs,
    "out_of_bound_counts": out_of_bound_counts,
    "unknown_ids": unknown_ids,
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_4xx_problem(case: str, client: httpx.Client) -> None:
    CASES[case](client)


def test_path_traversal_in_result_ref_is_stored_never_opened(
    client: httpx.Client, tmp_path: Path
) -> None:
    canary = tmp_path / "canary.fifo"
    os.mkfifo(canary)
    path_traversal_in_result_ref(client, canary)


def test_no_5xx_and_memory_bounded_under_repeated_abuse(
    server: ServerProcess, client: httpx.Client
) -> None:
    for case in CASES.values():  # warm-up: imports, caches, SQLite page cache
        case(client)
    before = server.rss_bytes()
    for _ in range(3):
        for case in CASES.values():
            case(client)
    growth = server.rss_bytes() - before
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 1e6:.1f} MB"
    assert "Traceback" not in server.log_text()
    assert '" 500' not in server.log_text()
