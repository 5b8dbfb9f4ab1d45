"""Encoding of records between the domain types and their Redis form.

Task record (one JSON string per task in the scenario's tasks hash; short field names
keep a finished task small). Times are strings holding an exact float (Python `repr`,
Lua `%.17g`) because Lua's JSON encoder keeps only 14 digits; payload and result are
JSON *strings* so the scripts store them verbatim and never re-encode user data:

    i plan index  v service  p payload(json)  d depends_on  D dependents  l level
    s status  a attempt  m max_attempts  o timeout  n parents not yet succeeded
    c created_at  av available_at  q queued_at  sa started_at  f finished_at
    k lease token  e lease_expires_at  ls lease_seconds  w worker id  r result_ref
    R result(json)  E error  u usage (name -> exact float text, core/usage.py)
    R result(json)  E error  j successes needed among the parents (join; absent: all)
    op optional (true or absent)  tl failure tolerated (true or absent)
    ck concurrency key  cl its limit (both absent without `concurrency`, core/gates.py)

Scenario hash: "tol" counts its tolerated failures (no "#": it is not a status counter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from scenarist.core.errors import ParamError
from scenarist.core.lifecycle import count_progress
from scenarist.core.model import (
    JSON,
    Event,
    Progress,
    Scenario,
    ScenarioStatus,
    Task,
    TaskStatus,
)

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_INDEX_MEMBER = re.compile(r"^\d{10}\.\d{6}\|[^|]+$")
_OPTIONAL_TIMES = {
    "available_at": "av",
    "queued_at": "q",
    "started_at": "sa",
    "finished_at": "f",
    "lease_expires_at": "e",
    "lease_seconds": "ls",
}


def dump_json(value: JSON) -> str:
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def load_json(raw: str | bytes) -> Any:
    return orjson.loads(raw)


def ts(value: float) -> str:
    """An exact, round-tripping text form of a time (or duration)."""
    return repr(float(value))


def opt(value: str | float | None) -> str:
    """Optional script argument: "" for None, "+" followed by the value otherwise."""
    if value is None:
        return ""
    return "+" + (ts(value) if isinstance(value, float | int) else value)


def _time(raw: str | None) -> float | None:
    return None if raw is None else float(raw)


def encode_task(task: Task, index: int, statuses: Mapping[str, TaskStatus]) -> str:
    waiting = sum(1 for p in set(task.depends_on) if statuses.get(p) is not TaskStatus.SUCCESS)
    record: dict[str, JSON] = {
        "i": index,
        "v": task.service,
        "p": dump_json(task.payload),
        "d": list(task.depends_on),
        "D": list(task.dependents),
        "l": task.level,
        "s": str(task.status),
        "a": task.attempt,
        "m": task.max_attempts,
        "o": ts(task.timeout_seconds),
        "n": waiting,
        "c": ts(task.created_at),
    }
    for attr, short in _OPTIONAL_TIMES.items():
        value = getattr(task, attr)
        if value is not None:
            record[short] = ts(value)
    extras = {"k": task.lease_token, "w": task.worker_id, "r": task.result_ref, "E": task.error}
    record.update({k: v for k, v in extras.items() if v is not None})
    if task.result is not None:
        record["R"] = dump_json(task.result)
    if task.need is not None:
        record["j"] = task.need
    if task.optional:
        record["op"] = True
    if task.concurrency_key is not None:
        record["ck"] = task.concurrency_key
        record["cl"] = task.concurrency_limit
    return dump_json(record)


def _names(value: Any) -> tuple[str, ...]:
    # Lua's JSON encoder writes an empty list as {}: both mean "no names".
    return tuple(value) if isinstance(value, list) else ()


_STATUSES = {str(status): status for status in TaskStatus}  # faster than TaskStatus(raw)


def decode_task(scenario_id: str, name: str, raw: str, inputs: str | None = None) -> Task:
    # Every leased and completed task passes here: plain lookups and keyword arguments
    # spelled out (no per-call dict of optional times) keep it cheap.
    r = load_json(raw)
    get = r.get
    result, av, q, sa, f, e = get("R"), get("av"), get("q"), get("sa"), get("f"), get("e")
    ls, usage = get("ls"), get("u")
    return Task(
        id=f"{scenario_id}:{name}",
        scenario_id=scenario_id,
        name=name,
        service=r["v"],
        payload=load_json(r["p"]),
        depends_on=_names(get("d")),
        dependents=_names(get("D")),
        level=int(r["l"]),
        status=_STATUSES[r["s"]],
        attempt=int(r["a"]),
        max_attempts=int(r["m"]),
        timeout_seconds=float(r["o"]),
        created_at=float(r["c"]),
        available_at=None if av is None else float(av),
        queued_at=None if q is None else float(q),
        started_at=None if sa is None else float(sa),
        finished_at=None if f is None else float(f),
        lease_expires_at=None if e is None else float(e),
        lease_seconds=None if ls is None else float(ls),
        lease_token=get("k"),
        worker_id=get("w"),
        result_ref=get("r"),
        result=None if result is None else load_json(result),
        error=get("E"),
        # Lua writes an empty table as [], so only a non-empty object is usage.
        usage={n: float(v) for n, v in usage.items()} if isinstance(usage, dict) else None,
        inputs=tuple(load_json(inputs)) if inputs else (),
        need=get("j"),
        optional=bool(get("op")),
        tolerated=bool(get("tl")),
        concurrency_key=get("ck"),
        concurrency_limit=get("cl"),
    )


def task_index(raw: str) -> int:
    return int(load_json(raw)["i"])


# --- scenarios ----------------------------------------------------------------------------


def index_member(created_at: float, scenario_id: str) -> str:
    """Scenario index entries sort newest-first by lex order: fixed-width time, then id."""
    return f"{created_at:017.6f}|{scenario_id}"


def check_cursor(cursor: str) -> str:
    if not _INDEX_MEMBER.match(cursor):
        raise ParamError(f"malformed cursor {cursor!r}", field="cursor")
    return cursor


def member_scenario_id(member: str) -> str:
    return member.partition("|")[2]


def scenario_fields(scenario: Scenario, tasks: Sequence[Task]) -> dict[str, str]:
    """The scenario hash at creation: descriptive fields plus the status counters the
    scripts keep up to date ("#<status>" and "<service>#<status>")."""
    fields = {
        "tpl": scenario.template,
        "par": dump_json(scenario.params),
        "ca": ts(scenario.created_at),
        "n": str(len(tasks)),
        "ixm": index_member(scenario.created_at, scenario.id),
    }
    if scenario.idempotency_key is not None:
        fields["ik"] = scenario.idempotency_key
    if scenario.callback_url is not None:
        fields["cb"] = scenario.callback_url
    if scenario.request_digest is not None:
        fields["request_digest"] = scenario.request_digest
    if scenario.started_at is not None:
        fields["sa"] = ts(scenario.started_at)
    if scenario.traceparent is not None:
        fields["tp"] = scenario.traceparent
    progress = count_progress((t.service, t.status) for t in tasks)
    for status, n in progress.by_status.items():
        fields[f"#{status}"] = str(n)
    for service, counts in progress.by_service.items():
        for status, n in counts.items():
            fields[f"{service}#{status}"] = str(n)
    return fields


def _progress(fields: Mapping[str, str]) -> Progress:
    by_status = dict.fromkeys(TaskStatus, 0)
    by_service: dict[str, dict[TaskStatus, int]] = {}
    for field, value in fields.items():
        service, sep, status = field.rpartition("#")
        if not sep:
            continue
        if service:
            by_service.setdefault(service, dict.fromkeys(TaskStatus, 0))[TaskStatus(status)] = int(
                value
            )
        else:
            by_status[TaskStatus(status)] = int(value)
    return Progress(total=int(fields["n"]), by_status=by_status, by_service=by_service)


def decode_scenario(scenario_id: str, fields: Mapping[str, str]) -> Scenario:
    return Scenario(
        id=scenario_id,
        template=fields["tpl"],
        params=load_json(fields["par"]),
        status=ScenarioStatus(fields["st"]),
        progress=_progress(fields),
        created_at=float(fields["ca"]),
        started_at=_time(fields.get("sa")),
        finished_at=_time(fields.get("fa")),
        cancelled=fields.get("cx") == "1",
        idempotency_key=fields.get("ik"),
        callback_url=fields.get("cb"),
        request_digest=fields.get("request_digest"),
        traceparent=fields.get("tp"),
        tolerated_failures=int(fields.get("tol") or 0),
    )


def decode_event(scenario_id: str, entry_id: str, fields: Mapping[str, str]) -> Event:
    return Event(
        id=entry_id,
        scenario_id=scenario_id,
        at=float(fields["at"]),
        task=fields["n"] or None,
        status=fields["s"],
        attempt=int(fields["a"]),
    )
