"""What the lanes and fairness sections share: a flood submitted in bulk before the late
scenarios they measure, and their table of the late scenarios' times against alone."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.harness.system import BULK_SIZE


async def submit_flood(
    client: Any, flood: Sequence[str], slides: int, **options: Any
) -> dict[str, int]:
    """`flood` in batches of BULK_SIZE (POST /generate/batch), every item with `options`
    (a lane, a tenant); each batch stamped just before its request."""
    from benchmarks.systems.scenarist_submitters import TEMPLATE, batches, params

    from scenarist.worker.client import SubmitItem

    submitted: dict[str, int] = {}
    for batch in batches(list(flood), BULK_SIZE):
        submitted.update(dict.fromkeys(batch, time.time_ns()))
        items = [SubmitItem(TEMPLATE, params(i, slides), **options) for i in batch]
        refused = [o for o in await client.submit_many(items) if o["status"] != 201]
        if refused:
            raise RuntimeError(f"bulk submission refused: {refused[:3]}")
    return submitted


def shown(values: Sequence[float], unit: str) -> str:
    """The median, with (min-max) over the repetitions when there are several."""
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.2f} {unit}"
    return f"{median:.2f} {unit} ({min(values):.2f}-{max(values):.2f})"


def against_alone(rows: Sequence[Mapping[str, float]], runs: Sequence[str], what: str) -> str:
    """Markdown: `what` per run kind, medians (min-max) over the repetitions, and each
    against the same repetition's `alone`."""
    lines = [f"| run | {what} | x alone |", "| --- | --- | --- |"]
    for name in runs:
        times = [row[name] for row in rows if name in row]
        ratios = [row[name] / row["alone"] for row in rows if name in row and "alone" in row]
        if times:
            lines.append(f"| {name} | {shown(times, 's')} | {shown(ratios, 'x')} |")
    return "\n".join(lines)
