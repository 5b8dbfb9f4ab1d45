"""Fault drills shared by the CI tests (small counts) and `benchmarks/chaos.py` (large).

Each drill injects a real fault into a real process (SIGKILL of the API or of Redis),
keeps a ledger of what the server acknowledged, and reports what survived. A drill
returns a report; the caller decides what to assert or print.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.reliability.probes import (
    lease,
    progress_matches_tasks,
    queues,
    scenario,
    statuses,
    submit,
)
from tests.support.live_server import ServerProcess
from tests.support.redis_server import RedisServer

NEVER_SENT = "connection refused"
CUT_OFF = "cut off in flight"


@dataclass
class Ledger:
    """Outcome of each request the drill sent: task id -> ack time, or the failure."""

    acked: dict[str, float] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # an HTTP status, not 2xx
    broken: dict[str, str] = field(default_factory=dict)  # transport error: outcome unknown
    malformed: list[str] = field(default_factory=list)  # non-2xx that is not problem+json

    @property
    def tried(self) -> int:
        return len(self.acked) + len(self.refused) + len(self.broken)


@dataclass
class CrashReport:
    """What a drill saw. `lost` are acknowledged changes missing after the restart."""

    tried: int
    acked: int
    unacknowledged: int
    refused_statuses: dict[int, int]
    lost: list[str]
    lost_ack_ages: list[float]  # seconds between each lost ack and the kill
    invariant_problems: list[str]
    finished_after_restart: bool
    recovery_seconds: float | None = None
    outage_answers: dict[int, int] = field(default_factory=dict)
    cut_off: int = 0  # requests the server had received when it died


async def send_completions(
    url: str,
    tasks: list[dict[str, Any]],
    *,
    concurrency: int,
    on_ack: Callable[[int], None],
    pace: float = 0.0,
) -> Ledger:
    """POST a completion for every task with up to `concurrency` in flight; `on_ack(n)`
    runs after the n-th 2xx, which is where a drill pulls its trigger."""
    ledger = Ledger()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, leased: dict[str, Any]) -> None:
        async with gate:
            body = {"lease_token": leased["lease_token"], "result_ref": f"ref/{leased['name']}"}
            try:
                response = await client.post(f"/tasks/{leased['id']}/complete", json=body)
            except httpx.TransportError as exc:
                ledger.broken[leased["id"]] = type(exc).__name__
                return
            record(ledger, leased["id"], response)
            if response.is_success:
                on_ack(len(ledger.acked))
            if pace:
                await asyncio.sleep(pace)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(one(client, t) for t in tasks))
    return ledger


async def flood_completions(
    url: str, tasks: list[dict[str, Any]], *, in_flight: int, on_ack: Callable[[int], None]
) -> Ledger:
    """Keep `in_flight` completions at the server at every moment, each on its own
    connection (raw HTTP/1.1: an httpx pool this large spends more CPU than the server,
    so the server would never hold many requests at once)."""
    ledger = Ledger()
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    backlog = list(reversed(tasks))

    async def slot() -> None:
        while backlog:
            leased = backlog.pop()
            await send_one(host, port, leased, ledger, on_ack)

    await asyncio.gather(*(slot() for _ in range(in_flight)))
    return ledger


async def send_one(
    host: str, port: int, leased: dict[str, Any], ledger: Ledger, on_ack: Callable[[int], None]
) -> None:
    key = leased["id"]
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        ledger.broken[key] = NEVER_SENT  # the server was already gone
        return
    try:
        writer.write(raw_completion(host, port, leased))
        await writer.drain()
        status, problem = parse_raw_response(await reader.read())
    except OSError:
        status, problem = None, False
    finally:
        writer.close()
    if status is None:
        ledger.broken[key] = CUT_OFF  # sent; the server died before answering
    elif 200 <= status < 300:
        ledger.acked[key] = time.time()
        on_ack(len(ledger.acked))
    else:
        ledger.refused[key] = status
        if not problem:
            ledger.malformed.append(f"{status} without a problem+json body")


def raw_completion(host: str, port: int, leased: dict[str, Any]) -> bytes:
    body = json.dumps(
        {"lease_token": leased["lease_token"], "result_ref": f"ref/{leased['name']}"}
    ).encode()
    head = (
        f"POST /tasks/{leased['id']}/complete HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def parse_raw_response(raw: bytes) -> tuple[int | None, bool]:
    """(status, is problem+json) of a complete HTTP/1.1 response, (None, False) when the
    connection closed before the whole response arrived."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, False
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if int(headers.get("content-length", "-1")) != len(body):
        return None, False
    problem = headers.get("content-type", "").startswith("application/problem+json")
    return int(lines[0].split()[1]), problem


def record(ledger: Ledger, key: str, response: httpx.Response) -> None:
    if response.is_success:
        ledger.acked[key] = time.time()
        return
    ledger.refused[key] = response.status_code
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        ledger.malformed.append(f"{response.status_code} {response.text[:200]}")


