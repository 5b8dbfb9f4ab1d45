"""Usage a worker reports with a completion or a failure (`{"gpu_seconds": 12.5,
"cost_usd": 0.031, "tokens": 812}`): what each report may hold, how a task's reports add
up over its attempts, and the hourly totals every store keeps beside the tasks.

A task's `usage` is the sum of every report of every attempt (failed ones too, and the
runs before a scenario retry): the cost of a task is what all its attempts cost. Each
report also goes into the store's totals, keyed by the hour it was reported in, the
scenario's template, the task's service and the usage name, in the same atomic step as
the completion or failure; a duplicate completion changes nothing, so nothing counts twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scenarist.core.errors import ParamError

Usage = Mapping[str, float]

MAX_USAGE_NAMES = 16  # names in one report
MAX_USAGE_VALUE = 1e15  # one reported amount; sums stay exact far beyond any real bill
USAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a Prometheus-friendly label value
USAGE_HOUR_SECONDS = 3600.0  # the totals' resolution: `since` is rounded down to its hour
DEFAULT_TENANT = "default"  # every total belongs to it until scenarios carry a tenant


def check_usage(raw: object, field: str = "usage") -> dict[str, float] | None:
    """A report as stored (values as floats), None for an absent or empty one; a
    ParamError names the first bad entry (`usage.<name>`)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ParamError(f"{field} must be an object of names to numbers", field=field)
    if len(raw) > MAX_USAGE_NAMES:
        raise ParamError(
            f"{field} has {len(raw)} names; at most {MAX_USAGE_NAMES} are allowed", field=field
        )
    checked: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not USAGE_NAME.match(name):
            raise ParamError(
                f"{field} name {name!r} must be lower-case letters, digits and _ "
                "(starting with a letter, at most 63 characters)",
                field=f"{field}.{name}",
            )
        checked[name] = _amount(value, f"{field}.{name}")
    return checked or None


def _amount(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"{field} must be a number", field=field)
    if isinstance(value, int) and abs(value) > MAX_USAGE_VALUE:
        raise ParamError(f"{field} must be at most {MAX_USAGE_VALUE:g}", field=field)
    amount = float(value)
    if not math.isfinite(amount) or amount < 0:
        raise ParamError(f"{field} must be a finite number >= 0, got {value!r}", field=field)
    if amount > MAX_USAGE_VALUE:
        raise ParamError(f"{field} must be at most {MAX_USAGE_VALUE:g}", field=field)
    return amount


def add_usage(current: Usage | None, reported: Usage | None) -> dict[str, float] | None:
    """`current` plus `reported`, name by name (the stores mirror this addition: Lua adds
    the same doubles in the same order)."""
    if not reported:
        return None if current is None else dict(current)
    total = dict(current or {})
    for name, amount in reported.items():
        total[name] = total.get(name, 0.0) + amount
    return total


def sum_usage(reports: Iterable[Usage | None]) -> dict[str, float]:
    """Several tasks' usage added up (a scenario's usage is its tasks' sum)."""
    total: dict[str, float] = {}
    for usage in reports:
        total = add_usage(total, usage) or {}
    return total


def usage_hour(now: float) -> float:
    """The start of the hour a report falls in (the key of its totals)."""
    return math.floor(now / USAGE_HOUR_SECONDS) * USAGE_HOUR_SECONDS


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """One row of a store's totals: everything reported for `name` by tasks of `service`
    in scenarios of `template` during the hour starting at `hour`."""

    hour: float
    template: str
    service: str
    name: str
    value: float


def group_totals(totals: Iterable[UsageTotal], group_by: str) -> dict[str, dict[str, float]]:
    """Totals added up per tenant, service or template (sorted by key). Scenarios carry
    no tenant yet, so every total is the default tenant's."""
    groups: dict[str, dict[str, float]] = {}
    for total in totals:
        if group_by == "tenant":
            key = DEFAULT_TENANT
        elif group_by == "service":
            key = total.service
        elif group_by == "template":
            key = total.template
        else:
            raise ParamError(
                f"group_by must be tenant, service or template, got {group_by!r}",
                field="group_by",
            )
        group = groups.setdefault(key, {})
        group[total.name] = group.get(total.name, 0.0) + total.value
    return dict(sorted(groups.items()))
