"""A resume position (`?after=` or `Last-Event-ID`) that no store id can be is a 422
naming where it came from, on every store; it used to overflow SQLite's integer and break
Redis' stream-id parser (500)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import submit
from tests.api.test_bad_input import assert_problem
from tests.api.test_sse import parse_sse

OUT_OF_RANGE = [
    "99999999999999999999",
    "1-99999999999999999999",
    "99999999999999999999-1",
    "18446744073709551616-0",
    "9223372036854775808",
    "-1",
    "+5",
    "\u0661\u0662",  # Arabic-Indic digits: digits to Python, not to a store
    "\u0661-\u0661",
]


@pytest.mark.parametrize("after", OUT_OF_RANGE)
async def test_an_impossible_after_is_422_naming_after(
    any_client: httpx.AsyncClient, after: str
) -> None:
    sid = (await submit(any_client))["scenario_id"]
    response = await any_client.get(f"/scenarios/{sid}/events", params={"after": after})
    assert assert_problem(response, 422, "invalid-param")["field"] == "after"


@pytest.mark.parametrize("after", [a for a in OUT_OF_RANGE if a.isascii()])
async def test_an_impossible_last_event_id_is_422_naming_the_header(
    any_client: httpx.AsyncClient, after: str
) -> None:
    sid = (await submit(any_client))["scenario_id"]
    response = await any_client.get(f"/scenarios/{sid}/events", headers={"Last-Event-ID": after})
    assert assert_problem(response, 422, "invalid-param")["field"] == "Last-Event-ID"


@pytest.mark.parametrize("after", OUT_OF_RANGE[:3])
async def test_the_dashboard_stream_refuses_an_impossible_id_with_a_page(
    any_client: httpx.AsyncClient, after: str
) -> None:
    sid = (await submit(any_client))["scenario_id"]
    by_query = await any_client.get(f"/ui/scenarios/{sid}/events", params={"after": after})
    by_header = await any_client.get(
        f"/ui/scenarios/{sid}/events", headers={"Last-Event-ID": after}
    )
    for response in (by_query, by_header):
        assert response.status_code == 400, response.text
        assert "event id" in response.text


@pytest.mark.redis
@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_the_largest_redis_stream_id_resumes_after_everything(
    any_client: httpx.AsyncClient,
) -> None:
    sid = (await submit(any_client))["scenario_id"]
    assert (await any_client.post(f"/scenarios/{sid}/cancel")).status_code == 200
    largest = "18446744073709551615-18446744073709551615"
    response = await any_client.get(f"/scenarios/{sid}/events", params={"after": largest})
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert [e["event"] for e in events if "event" in e] == ["end"]  # no status event follows
