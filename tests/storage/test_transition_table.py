"""The lifecycle table itself: every Lua script names the rows it implements, every row is
implemented by some script, and the table's own consistency rules hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenarist.core import ready_order
from scenarist.core import transitions as tr
from scenarist.core.errors import IllegalTransitionError
from scenarist.core.model import TaskStatus

LUA = Path(tr.__file__).parents[1] / "storage" / "redis" / "lua"
ROWS_LINE = re.compile(
    r"^-- Rows of the lifecycle table \(core/transitions.py RULES\):\s*(?:\n--\s+)?(.+?)\.$",
    re.M,
)


def named_rows() -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for path in sorted(LUA.glob("*.lua")):
        if path.name.startswith("_"):  # helper files: the operations name their rows
            continue
        match = ROWS_LINE.search(path.read_text())
        assert match, f"{path.name} does not name the rows it implements"
        text = match.group(1)
        rows[path.name] = set() if text.startswith("none") else set(text.split(", "))
    return rows


def test_every_lua_script_names_existing_rows_and_every_row_has_a_script() -> None:
    rows = named_rows()
    for script, names in rows.items():
        assert names <= set(tr.RULES), f"{script} names unknown rows {names - set(tr.RULES)}"
    implemented = set().union(*rows.values())
    assert implemented == set(tr.RULES)


_SELF_LOOPS = frozenset({"cancel", "rerun_ready", "rerun_waiting"})


def test_every_status_change_of_the_table_starts_from_a_listed_status() -> None:
    for rule in tr.RULES.values():
        assert not (rule.sets & rule.clears)
        assert (rule.sets | rule.clears) <= tr.TASK_FIELDS
        if rule.target is not None and rule.sources:
            # cancel: a cancelled task stays so; a rerun starts a new run of a waiting task.
            assert rule.target not in rule.sources or rule.name in _SELF_LOOPS


def fields(status: TaskStatus, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "s:a", "name": "a", "status": status, "attempt": 1, "lease_token": "n.1",
        "timeout_seconds": 30.0, "lease_seconds": None, "available_at": None,
        "queued_at": 1.0, "level": 0, "dependents": [], "depends_on": [], "seq": 0,
        "usage": None, "lane": "normal",
    }  # fmt: skip
    base.update(extra)
    return base


def test_a_rule_refuses_a_status_outside_its_row() -> None:
    with pytest.raises(IllegalTransitionError):
        tr.apply_rule("complete", fields(TaskStatus.QUEUED), result_ref=None, result=None,
                      finished_at=1.0)  # fmt: skip


def test_a_rule_refuses_fields_outside_its_row() -> None:
    with pytest.raises(AssertionError, match="complete sets"):
        tr.apply_rule("complete", fields(TaskStatus.PROCESSING), error="no")


def test_a_change_clears_exactly_the_rows_cleared_fields() -> None:
    change = tr.apply_rule(
        "complete",
        fields(TaskStatus.PROCESSING),
        result_ref="r",
        result=None,
        finished_at=2.0,
        usage={"tokens": 3.0},
    )
    rule = tr.RULES["complete"]
    assert change.after is TaskStatus.SUCCESS
    assert set(change.fields) == rule.sets | rule.clears
    assert {k: change.fields[k] for k in rule.clears} == dict.fromkeys(rule.clears)
    assert {k: change.fields[k] for k in rule.sets} == {
        "result_ref": "r",
        "result": None,
        "finished_at": 2.0,
        "usage": {"tokens": 3.0},
    }


def test_ready_order_is_priority_then_age_then_id() -> None:
    tasks = [
        fields(TaskStatus.QUEUED, id="s:b", level=1, queued_at=5.0),
        fields(TaskStatus.QUEUED, id="s:a", level=0, queued_at=1.0),
        fields(TaskStatus.QUEUED, id="s:c", level=7, queued_at=9.0),
        fields(TaskStatus.QUEUED, id="s:d", level=4, queued_at=9.0),
        fields(TaskStatus.QUEUED, id="s:e", level=1, queued_at=2.0, available_at=6.0),
    ]
    ordered = [t["id"] for t in sorted(tasks, key=ready_order.ready_key)]
    # levels 7 and 4 share the capped priority 4: same age, so the id decides
    assert ordered == ["s:c", "s:d", "s:b", "s:e", "s:a"]


def test_ready_order_takes_a_higher_lane_first_whatever_the_level_and_age() -> None:
    tasks = [
        fields(TaskStatus.QUEUED, id="s:batch", level=7, queued_at=0.0, lane="batch"),
        fields(TaskStatus.QUEUED, id="s:normal", level=4, queued_at=1.0),
        fields(TaskStatus.QUEUED, id="s:late", level=0, queued_at=9.0, lane="interactive"),
        fields(TaskStatus.QUEUED, id="s:deep", level=3, queued_at=9.5, lane="interactive"),
    ]
    ordered = [t["id"] for t in sorted(tasks, key=ready_order.ready_key)]
    assert ordered == ["s:deep", "s:late", "s:normal", "s:batch"]
