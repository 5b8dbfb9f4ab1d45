"""Groups of a scenario's tasks, and paging through its tasks.

A group is the copies of one template task: `count: N` gives `slide_image_1 ..
slide_image_N`, and a `for_each` task expands the same way (`shot_1 .. shot_N`). Tasks do
not store the template id they came from; the expansion names every copy
`<template id>_<index>` (index 1-based, no leading zero), so the group is read back from
the name. A bare task whose id happens to end in `_<digits>` reads as a one-task group,
which is harmless: only groups with many members are treated differently.

Pages follow plan order and the cursor names the last task of the previous page (the
keyset pattern), so a page stays right when tasks are added to the scenario after it
(a group expanding at run time) instead of shifting as an offset would.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from scenarist.core.errors import ParamError
from scenarist.core.model import Task

_COPY_NAME = re.compile(r"^(?P<group>.+)_(?P<index>[1-9][0-9]*)$")
_CURSOR_PREFIX = "t:"


@dataclass(frozen=True, slots=True)
class GroupMember:
    group: str  # the template task id: "slide_image"
    index: int  # 1-based


def group_of(name: str) -> GroupMember | None:
    """`slide_image_12` -> (slide_image, 12); None for a name without a copy number."""
    match = _COPY_NAME.match(name)
    if match is None:
        return None
    return GroupMember(match["group"], int(match["index"]))


def in_group(name: str, group: str) -> bool:
    member = group_of(name)
    return member is not None and member.group == group


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: tuple[Task, ...]
    next_cursor: str | None  # None on the last page


def encode_task_cursor(name: str) -> str:
    raw = (_CURSOR_PREFIX + name).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_task_cursor(cursor: str) -> str:
    """The task name a cursor continues after; ParamError(field=cursor) if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ParamError(f"malformed cursor {cursor!r}", field="cursor") from None
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) == len(_CURSOR_PREFIX):
        raise ParamError(f"malformed cursor {cursor!r}", field="cursor")
    return raw[len(_CURSOR_PREFIX) :]


def page_tasks(
    tasks: Sequence[Task], *, group: str | None, cursor: str | None, limit: int
) -> TaskPage:
    """`limit` tasks (of `group` when given) after the cursor's task, in plan order.

    A cursor naming a task that is not in the (filtered) listing raises ParamError: it
    came from another scenario or group, and guessing a position would skip or repeat."""
    listed = [t for t in tasks if group is None or in_group(t.name, group)]
    start = 0
    if cursor is not None:
        after = decode_task_cursor(cursor)
        position = next((i for i, t in enumerate(listed) if t.name == after), None)
        if position is None:
            where = f"group {group!r}" if group is not None else "this scenario"
            raise ParamError(f"cursor {cursor!r} names no task of {where}", field="cursor")
        start = position + 1
    page = tuple(listed[start : start + limit])
    more = start + limit < len(listed)
    return TaskPage(page, encode_task_cursor(page[-1].name) if more and page else None)
