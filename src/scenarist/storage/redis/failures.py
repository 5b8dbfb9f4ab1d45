"""Map Redis failures and script outcomes onto the errors of core/errors.py."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scenarist.core.errors import (
    ConflictError,
    IllegalTransitionError,
    ScenarioNotFoundError,
    StaleLeaseError,
    StoreUnavailableError,
    TaskNotFoundError,
)
from scenarist.core.model import TaskStatus

UNAVAILABLE = (
    RedisConnectionError,  # includes BusyLoadingError (a restarted server loading its data)
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,  # a replica during failover
    OSError,
    # Redis Cluster: CLUSTERDOWN / master down during a failover, TRYAGAIN while a slot
    # migrates, too many redirects, no reachable node or an uncovered slot.
    ClusterError,
    TryAgainError,
    RedisClusterException,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def translate_errors(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Redis being down is StoreUnavailableError for the layers above (503, retry later)."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis is unavailable: {exc}") from exc

    return wrapper


def locate(task_id: str) -> tuple[str, str]:
    """(scenario id, task name) of a task id; a malformed id is simply an absent task."""
    scenario_id, sep, name = task_id.partition(":")
    if not sep or not scenario_id or not name:
        raise TaskNotFoundError(task_id)
    return scenario_id, name


def task_outcome_error(
    outcome: list[Any], task_id: str, requested: TaskStatus
) -> TaskNotFoundError | ConflictError | None:
    """The error a task script reported as its first reply element, if any."""
    code = outcome[0]
    if code == "notfound":
        return TaskNotFoundError(task_id)
    if code == "stale":
        return StaleLeaseError(task_id, outcome[1])
    if code == "illegal":
        return IllegalTransitionError(task_id, outcome[1], requested)
    return None


def check_task_outcome(outcome: list[Any], task_id: str, requested: TaskStatus) -> None:
    """Raise the error a task script reported as its first reply element."""
    error = task_outcome_error(outcome, task_id, requested)
    if error is not None:
        raise error


def check_control_outcome(outcome: list[Any], scenario_id: str, action: str) -> None:
    """Raise the error cancel.lua / retry.lua reported."""
    if outcome[0] == "notfound":
        raise ScenarioNotFoundError(scenario_id)
    if outcome[0] == "conflict":
        status = outcome[1]
        reason = "is already final" if action == "cancel" else "has no task to retry"
        raise ConflictError(
            f"cannot {action} scenario {scenario_id!r}: it {reason} (status {status})",
            current_status=status,
        )
