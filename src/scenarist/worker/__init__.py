"""Python worker SDK: lease tasks of a service over HTTP, run a handler, report back.

from scenarist.worker import TaskResult, Worker, WorkerTask

worker = Worker("http://127.0.0.1:8001")

@worker.handler("image-service")
def draw(task: WorkerTask) -> TaskResult:
    return TaskResult(result_ref="s3://bucket/slide.png", result={"mime": "image/png"})

worker.run()

The names below are imported on first use (PEP 562), so that importing one SDK module,
such as `scenarist.worker.errors`, does not load the whole SDK and its HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarist.worker.client import (
        AsyncScenaristClient,
        CompletionItem,
        LeasedTask,
        ScenaristClient,
    )
    from scenarist.worker.errors import (
        ApiError,
        AuthError,
        ClientError,
        Fatal,
        LeaseLostError,
        NotFoundError,
        Retryable,
        ServerUnreachableError,
    )
    from scenarist.worker.loop import WorkerStats
    from scenarist.worker.protocol import SubmitItem
    from scenarist.worker.task import TaskResult, WorkerTask
    from scenarist.worker.worker import Worker

__all__ = [
    "ApiError",
    "AsyncScenaristClient",
    "AuthError",
    "ClientError",
    "CompletionItem",
    "Fatal",
    "LeaseLostError",
    "LeasedTask",
    "NotFoundError",
    "Retryable",
    "ScenaristClient",
    "ServerUnreachableError",
    "SubmitItem",
    "TaskResult",
    "Worker",
    "WorkerStats",
    "WorkerTask",
]

_MODULE_OF = {
    **dict.fromkeys(
        ("AsyncScenaristClient", "CompletionItem", "LeasedTask", "ScenaristClient"),
        "scenarist.worker.client",
    ),
    "SubmitItem": "scenarist.worker.protocol",
    **dict.fromkeys(
        (
            "ApiError",
            "AuthError",
            "ClientError",
            "Fatal",
            "LeaseLostError",
            "NotFoundError",
            "Retryable",
            "ServerUnreachableError",
        ),
        "scenarist.worker.errors",
    ),
    "WorkerStats": "scenarist.worker.loop",
    "TaskResult": "scenarist.worker.task",
    "WorkerTask": "scenarist.worker.task",
    "Worker": "scenarist.worker.worker",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
