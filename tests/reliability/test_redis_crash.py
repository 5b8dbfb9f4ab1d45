"""Redis SIGKILLed under a stream of completions, with AOF fsync `always` and `everysec`.

The API process keeps running through the outage: it answers 503 problem+json (health,
reads, writes) while Redis is down and serves again by itself once Redis is back, from
the same process. With `always` no acknowledged completion is lost; with `everysec` any
loss must come from the last moments before the kill (Redis fsyncs once a second, up to
two when the disk is slow), and the drill reports how much it was.
"""

from __future__ import annotations

import pytest

from tests.reliability.conftest import CHAOS, RedisFactory, ServerFactory
from tests.reliability.drills import redis_kill_drill

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.redis]

JOBS = 2000 if CHAOS else 400
EVERYSEC_WINDOW_SECONDS = 2.0  # one fsync period, plus the second Redis may postpone it


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_redis_sigkill_under_load(
    start_server: ServerFactory, start_redis: RedisFactory, fsync: str
) -> None:
    redis = start_redis("--appendonly", "yes", "--appendfsync", fsync)
    server = start_server(redis.url)
    api_pid = server.pid

    report = await redis_kill_drill(server, redis, jobs=JOBS, kill_after=JOBS // 2)

    assert report.acked >= JOBS // 2
    # After the kill, the API refused with 503 problem+json, never another error.
    assert set(report.refused_statuses) <= {503}, report
    assert report.refused_statuses, "no request reached the API while Redis was down"
    assert report.outage_answers == {503: 3}, report
    assert report.invariant_problems == [], report
    assert report.recovery_seconds is not None
    assert server.pid == api_pid
    assert server.is_running()
    assert report.finished_after_restart, report
    if fsync == "always":
        assert report.lost == [], report
    else:
        assert all(age <= EVERYSEC_WINDOW_SECONDS for age in report.lost_ack_ages), report
