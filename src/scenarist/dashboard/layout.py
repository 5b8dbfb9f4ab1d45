"""Where each task of a scenario goes in the DAG drawing: a pure function, no I/O.

Columns are dependency levels (roots on the left); the tasks of one level are stacked
top to bottom, so a fan-out (`slide_image_1..N`) reads as one tall column. Inside a
column, tasks are ordered by the mean row of their parents (the barycenter heuristic),
which keeps zipped chains (`slide_prompt_2 -> slide_image_2`) on one line and avoids most
edge crossings; ties keep the input (topological) order. Columns are centred vertically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NODE_WIDTH = 176.0
NODE_HEIGHT = 52.0
COLUMN_GAP = 72.0  # horizontal space between columns, where the edges run
ROW_GAP = 16.0
MARGIN = 16.0


@dataclass(frozen=True, slots=True)
class NodeInput:
    name: str
    level: int
    depends_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeBox:
    name: str
    level: int
    row: int  # position inside its column, 0 = top
    x: float  # top-left corner
    y: float
    width: float
    height: float

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # SVG path data: a cubic curve from the source's right to the target's left


@dataclass(frozen=True, slots=True)
class DagLayout:
    nodes: tuple[NodeBox, ...]  # column by column, top to bottom (the keyboard order)
    edges: tuple[Edge, ...]
    width: float
    height: float


def layout_dag(tasks: Sequence[NodeInput]) -> DagLayout:
    """Place `tasks` (in topological order); dependencies on unknown names are ignored."""
    if not tasks:
        return DagLayout(nodes=(), edges=(), width=2 * MARGIN, height=2 * MARGIN)
    columns = order_columns(tasks)
    tallest = max(len(column) for column in columns.values())
    height = 2 * MARGIN + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP
    boxes = [
        place(task, row, len(column), height)
        for _, column in sorted(columns.items())
        for row, task in enumerate(column)
    ]
    by_name = {box.name: box for box in boxes}
    edges = tuple(
        Edge(source=parent, target=task.name, path=edge_path(by_name[parent], by_name[task.name]))
        for task in tasks
        for parent in task.depends_on
        if parent in by_name
    )
    last_level = max(columns)
    width = 2 * MARGIN + (last_level + 1) * NODE_WIDTH + last_level * COLUMN_GAP
    return DagLayout(nodes=tuple(boxes), edges=edges, width=width, height=height)


def order_columns(tasks: Sequence[NodeInput]) -> dict[int, list[NodeInput]]:
    """Group by level, then sort each column by the barycenter of its parents' rows."""
    columns: dict[int, list[NodeInput]] = {}
    for task in tasks:
        columns.setdefault(max(task.level, 0), []).append(task)
    rows: dict[str, float] = {}
    for level in sorted(columns):
        column = columns[level]
        # Rows are normalised to 0..1 so columns of different heights compare fairly.
        span = max(len(column) - 1, 1)
        original = {task.name: i / span for i, task in enumerate(column)}
        keys = {
            task.name: (barycenter(task, rows, original), original[task.name]) for task in column
        }
        column.sort(key=lambda task: keys[task.name])
        rows.update({task.name: i / span for i, task in enumerate(column)})
    return columns


def barycenter(task: NodeInput, rows: dict[str, float], original: dict[str, float]) -> float:
    """Mean row of the task's already placed parents; its own input row when it has none."""
    parents = [rows[p] for p in task.depends_on if p in rows]
    return sum(parents) / len(parents) if parents else original[task.name]


def place(task: NodeInput, row: int, column_size: int, height: float) -> NodeBox:
    column_height = column_size * NODE_HEIGHT + (column_size - 1) * ROW_GAP
    top = (height - column_height) / 2
    level = max(task.level, 0)
    return NodeBox(
        name=task.name,
        level=level,
        row=row,
        x=MARGIN + level * (NODE_WIDTH + COLUMN_GAP),
        y=top + row * (NODE_HEIGHT + ROW_GAP),
        width=NODE_WIDTH,
        height=NODE_HEIGHT,
    )


def edge_path(source: NodeBox, target: NodeBox) -> str:
    x1, y1 = source.x + source.width, source.center_y
    x2, y2 = target.x, target.center_y
    bend = (x2 - x1) / 2
    return f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