def check_after_restart(
    url: str, scenario_id: str, acked: dict[str, float]
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(lost, problems, handed_out): acknowledged completions that are not `success`;
    broken invariants (counters that disagree with the tasks, a finished task still in a
    queue); and whatever a lease of every queue handed out (to be finished by the caller)."""
    body = scenario(url, scenario_id)
    by_name = statuses(body)
    prefix = f"{scenario_id}:"
    lost = [task_id for task_id in acked if by_name[task_id.removeprefix(prefix)] != "success"]
    problems = progress_matches_tasks(body)
    stats = queues(url)
    handed_out: list[dict[str, Any]] = []
    for service in sorted({t["service"] for t in body["tasks"]}):
        names = [t["name"] for t in body["tasks"] if t["service"] == service]
        queued = sum(1 for n in names if by_name[n] == "queued")
        ready = stats[service]["ready"] + stats[service]["delayed"] if service in stats else 0
        if ready != queued:
            problems.append(f"{service}: queue holds {ready}, {queued} tasks are queued")
        for leased in lease(url, service, max_tasks=1000, lease_seconds=600):
            handed_out.append(leased)
            if by_name.get(leased["name"]) != "queued":
                problems.append(f"{leased['name']} is {by_name.get(leased['name'])}, was leased")
    return lost, problems, handed_out


def finish_scenario(url: str, scenario_id: str, leased: list[dict[str, Any]]) -> bool:
    """Re-send every completion with its original token, in batches (at-least-once: a
    repeat of an applied completion is a duplicate, answered ok), then run whatever that
    released; True once the scenario succeeded."""
    pending = list(leased)
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while pending:
            for start in range(0, len(pending), 500):
                items = [
                    {"id": t["id"], "lease_token": t["lease_token"], "result_ref": "ref/again"}
                    for t in pending[start : start + 500]
                ]
                response = client.post("/tasks/complete", json={"items": items})
                if not response.is_success or not all(o["ok"] for o in response.json()["outcomes"]):
                    return False
            pending = lease(url, "join-service", max_tasks=10, lease_seconds=600)
    return bool(scenario(url, scenario_id)["status"] == "success")


def prepare_fan_in(server: ServerProcess, jobs: int) -> tuple[str, list[dict[str, Any]]]:
    """A FanIn scenario with every job leased (long leases: no expiry during the drill)."""
    scenario_id = submit(server.url, "FanIn", {"n": jobs})["scenario_id"]
    leased = lease(server.url, "test-service", max_tasks=jobs, lease_seconds=600)
    assert len(leased) == jobs, f"leased {len(leased)} of {jobs}"
    return scenario_id, leased


async def api_kill_drill(
    server: ServerProcess, *, jobs: int, in_flight: int, kill_after: int
) -> CrashReport:
    """`jobs` completions, `in_flight` at a time; SIGKILL the API after `kill_after` acks;
    restart it on the same store and check what it remembers."""
    scenario_id, leased = prepare_fan_in(server, jobs)

    def pull_trigger(acks: int) -> None:
        if acks == kill_after:
            server.kill()

    ledger = await flood_completions(server.url, leased, in_flight=in_flight, on_ack=pull_trigger)
    killed_at = time.time()
    server.start()
    lost, problems, handed_out = check_after_restart(server.url, scenario_id, ledger.acked)
    return CrashReport(
        tried=ledger.tried,
        acked=len(ledger.acked),
        unacknowledged=len(ledger.broken),
        refused_statuses=count_values(ledger.refused),
        lost=lost,
        lost_ack_ages=[killed_at - ledger.acked[t] for t in lost],
        invariant_problems=problems + ledger.malformed,
        finished_after_restart=finish_scenario(server.url, scenario_id, leased + handed_out),
        cut_off=sum(1 for why in ledger.broken.values() if why == CUT_OFF),
    )


async def redis_kill_drill(
    server: ServerProcess, redis: RedisServer, *, jobs: int, kill_after: int
) -> CrashReport:
    """Completions paced through one Redis; SIGKILL Redis after `kill_after` acks; the API
    keeps running and must answer 503 until Redis is back, then recover on its own."""
    scenario_id, leased = prepare_fan_in(server, jobs)
    killed: list[float] = []

    def pull_trigger(acks: int) -> None:
        if acks == kill_after:
            redis.kill()
            killed.append(time.time())

    ledger = await send_completions(
        server.url, leased, concurrency=8, on_ack=pull_trigger, pace=0.002
    )
    outage = await outage_answers(server.url)
    redis.start()
    recovery = server.wait_healthy(timeout=30.0)
    lost, problems, handed_out = check_after_restart(server.url, scenario_id, ledger.acked)
    killed_at = killed[0] if killed else time.time()
    return CrashReport(
        tried=ledger.tried,
        acked=len(ledger.acked),
        unacknowledged=len(ledger.broken),
        refused_statuses=count_values(ledger.refused),
        lost=lost,
        lost_ack_ages=[killed_at - ledger.acked[t] for t in lost],
        invariant_problems=problems + ledger.malformed,
        finished_after_restart=finish_scenario(server.url, scenario_id, leased + handed_out),
        recovery_seconds=recovery,
        outage_answers=outage,
    )


async def outage_answers(url: str) -> dict[int, int]:
    """Status codes of a read, a health check and a write while the store is down."""
    answers: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        calls: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: client.get("/health"),
            lambda: client.post("/generate", json={"scenario": "Jobs", "n": 1}),
            lambda: client.get("/queues"),
        ]
        for call in calls:
            response = await call()
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
            if not response.headers.get("content-type", "").startswith("application/problem"):
                answers[-1] = answers.get(-1, 0) + 1  # -1 counts non-problem bodies
    return answers


def count_values(values: dict[str, int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in values.values():
        counts[value] = counts.get(value, 0) + 1
    return counts
