"""The loss cascade of a failure for good (core/transition_changes.py LossCascade), on
plain dicts: which dependents are skipped, which count the loss off and run, and which
losses are tolerated."""

from __future__ import annotations

from typing import Any

from scenarist.core import transition_changes as changes_of

NOW = 10.0


def graph(*specs: tuple[str, tuple[str, ...], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """(name, parents, extra fields) in plan order; every task pending but the first
    (processing: the one that fails)."""
    tasks: dict[str, dict[str, Any]] = {}
    for seq, (name, parents, extra) in enumerate(specs):
        tasks[name] = {
            "id": f"s:{name}", "name": name, "seq": seq, "status": "pending",
            "depends_on": list(parents), "dependents": [], "waiting": len(set(parents)),
            "need": None, "optional": False, "tolerated": None, "attempt": 0, "usage": None,
            "group_spec": None,
        } | extra  # fmt: skip
        for parent in parents:
            tasks[parent]["dependents"].append(name)
    return tasks


def fail(tasks: dict[str, dict[str, Any]], name: str) -> list[tuple[str, str, Any]]:
    tasks[name].update(status="processing", lease_token="n.1", attempt=1)
    changes = changes_of.fail_changes(tasks[name], tasks.get, error="boom", retry_at=None, now=NOW)
    return [(c.name, c.rule, c.fields.get("tolerated", c.fields.get("waiting"))) for c in changes]


def test_without_joins_every_dependent_below_is_skipped_in_plan_order() -> None:
    tasks = graph(("a", (), {}), ("b", ("a",), {}), ("c", ("b",), {}), ("d", ("a",), {}))
    assert fail(tasks, "a") == [
        ("a", "fail", False),
        ("b", "skip", False),
        ("c", "skip", False),
        ("d", "skip", False),
    ]


def test_a_reachable_join_counts_the_loss_off_and_stops_the_cascade() -> None:
    tasks = graph(
        ("s1", (), {}), ("s2", (), {}), ("s3", (), {}),
        ("cut", ("s1", "s2", "s3"), {"need": 2}), ("after", ("cut",), {}),
    )  # fmt: skip
    assert fail(tasks, "s1") == [("s1", "fail", True), ("cut", "parent_lost", 2)]


def test_an_unreachable_join_is_skipped_at_once_and_cascades() -> None:
    tasks = graph(
        ("s1", (), {"status": "failed"}), ("s2", (), {}), ("s3", (), {}),
        ("cut", ("s1", "s2", "s3"), {"need": 2, "waiting": 2}), ("after", ("cut",), {}),
    )  # fmt: skip
    # s1 failed before; losing s2 leaves at most one success for a bar of two.
    assert fail(tasks, "s2") == [
        ("s2", "fail", False),
        ("cut", "skip", False),
        ("after", "skip", False),
    ]


def test_the_last_parent_lost_releases_a_reachable_join() -> None:
    tasks = graph(
        ("s1", (), {"status": "success"}), ("s2", (), {}),
        ("cut", ("s1", "s2"), {"need": 1, "waiting": 1}),
    )  # fmt: skip
    assert fail(tasks, "s2") == [
        ("s2", "fail", True),
        ("cut", "parent_lost", 0),
        ("cut", "release", None),
    ]


def test_an_optional_loss_dooms_nothing_even_below_a_skipped_optional() -> None:
    tasks = graph(
        ("a", (), {}),
        ("thumb", ("a",), {"optional": True}),
        ("post", ("thumb",), {}),
    )
    # `a` is lost: thumb (optional) is skipped, tolerated; post runs without it.
    assert fail(tasks, "a") == [
        ("a", "fail", False),
        ("thumb", "skip", True),
        ("post", "parent_lost", 0),
        ("post", "release", None),
    ]
