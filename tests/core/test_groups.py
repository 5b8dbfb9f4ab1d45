"""Groups read from copy names, and keyset pages over a scenario's tasks."""

from __future__ import annotations

import pytest

from scenarist.core.errors import ParamError
from scenarist.core.groups import (
    GroupMember,
    decode_task_cursor,
    encode_task_cursor,
    group_of,
    page_tasks,
)
from tests.dashboard.test_groups import fan, task


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("slide_image_12", GroupMember("slide_image", 12)),
        ("shot_1", GroupMember("shot", 1)),
        ("a_2_3", GroupMember("a_2", 3)),
        ("script", None),
        ("shot_0", None),  # copies count from 1
        ("shot_01", None),  # and are never written with a leading zero
        ("_1", None),
        ("shot_", None),
    ],
)
def test_group_of_reads_the_template_id_and_index(name: str, member: GroupMember | None) -> None:
    assert group_of(name) == member


@pytest.mark.parametrize("name", ["shot_1", "a:b|c", "ünïcode_7", "x"])
def test_a_cursor_round_trips(name: str) -> None:
    assert decode_task_cursor(encode_task_cursor(name)) == name


@pytest.mark.parametrize("cursor", ["%%", "dDo", "bm9wZQ", "", "////"])
def test_a_malformed_cursor_names_the_field(cursor: str) -> None:
    with pytest.raises(ParamError) as caught:
        decode_task_cursor(cursor)
    assert caught.value.field == "cursor"


def test_a_cursor_survives_tasks_added_after_it() -> None:
    """A group expanding at run time appends tasks: a keyset page does not shift."""
    tasks = fan(5)  # root, shot_1..5, cut
    first = page_tasks(tasks, group=None, cursor=None, limit=3)
    assert [t.name for t in first.tasks] == ["root", "shot_1", "shot_2"]
    grown = [tasks[0], task("thumbnail", 1, ("root",)), *tasks[1:]]  # one before the cursor
    rest = page_tasks(grown, group=None, cursor=first.next_cursor, limit=10)
    assert [t.name for t in rest.tasks] == ["shot_3", "shot_4", "shot_5", "cut"]
    assert rest.next_cursor is None


def test_the_last_full_page_has_no_next_cursor() -> None:
    page = page_tasks(fan(4), group="shot", cursor=None, limit=4)
    assert len(page.tasks) == 4
    assert page.next_cursor is None
