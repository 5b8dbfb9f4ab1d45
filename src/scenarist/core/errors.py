"""The one exception hierarchy. `api/problems.py` maps each class to problem+json.

Every error carries a stable machine `code` (used as the problem `type` suffix), a human
message, and where it makes sense the offending `field`. Core knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence


class ScenaristError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- catalog and templates --------------------------------------------------------------


class CatalogError(ScenaristError):
    """A scenario catalog is invalid. The message names file, scenario and task.

    One load reports every problem it finds: `errors` holds them all in file order, and
    the message is the first one's (with a count of the others)."""

    code = "invalid-catalog"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        scenario: str | None = None,
        task: str | None = None,
    ) -> None:
        where = ":".join(p for p in (file, str(line) if line else None) if p)
        parts = [
            p
            for p in (where, scenario and f"scenario {scenario!r}", task and f"task {task!r}")
            if p
        ]
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.problem = message
        self.file, self.line, self.scenario, self.task = file, line, scenario, task
        self.errors: tuple[CatalogError, ...] = (self,)

    @classmethod
    def collect(cls, errors: Sequence[CatalogError]) -> CatalogError:
        """One error for all of `errors`, ordered by line (a stable sort: problems on one
        line keep the order they were found in)."""
        ordered = sorted((e for error in errors for e in error.errors), key=lambda e: e.line or 0)
        first = ordered[0]
        if len(ordered) == 1:
            return first
        more = len(ordered) - 1
        combined = cls(
            f"{first.problem} (and {more} more problem{'s' if more != 1 else ''})",
            file=first.file,
            line=first.line,
            scenario=first.scenario,
            task=first.task,
        )
        combined.errors = tuple(ordered)
        return combined

    def lines(self) -> list[str]:
        """One line per problem, in file order."""
        return [error.message for error in self.errors]


class UnknownScenarioError(ScenaristError):
    code = "unknown-scenario"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown scenario {name!r}; known: {', '.join(known) or '(none)'}", field="scenario"
        )
        self.name = name


class ParamError(ScenaristError):
    """A request parameter is missing, unknown, of the wrong type or out of bounds."""

    code = "invalid-param"

    def __init__(
        self, message: str, *, field: str | None = None, fields: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, field=field)
        self.fields = fields or ((field,) if field is not None else ())

    @classmethod
    def every(cls, errors: list[ParamError]) -> ParamError:
        """One error naming every bad parameter, in the order they were found."""
        if len(errors) == 1:
            return errors[0]
        fields = tuple(f for e in errors for f in e.fields)
        return cls("; ".join(e.message for e in errors), field=fields[0], fields=fields)


class RenderError(ScenaristError):
    """Rendering a template failed or exceeded its bounds (size, time, operation limits)."""

    code = "render-failed"


class NotRunnableError(ScenaristError):
    """The template is valid and can be planned (graph, dry run), but uses a key this
    server does not run yet; it is refused rather than run with the key ignored."""

    code = "not-runnable"


class BadGroupResultError(ScenaristError):
    """A completion's result does not give its dependent group a list (or gives too long
    a list): refused, nothing changes; the worker can fix the result or fail the task."""

    code = "bad-group-result"


class ExpansionRequiredError(ScenaristError):
    """A completion releases a `for_each` group, but the caller rendered no instances for
    it (another parent finished in between): the service renders them and repeats."""

    code = "expansion-required"

    def __init__(self, task: str, group: str) -> None:
        super().__init__(
            f"completing task {task!r} expands group {group!r}, whose instances were not rendered",
            field="result",
        )
        self.group = group


# --- persisted state --------------------------------------------------------------------


class NotFoundError(ScenaristError):
    code = "not-found"


class ScenarioNotFoundError(NotFoundError):
    code = "scenario-not-found"

    def __init__(self, scenario_id: str) -> None:
        super().__init__(f"no scenario with id {scenario_id!r}", field="scenario_id")
        self.scenario_id = scenario_id


class ArtefactNotFoundError(NotFoundError):
    code = "artefact-not-found"

    def __init__(self, path: str) -> None:
        super().__init__(f"no artefact {path!r} to show", field="path")


class TaskNotFoundError(NotFoundError):
    code = "task-not-found"

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}", field="task_id")
        self.task_id = task_id


class ConflictError(ScenaristError):
    """The request is well formed but the task or scenario is not in a state that allows it."""

    code = "conflict"

    def __init__(
        self, message: str, *, current_status: str | None = None, field: str | None = None
    ):
        super().__init__(message, field=field)
        self.current_status = current_status


class ParallelLimitError(ConflictError):
    """A claim (the seed's PATCH processing) of a task whose `max_parallel` group already
    has that many tasks processing: refused, nothing changes; claim it once one ends."""

    code = "max-parallel-reached"

    def __init__(self, task_id: str, group: str, limit: int) -> None:
        super().__init__(
            f"task {task_id!r}: group {group!r} already has {limit} task(s) processing "
            f"(max_parallel {limit}); claim it once one of them ends",
            current_status="queued",
            field="status",
        )


class StaleLeaseError(ConflictError):
    """The lease token does not match the task's current lease: the task was re-leased,
    finished, cancelled or reaped. Nothing was changed."""

    code = "stale-lease"

    def __init__(self, task_id: str, current_status: str) -> None:
        super().__init__(
            f"lease token of task {task_id!r} is not current (task is {current_status})",
            current_status=current_status,
            field="lease_token",
        )
        self.task_id = task_id


class IllegalTransitionError(ConflictError):
    code = "illegal-transition"

    def __init__(self, task_id: str, current_status: str, requested: str) -> None:
        super().__init__(
            f"task {task_id!r} is {current_status}; cannot change it to {requested}",
            current_status=current_status,
            field="status",
        )
        self.task_id = task_id
        self.requested = requested


class IdempotencyKeyReusedError(ScenaristError):
    """An idempotency key came back with a different request than the one it was first
    used with: replaying the first scenario would silently drop the new request."""

    code = "idempotency-key-reused"

    def __init__(self, key: str, scenario_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used for scenario {scenario_id!r} with a different "
            "request (template, parameters or callback_url); use a new key for a new request",
            field="Idempotency-Key",
        )
        self.key = key
        self.scenario_id = scenario_id


class StoreUnavailableError(ScenaristError):
    """The backing store cannot be reached; the request may be retried later."""

    code = "store-unavailable"
