"""The soak benchmark, cut to a few seconds: a steady stream of CreateVideo submissions
with no-op workers all succeed, and the server's memory does not run away. (The slope
of RSS needs the full run: `python benchmarks/soak.py`.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.soak import run_soak

pytestmark = [pytest.mark.slow]

DURATION_S = 8.0
RATE_PER_S = 5.0
RSS_GROWTH_LIMIT_MB = 40.0


def test_short_soak_all_scenarios_succeed_with_bounded_memory(tmp_path: Path) -> None:
    report = run_soak(tmp_path, store="sqlite", duration=DURATION_S, rate=RATE_PER_S)

    assert report.submitted == int(DURATION_S * RATE_PER_S)
    assert report.submit_errors == 0
    assert report.unfinished == 0
    assert report.succeeded == report.submitted
    rss = [mb for _, mb in report.rss_mb]
    assert len(rss) >= DURATION_S - 1
    assert max(rss) - rss[0] < RSS_GROWTH_LIMIT_MB, report.rss_mb
