"""SQLite (WAL): a writer process SIGKILLed at random moments, mostly mid-transaction,
loses nothing it had acknowledged, and the file stays intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import CHAOS
from tests.reliability.sqlite_drill import sqlite_kill_drill

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

KILLS = 25 if CHAOS else 4


def test_sigkill_mid_transaction_loses_no_committed_state(tmp_path: Path) -> None:
    report = sqlite_kill_drill(tmp_path, kills=KILLS, seed=8)

    assert report.kills == KILLS
    assert report.acked_submissions >= KILLS  # every round wrote before it was killed
    assert report.acked_completions > 0
    assert report.integrity == ["ok"] * KILLS
    assert report.lost == []
    assert report.torn_scenarios == []
    assert report.counter_mismatches == []
