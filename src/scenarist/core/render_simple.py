"""Leaves made only of literal text and bare variable names, rendered without Jinja.

Almost every catalog leaf is `{{ name }}` or `text {{ name }} text`. Rendering one through
Jinja builds a Context per leaf (globals merged in, an eval context, block maps), which
dominates the cost of expanding a plan. Such a leaf is decomposed once at compile time
into its parts; when the request provides every name it uses, its value is built here
with the same budget checks, in the same order, as the Jinja path (both call the helpers
below). A name the variables lack (a global like `range`, or an undefined one) falls back
to Jinja, so lookups and error messages stay Jinja's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from scenarist.core.model import JSON
from scenarist.core.render_budget import RenderBudget, estimate_chars

__all__ = [
    "SimpleParts",
    "Variable",
    "check_output",
    "join_checked",
    "render_simple",
    "simple_parts",
    "to_json",
    "typed_result",
]


@dataclass(frozen=True, slots=True)
class Variable:
    """A bare `{{ name }}` inside a leaf."""

    name: str


SimpleParts = tuple[str | Variable, ...]


def simple_parts(body: Sequence[nodes.Node]) -> SimpleParts | None:
    """A parsed leaf as literal text and variable names, or None when it needs Jinja.

    Adjacent text nodes are merged because Jinja's code generator yields them as one
    chunk; the chunks must match for the size accounting to match."""
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[str | Variable] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            if parts and isinstance(parts[-1], str):
                parts[-1] += node.data
            else:
                parts.append(node.data)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(Variable(node.name))
        else:
            return None
    return tuple(parts)


def render_simple(
    parts: SimpleParts, typed: bool, variables: Mapping[str, JSON], budget: RenderBudget
) -> JSON:
    """Render decomposed parts; every Variable's name must be in `variables`."""
    if typed:
        (only,) = parts
        assert isinstance(only, Variable)
        return typed_result(variables[only.name], budget)
    return join_checked(_chunks(parts, variables, budget), budget)


def _chunks(
    parts: SimpleParts, variables: Mapping[str, JSON], budget: RenderBudget
) -> Iterator[str]:
    for part in parts:
        if isinstance(part, str):
            yield part
        else:
            yield str(check_output(budget, variables[part.name]))


def check_output(budget: RenderBudget, value: Any) -> Any:
    """The environment's finalize step: a non-string output's size is checked before
    `str()` builds it."""
    if not isinstance(value, str):
        budget.check_chars(estimate_chars(value, budget.limits.max_leaf_chars), "an output")
    return value


def join_checked(chunks: Iterable[str], budget: RenderBudget) -> str:
    """A text leaf's output: the running size is checked before each chunk is kept."""
    kept: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        budget.check_chars(size, "the rendered text")
        kept.append(chunk)
    budget.add_rendered(size)
    return "".join(kept)


def typed_result(value: Any, budget: RenderBudget) -> JSON:
    """A single-expression leaf's value, size-checked, as JSON data."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        # The common case, shortened: to_json is the identity and estimate_chars is
        # len + 2 (quotes) for a str, 24 for an int or a bool.
        size = len(value) + 2 if kind is str else 24
        budget.check_chars(size, "the value")
        budget.add_rendered(size)
        return value
    budget.check_chars(estimate_chars(value, budget.limits.max_leaf_chars), "the value")
    result = to_json(value)
    budget.add_rendered(estimate_chars(result, budget.limits.max_plan_chars))
    return result


def to_json(value: Any) -> JSON:
    """A rendered value as plain JSON data (tuples become lists, other objects text)."""
    if value is None or isinstance(value, bool | int | str):
        return str(value) if type(value) not in (bool, int, str, type(None)) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return str(value)
