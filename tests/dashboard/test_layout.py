"""The DAG drawing: columns are levels, fan-outs stack, zipped chains stay on one row."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from scenarist.dashboard.layout import (
    COLUMN_GAP,
    NODE_HEIGHT,
    NODE_WIDTH,
    NodeInput,
    layout_dag,
)


def video_graph(slides: int) -> list[NodeInput]:
    tasks = [NodeInput("script", 0, ()), NodeInput("voice", 1, ("script",))]
    prompts = [NodeInput(f"slide_prompt_{i}", 1, ("script",)) for i in range(1, slides + 1)]
    images = [
        NodeInput(f"slide_image_{i}", 2, (f"slide_prompt_{i}",)) for i in range(1, slides + 1)
    ]
    video = NodeInput("video", 3, ("voice", *(t.name for t in images)))
    return [*tasks, *prompts, *images, video]


def test_columns_are_levels_and_fan_out_is_stacked() -> None:
    layout = layout_dag(video_graph(3))
    boxes = {b.name: b for b in layout.nodes}
    assert {b.x for b in layout.nodes if b.level == 1} == {boxes["voice"].x}
    assert boxes["voice"].x - boxes["script"].x == NODE_WIDTH + COLUMN_GAP
    level_two = sorted((b for b in layout.nodes if b.level == 2), key=lambda b: b.y)
    assert [b.name for b in level_two] == ["slide_image_1", "slide_image_2", "slide_image_3"]
    gaps = {round(b.y - a.y, 6) for a, b in itertools.pairwise(level_two)}
    assert len(gaps) == 1
    assert gaps.pop() >= NODE_HEIGHT


def test_zipped_chains_keep_their_order_and_edges_join_the_right_boxes() -> None:
    layout = layout_dag(video_graph(4))
    boxes = {b.name: b for b in layout.nodes}
    prompt_rows = [boxes[f"slide_prompt_{i}"].row for i in range(1, 5)]
    image_rows = [boxes[f"slide_image_{i}"].row for i in range(1, 5)]
    assert prompt_rows == sorted(prompt_rows)
    assert image_rows == sorted(image_rows)
    edge = next(e for e in layout.edges if e.target == "slide_image_2")
    source, target = boxes["slide_prompt_2"], boxes["slide_image_2"]
    assert edge.source == "slide_prompt_2"
    assert edge.path.startswith(f"M{source.x + source.width:g},{source.center_y:g} ")
    assert edge.path.endswith(f" {target.x:g},{target.center_y:g}")
    assert len(layout.edges) == 1 + 4 + 4 + 5  # voice, prompts, images, video fan-in


def test_barycenter_follows_parents_not_input_order() -> None:
    tasks = [
        NodeInput("a", 0, ()),
        NodeInput("b", 0, ()),
        NodeInput("child_of_b", 1, ("b",)),
        NodeInput("child_of_a", 1, ("a",)),
    ]
    rows = {b.name: b.row for b in layout_dag(tasks).nodes}
    assert rows["child_of_a"] < rows["child_of_b"]


def test_empty_graph_and_unknown_dependencies() -> None:
    assert layout_dag([]).nodes == ()
    layout = layout_dag([NodeInput("only", 0, ("missing",))])
    assert [b.name for b in layout.nodes] == ["only"]
    assert layout.edges == ()


@st.composite
def random_dags(draw: st.DrawFn) -> list[NodeInput]:
    size = draw(st.integers(1, 30))
    tasks: list[NodeInput] = []
    for i in range(size):
        parents = draw(st.lists(st.sampled_from(tasks), max_size=3, unique=True)) if tasks else []
        level = 1 + max((p.level for p in parents), default=-1)
        tasks.append(NodeInput(f"t{i}", level, tuple(p.name for p in parents)))
    return tasks


@given(random_dags())
def test_every_task_placed_once_inside_the_canvas_without_overlap(tasks: list[NodeInput]) -> None:
    layout = layout_dag(tasks)
    assert sorted(b.name for b in layout.nodes) == sorted(t.name for t in tasks)
    for box in layout.nodes:
        assert box.x >= 0
        assert box.x + box.width <= layout.width
        assert box.y >= 0
        assert box.y + box.height <= layout.height
    by_column: dict[float, list[float]] = {}
    for box in layout.nodes:
        by_column.setdefault(box.x, []).append(box.y)
    for ys in by_column.values():
        ys.sort()
        assert all(b - a >= NODE_HEIGHT for a, b in itertools.pairwise(ys))
    # Parents always sit in a column to the left of their children.
    boxes = {b.name: b for b in layout.nodes}
    for task in tasks:
        for parent in task.depends_on:
            assert boxes[parent].x < boxes[task.name].x
