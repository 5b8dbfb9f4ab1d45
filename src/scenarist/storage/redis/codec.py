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
    j successes needed among the parents (join; absent: all)
    op optional (true or absent)  tl failure tolerated (true or absent)
    rn run (absent: 1)  rs runs its history shows (absent: 1)  nc no_cache (true or absent)
    G an unexpanded for_each group's spec (json)  Z the upstream group it zips with
    J below a group: its join (json), turned into j at expansion
    mp max_parallel  pg its parallel group (the template task id)
    ct cache lifetime (seconds; absent: not cached)  cb its service+payload digest
    ck cache key it was looked up with  ch its success came from the cache (true or
    absent)  cf the task it was copied from  rd result digest of a success
    (core/step_cache.py; `nc`, a forced miss, is read as `no_cache`)
    kk concurrency key  kl its limit (both absent without `concurrency`, core/gates.py)
    ln priority lane (absent: normal; its queue priority is the lane's, decision 77)
    af affinity {requires, prefers, prefer_wait} (absent: any worker; core/affinity.py)
    tn tenant (absent: the default one; its ready queues are its own, decision 79)
    tf processing and counted in its tenant's tasks in flight P.."tf" (1 or absent)

Scenario hash: "tol" counts its tolerated failures, "g" its unexpanded live groups (the
total is still growing), "nx" the plan index the next instance takes (no "#": none of
them is a status counter), "hp" that it has max_parallel tasks, "mp:<group>" how many
tasks of that max_parallel group are processing, "tn" its tenant (absent: default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from scenarist.core.affinity import Affinity
from scenarist.core.errors import ParamError
from scenarist.core.lifecycle import count_progress
from scenarist.core.model import (
    DEFAULT_TENANT,
    JSON,
    Event,
    Lane,
    Progress,
    RunRecord,
    Scenario,
    ScenarioStatus,
    Task,
    TaskStatus,
)
from scenarist.core.step_cache import base_digest

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_INDEX_MEMBER = re.compile(r"^\d{10}\.\d{6}\|[^|]+$")


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
    # Every task of every submission passes here: attributes read one by one and the
    # optional fields tested inline (no per-call loop or dict of them) keep it cheap.
    parents = task.depends_on
    waiting = (
        sum(1 for p in set(parents) if statuses.get(p) is not TaskStatus.SUCCESS) if parents else 0
    )
    record: dict[str, JSON] = {
        "i": index,
        "v": task.service,
        "p": orjson.dumps(task.payload, option=_JSON_OPTIONS).decode(),
        "d": list(parents),
        "D": list(task.dependents),
        "l": task.level,
        "s": task.status.value,
        "a": task.attempt,
        "m": task.max_attempts,
        "o": repr(float(task.timeout_seconds)),
        "n": waiting,
        "c": repr(float(task.created_at)),
    }
    for short, value in (
        ("av", task.available_at),
        ("q", task.queued_at),
        ("sa", task.started_at),
        ("f", task.finished_at),
        ("e", task.lease_expires_at),
        ("ls", task.lease_seconds),
    ):
        if value is not None:
            record[short] = repr(float(value))
    for short, text in (
        ("k", task.lease_token),
        ("w", task.worker_id),
        ("r", task.result_ref),
        ("E", task.error),
    ):
        if text is not None:
            record[short] = text
    if task.result is not None:
        record["R"] = dump_json(task.result)
    if task.need is not None:
        record["j"] = task.need
    if task.optional:
        record["op"] = True
    if task.group_spec is not None:
        record["G"] = dump_json(task.group_spec)
        zipped = task.group_spec.get("zip")
        if zipped is not None:
            record["Z"] = zipped
    if task.join is not None:
        record["J"] = dump_json(task.join)
    if task.max_parallel is not None:
        record["mp"] = task.max_parallel
        record["pg"] = task.parallel_group
    if task.cache_ttl is not None:
        record["ct"] = task.cache_ttl
        record["cb"] = base_digest(task.service, task.payload)
    if task.concurrency_key is not None:
        record["kk"] = task.concurrency_key
        record["kl"] = task.concurrency_limit
    if task.lane is not Lane.NORMAL:  # absent: normal, as every record before lanes
        record["ln"] = task.lane.value
    if task.affinity is not None:
        record["af"] = task.affinity.to_json()
    if task.tenant != DEFAULT_TENANT:  # absent: default, as every record before tenants
        record["tn"] = task.tenant
    return dump_json(record)


def _names(value: Any) -> tuple[str, ...]:
    # Lua's JSON encoder writes an empty list as {}: both mean "no names".
    return tuple(value) if isinstance(value, list) else ()


_STATUSES = {str(status): status for status in TaskStatus}  # faster than TaskStatus(raw)
_LANES = {str(lane): lane for lane in Lane}


def decode_task(scenario_id: str, name: str, raw: str, inputs: str | None = None) -> Task:
    # Every leased and completed task passes here: plain lookups and keyword arguments
    # spelled out (no per-call dict of optional times) keep it cheap.
    r = load_json(raw)
    get = r.get
    result, av, q, sa, f, e = get("R"), get("av"), get("q"), get("sa"), get("f"), get("e")
    ls, usage, spec, join = get("ls"), get("u"), get("G"), get("J")
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
        run=int(get("rn") or 1),
        runs=int(get("rs") or 1),
        no_cache=bool(get("nc")),
        group_spec=None if spec is None else load_json(spec),
        join=None if join is None else load_json(join),
        max_parallel=get("mp"),
        parallel_group=get("pg"),
        cache_ttl=get("ct"),
        cache_key=get("ck"),
        cached=bool(get("ch")),
        lane=_LANES[get("ln") or "normal"],
        affinity=None if get("af") is None else Affinity.from_json(get("af")),
        tenant=get("tn") or DEFAULT_TENANT,
        cached_from=get("cf"),
        concurrency_key=get("kk"),
        concurrency_limit=get("kl"),
    )


def decode_runs(raw: str | None) -> list[RunRecord]:
    """A task's entry of the history hash (rerun.lua), newest first."""
    runs = [] if raw is None else load_json(raw)
    return [
        RunRecord(
            run=int(r["rn"]),
            attempt=int(r["a"]),
            status=_STATUSES[r["s"]],
            payload=load_json(r["p"]),
            worker_id=r.get("w"),
            queued_at=_time(r.get("q")),
            started_at=_time(r.get("sa")),
            finished_at=_time(r.get("f")),
            result_ref=r.get("r"),
            result=None if r.get("R") is None else load_json(r["R"]),
            error=r.get("E"),
        )
        for r in (runs if isinstance(runs, list) else [])
    ]


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
        "nx": str(len(tasks)),
        "g": str(sum(1 for t in tasks if t.dynamic and not t.status.is_final)),
        "ixm": index_member(scenario.created_at, scenario.id),
    }
    if any(t.max_parallel is not None or t.affinity is not None for t in tasks):
        fields["hp"] = "1"  # a lease may pass over its tasks (heads.lua on Redis Cluster)
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
    if scenario.lane is not Lane.NORMAL:
        fields["ln"] = scenario.lane.value
    if scenario.tenant != DEFAULT_TENANT:
        fields["tn"] = scenario.tenant
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
    # A service whose only task was an expanded group (its instances not created: an
    # empty list) keeps zero counters: it leaves the progress, as in a plan without it.
    by_service = {s: c for s, c in by_service.items() if any(c.values())}
    return Progress(
        total=int(fields["n"]),
        by_status=by_status,
        by_service=by_service,
        growing=int(fields.get("g") or 0) > 0,
    )


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
        lane=_LANES[fields.get("ln") or "normal"],
        tenant=fields.get("tn") or DEFAULT_TENANT,
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
