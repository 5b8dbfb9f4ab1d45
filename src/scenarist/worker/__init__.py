"""Python worker SDK: lease tasks of a service over HTTP, run a handler, report back.

from scenarist.worker import TaskResult, Worker, WorkerTask

worker = Worker("http://127.0.0.1:8001")

@worker.handler("image-service")
def draw(task: WorkerTask) -> TaskResult:
    return TaskResult(result_ref="s3://bucket/slide.png", result={"mime": "image/png"})

worker.run()
"""

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
    "TaskResult",
    "Worker",
    "WorkerStats",
    "WorkerTask",
]
