"""The markdown table printed at the end of a benchmark."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.harness.schema import SystemSummary

_MISSING = "—"
HEADERS = (
    "system",
    "tasks/s",
    "makespan p50 ms",
    "makespan p99 ms",
    "dispatch p50 ms",
    "dispatch p99 ms",
    "peak RSS MB",
    "Redis MB",
    "CPU ms/scenario",
    "verified",
)


def _number(value: float | None, digits: int) -> str:
    return _MISSING if value is None else f"{value:,.{digits}f}"


def _verified_cell(summary: SystemSummary) -> str:
    if summary.verified:
        return f"yes ({summary.verified_runs}/{summary.runs})"
    return f"FAILED ({summary.verified_runs}/{summary.runs} ok)"


def _ratio(summary: SystemSummary, baseline: SystemSummary | None) -> str:
    if baseline is None or baseline.tasks_per_s is None or summary.tasks_per_s is None:
        return _MISSING
    return f"{baseline.tasks_per_s / summary.tasks_per_s:.2f}x"


def summary_row(summary: SystemSummary) -> list[str]:
    return [
        summary.system,
        _number(summary.tasks_per_s, 0),
        _number(summary.makespan_p50_ms, 1),
        _number(summary.makespan_p99_ms, 1),
        _number(summary.dispatch_p50_ms, 2),
        _number(summary.dispatch_p99_ms, 2),
        _number(summary.peak_rss_mb, 1),
        _number(summary.redis_mb, 1),
        _number(summary.cpu_ms_per_scenario, 2),
        _verified_cell(summary),
    ]


def markdown_table(summaries: Sequence[SystemSummary], baseline: str | None = None) -> str:
    """One row per system; with `baseline`, a column of baseline tasks/s over the row's."""
    reference = next((s for s in summaries if s.system == baseline), None)
    headers = list(HEADERS)
    rows = [summary_row(summary) for summary in summaries]
    if reference is not None:
        headers.append(f"{baseline}/system tasks/s")
        for row, summary in zip(rows, summaries, strict=True):
            row.append(_ratio(summary, reference))
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def failure_notes(summaries: Sequence[SystemSummary]) -> str:
    notes = [
        f"- {summary.system}: {failure}" for summary in summaries for failure in summary.failures
    ]
    return "\n".join(notes)
