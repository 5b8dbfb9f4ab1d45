"""The blocking client's standard-library path against its httpx path: the same calls to
a real server give the same answers and the same errors, so the CLI's fast start-up path
cannot drift from the plain one. Plus what only the fast path does: no httpx import, a
response cap, an unreachable server as ServerUnreachableError."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scenarist.worker import ApiError, ScenaristClient, ServerUnreachableError
from scenarist.worker.blocking_transport import BlockingTransport
from scenarist.worker.errors import LeaseLostError, NotFoundError, ResponseTooLargeError
from tests.worker.server import LiveServer


def outcome(call: Callable[[], Any]) -> Any:
    """A call's answer, or its error as (type, status, problem type)."""
    try:
        return ("ok", call())
    except ApiError as exc:
        return ("error", type(exc).__name__, exc.status_code, exc.problem.get("type"))


def both(live_server: LiveServer) -> tuple[ScenaristClient, ScenaristClient]:
    fast = ScenaristClient(live_server.url)
    plain = ScenaristClient(live_server.url, transport=httpx.HTTPTransport())
    assert fast._fast is not None
    assert plain._fast is None
    return fast, plain


def test_the_fast_path_answers_as_the_httpx_path(live_server: LiveServer) -> None:
    fast, plain = both(live_server)
    with fast, plain:
        submitted = [c.submit("Jobs", {"n": 2, "label": "é ✓"}) for c in (fast, plain)]
        assert [len(s["tasks"]) for s in submitted] == [2, 2]
        ids = [s["scenario_id"] for s in submitted]
        for scenario_id in ids:  # either client reads either scenario the same way
            assert outcome(lambda i=scenario_id: fast.get_scenario(i)) == outcome(
                lambda i=scenario_id: plain.get_scenario(i)
            )
        assert outcome(fast.health) == outcome(plain.health)
        ages_apart = [  # the oldest ready task's age grows between the two calls
            [{k: v for k, v in q.items() if k != "oldest_ready_age"} for q in c.queues()["queues"]]
            for c in (fast, plain)
        ]
        assert ages_apart[0] == ages_apart[1]
        (task,) = fast.lease("test-service", max_tasks=1)
        assert outcome(lambda: plain.get_task(task.id)) == outcome(lambda: fast.get_task(task.id))
        done = fast.complete(task.id, task.lease_token, "out/1")
        assert done["status"] == "success"
        again = [outcome(lambda c=c: c.complete(task.id, "stale.1", "x")) for c in (fast, plain)]
        assert again[0] == again[1]
        assert again[0][1] == LeaseLostError.__name__
        for bad in (
            lambda c: c.get_scenario("01NOPE"),
            lambda c: c.get_task("01NOPE:job_1"),
            lambda c: c.submit("NoSuchScenario", {}),
            lambda c: c.submit("Jobs", {"n": "many"}),
        ):
            answers = [outcome(lambda c=c, bad=bad: bad(c)) for c in (fast, plain)]
            assert answers[0] == answers[1]
            assert answers[0][0] == "error"


def test_an_unknown_id_is_not_found_on_the_fast_path(live_server: LiveServer) -> None:
    with ScenaristClient(live_server.url) as client, pytest.raises(NotFoundError):
        client.get_scenario("01NOPE")


def test_an_unreachable_server_is_server_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        ScenaristClient(f"http://127.0.0.1:{port}") as client,
        pytest.raises(ServerUnreachableError, match=f"127.0.0.1:{port}/health"),
    ):
        client.health()


def test_a_response_over_the_cap_is_refused(live_server: LiveServer) -> None:
    transport = BlockingTransport(live_server.url, headers={}, max_response_bytes=10)
    with pytest.raises(ResponseTooLargeError):
        transport.request("GET", "/health", None, headers=None, timeout=5)


def test_a_header_with_a_line_break_is_refused_before_sending(live_server: LiveServer) -> None:
    transport = BlockingTransport(live_server.url, headers={}, max_response_bytes=1000)
    with pytest.raises(ValueError, match="invalid HTTP header"):
        transport.request("GET", "/health", None, headers={"X-A": "1\r\nX-B: 2"}, timeout=5)


def test_plain_calls_do_not_import_httpx(live_server: LiveServer) -> None:
    code = (
        "import sys\n"
        "from scenarist.worker.client import ScenaristClient\n"
        f"with ScenaristClient({live_server.url!r}) as c:\n"
        "    c.health()\n"
        "assert 'httpx' not in sys.modules, 'httpx was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
