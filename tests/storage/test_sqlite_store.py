"""SQLite-only behaviour outside the Store protocol: opening, closing, sharing a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarist.core.errors import StoreUnavailableError
from scenarist.core.model import ScenarioStatus
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import T0, diamond, lease, submit


async def test_open_of_an_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "is-a-directory.db").mkdir()
    with pytest.raises(StoreUnavailableError):
        await SqliteStore.open(tmp_path / "is-a-directory.db")


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "nested" / "dir" / "s.db")
    await store.ping()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        await store.ping()
    with pytest.raises(StoreUnavailableError):
        await store.get_scenario("01X")


async def test_two_stores_on_one_file_share_state_and_data_survives_reopen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    first = await SqliteStore.open(path)
    second = await SqliteStore.open(path, synchronous="FULL")
    try:
        scenario, _ = await submit(first, diamond())
        [a] = await lease(second, now=T0 + 1)
        assert (await first.get_scenario(scenario.id)).status is ScenarioStatus.RUNNING
        done = await first.complete(a.id, a.lease_token, result_ref="r", result=None, now=T0 + 2)
        assert len(done.released) == 2
    finally:
        await first.close()
        await second.close()
    reopened = await SqliteStore.open(path)
    try:
        assert len(await lease(reopened, now=T0 + 3)) == 2
    finally:
        await reopened.close()


async def test_in_memory_store_works_and_bad_synchronous_is_refused(tmp_path: Path) -> None:
    store = await SqliteStore.open(":memory:")
    try:
        scenario, _ = await submit(store, diamond())
        assert (await store.get_scenario(scenario.id)).progress.total == 4
    finally:
        await store.close()
    with pytest.raises(ValueError, match="synchronous"):
        await SqliteStore.open(tmp_path / "x.db", synchronous="SOMETIMES")
