"""Small pure graph helpers over task names: cycle finding and a stable topological order."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def find_cycle(order: Sequence[str], parents: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path `[a, b, ..., a]` (each depends on the next), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for parent in parents.get(node, ()):
            if state.get(parent) == 1:
                return [*path[path.index(parent) :], parent]
            if parent not in state and (found := visit(parent)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in order:
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def stable_topological_order(
    order: Sequence[str], parents: Mapping[str, Sequence[str]]
) -> list[str]:
    """Kahn's algorithm; among ready nodes the one earliest in `order` comes first.
    The graph must be acyclic (check with `find_cycle` first)."""
    position = {name: i for i, name in enumerate(order)}
    waiting = {name: len(set(parents.get(name, ()))) for name in order}
    children: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for parent in set(parents.get(name, ())):
            children[parent].append(name)
    ready = [position[name] for name in order if waiting[name] == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = order[heapq.heappop(ready)]
        result.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    return result
