"""Load-time checks of the scheduling keys: the catalog's `services` (a list of names, or
a mapping of name to `{max_in_flight, rate_limit: {per_second, burst}}`), its `tenants`
(a mapping of name to `{weight, max_in_flight}`) and a task's `concurrency: {key,
limit}`. Every error names the file, the line and the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from scenarist.core.catalog_problems import Problems
from scenarist.core.catalog_where import (
    Where,
    check_keys,
    field_where,
    line_of,
    positive_int,
    positive_number,
)
from scenarist.core.gates import RateLimit, ServiceGate
from scenarist.core.render import CompiledLeaf
from scenarist.core.template import Concurrency
from scenarist.core.tenants import TenantPolicy

SERVICE_KEYS = frozenset({"max_in_flight", "rate_limit"})
TENANT_KEYS = frozenset({"weight", "max_in_flight"})
MIN_WEIGHT, MAX_WEIGHT = 0.001, 1000.0
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RATE_KEYS = frozenset({"per_second", "burst"})
CONCURRENCY_KEYS = frozenset({"key", "limit"})


def parse_services(
    where: Where, raw: object, problems: Problems
) -> tuple[tuple[str, ...], dict[str, ServiceGate]]:
    """The declared service names and the gates of those that have any."""
    if isinstance(raw, list):
        if not all(isinstance(s, str) and s for s in raw):
            where.fail("'services' must be a list of service names or a mapping")
        return tuple(raw), {}
    if not isinstance(raw, Mapping):
        where.fail("'services' must be a list of service names or a mapping")
    names: list[str] = []
    gates: dict[str, ServiceGate] = {}
    for name, spec in raw.items():
        at = where.at(line_of(raw, name))
        with problems.recover():
            if not isinstance(name, str) or not name:
                at.fail(f"service name {name!r} must be a non-empty string")
            names.append(name)
            gate = _service_gate(at, name, spec, problems)
            if gate != ServiceGate():
                gates[name] = gate
    return tuple(names), gates


def _service_gate(where: Where, name: str, raw: object, problems: Problems) -> ServiceGate:
    if raw is None:
        return ServiceGate()
    if not isinstance(raw, Mapping):
        where.fail(f"service {name!r}: must be a mapping with max_in_flight and/or rate_limit")
    check_keys(where, raw, SERVICE_KEYS, f"service {name!r}", problems)
    at = partial(field_where, where, raw)
    cap = None
    if raw.get("max_in_flight") is not None:
        field = f"services.{name}.max_in_flight"
        cap = problems.checked(
            partial(positive_int, at("max_in_flight"), raw["max_in_flight"], field), None
        )
    rate = None
    if raw.get("rate_limit") is not None:
        rate = problems.checked(
            partial(_rate_limit, at("rate_limit"), name, raw["rate_limit"], problems), None
        )
    return ServiceGate(cap, rate)


def _rate_limit(where: Where, name: str, raw: object, problems: Problems) -> RateLimit:
    field = f"services.{name}.rate_limit"
    if not isinstance(raw, Mapping):
        where.fail(f"{field!r} must be a mapping {{per_second, burst}}")
    check_keys(where, raw, RATE_KEYS, field, problems)
    if "per_second" not in raw:
        where.fail(f"{field!r} needs 'per_second'")
    at = partial(field_where, where, raw)
    per_second = positive_number(at("per_second"), raw["per_second"], f"{field}.per_second")
    # One lease takes one token a task: a bucket must hold at least one. Without `burst`,
    # the bucket holds one second's worth (at least one token).
    burst = raw.get("burst")
    if burst is None:
        return RateLimit(per_second, max(1, int(per_second)))
    return RateLimit(per_second, positive_int(at("burst"), burst, f"{field}.burst"))


def parse_concurrency(where: Where, raw: object, compile_leaf: Any) -> Concurrency:
    """`compile_leaf(where, source, path)` compiles the key template (syntax errors named)."""
    if not isinstance(raw, Mapping):
        where.fail("'concurrency' must be a mapping {key, limit}")
    unknown = sorted(str(k) for k in raw if k not in CONCURRENCY_KEYS)
    if unknown:
        where.fail(f"unknown key {unknown[0]!r} in concurrency; allowed: key, limit")
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        where.fail(f"'concurrency.key' must be a non-empty string or template, got {key!r}")
    limit = positive_int(field_where(where, raw, "limit"), raw.get("limit"), "concurrency.limit")
    leaf: CompiledLeaf = compile_leaf(field_where(where, raw, "key"), key, "concurrency.key")
    return Concurrency(leaf if leaf.template is not None else key, limit)


def parse_tenants(where: Where, raw: object, problems: Problems) -> dict[str, TenantPolicy]:
    """The catalog's tenants: name -> `{weight (default 1), max_in_flight}` (decision 79)."""
    if not isinstance(raw, Mapping) or not raw:
        where.fail("'tenants' must be a mapping of tenant name to {weight, max_in_flight}")
    tenants: dict[str, TenantPolicy] = {}
    for name, spec in raw.items():
        at = where.at(line_of(raw, name))
        with problems.recover():
            if not isinstance(name, str) or not TENANT_NAME.match(name):
                at.fail(f"tenant name {name!r} must match {TENANT_NAME.pattern}")
            tenants[name] = _tenant(at, name, spec, problems)
    return tenants


def _tenant(where: Where, name: str, raw: object, problems: Problems) -> TenantPolicy:
    if raw is None:
        return TenantPolicy()
    if not isinstance(raw, Mapping):
        where.fail(f"tenant {name!r}: must be a mapping with weight and/or max_in_flight")
    check_keys(where, raw, TENANT_KEYS, f"tenant {name!r}", problems)
    at = partial(field_where, where, raw)
    weight = 1.0
    if raw.get("weight") is not None:
        weight = positive_number(at("weight"), raw["weight"], f"tenants.{name}.weight")
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            # Far apart, the passes of two tenants stop being comparable in a float.
            at("weight").fail(
                f"'tenants.{name}.weight' must be between {MIN_WEIGHT} and {MAX_WEIGHT:g}, "
                f"got {weight:g}"
            )
    cap = None
    if raw.get("max_in_flight") is not None:
        field = f"tenants.{name}.max_in_flight"
        cap = positive_int(at("max_in_flight"), raw["max_in_flight"], field)
    return TenantPolicy(float(weight), cap)
