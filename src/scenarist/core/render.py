"""Bounded, sandboxed Jinja2 rendering of a catalog's string leaves.

Only string leaves of the parsed YAML are templates, so a parameter can never change a
payload's structure. A leaf that is one `{{ expression }}` keeps the expression's JSON type
(`"{{ slides_count }}"` renders to the integer 3); any other leaf renders to a string.

Every way a template can burn time or memory is bounded (see `RenderLimits`): operators,
`range`, loops, filters, str methods, macro recursion, captured blocks and output; each
check runs before the big thing is built and raises RenderError. Leaves made only of text
and variable names the request provides skip Jinja, under the same checks (render_simple.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from scenarist.core.errors import RenderError
from scenarist.core.model import JSON
from scenarist.core.render_budget import (
    RenderBudget,
    RenderLimits,
    activate,
    active_budget,
    deactivate,
    estimate_chars,
)
from scenarist.core.render_guards import (
    REMOVED_FILTERS,
    check_percent_format,
    check_str_method,
    guard_filter,
)
from scenarist.core.render_simple import (
    SimpleParts,
    Variable,
    check_output,
    join_checked,
    render_simple,
    simple_parts,
    typed_result,
)

__all__ = ["CompiledLeaf", "RenderLimits", "RenderSession", "Renderer", "TemplateCompileError"]

_ITER = "__scenarist_iter"  # wraps every {% for %} iterable
_CONCAT = "__scenarist_concat"  # replaces the `~` operator
_RESULT = "__scenarist_result"  # holds the value of a single-expression leaf
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")
_SINGLE_EXPRESSION = re.compile(r"\A\{\{.*\}\}\Z", re.DOTALL)


class TemplateCompileError(ValueError):
    """A leaf is not a valid template; `lineno` is relative to the leaf's text."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(message)
        self.message, self.lineno = message, lineno


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus size and time checks on every operator, call, loop and filter."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        self.filters = {
            name: guard_filter(name, func)
            for name, func in self.filters.items()
            if name not in REMOVED_FILTERS
        }
        self.globals.pop("lipsum", None)
        self.globals.update({"range": _bounded_range, _ITER: _bounded_iter, _CONCAT: _concat})

    @staticmethod
    def concat(chunks: Iterable[str]) -> str:
        """Joins captured blocks and macro bodies; the parts are summed before joining."""
        parts = list(chunks)
        active_budget().check_chars(sum(map(len, parts)), "a captured block")
        return "".join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = active_budget()
        budget.tick()
        _check_binop(budget, operator, left, right)
        return self.binop_table[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = active_budget()
        budget.tick()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            check_str_method(budget, owner, method.__name__, (*args, *kwargs.values()))
        elif isinstance(owner, bytes):
            raise RenderError("methods of bytes are not allowed in templates")
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (budget.iterate(args[0]), *args[1:])
        if budget.call_depth >= budget.limits.max_call_depth:
            raise RenderError(f"calls nested deeper than {budget.limits.max_call_depth} levels")
        budget.call_depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.call_depth -= 1

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # `encode` is the only way to get bytes, whose methods are not size-checked.
        if isinstance(obj, str) and attr == "encode":
            return False
        return super().is_safe_attribute(obj, attr, value)

    def compile_leaf_template(self, source: str) -> tuple[Template, bool, SimpleParts | None]:
        """Compile a leaf: the template, whether it is a single expression (typed), and
        its parts when it is only text and variable names (see render_simple)."""
        try:
            tree = self.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None
        for name in tree.find_all(nodes.Name):
            if name.name.startswith("__scenarist"):
                raise TemplateCompileError(f"the name {name.name!r} is reserved", name.lineno)
        body = tree.body
        single = bool(_SINGLE_EXPRESSION.match(source)) and _single_output(body)
        parts = simple_parts(body)
        if single:
            output = body[0]
            assert isinstance(output, nodes.Output)
            target = nodes.Name(_RESULT, "store", lineno=1)
            tree = nodes.Template([nodes.Assign(target, output.nodes[0], lineno=1)], lineno=1)
        bounded = _bound_loops_and_concat(tree)
        assert isinstance(bounded, nodes.Template)
        bounded.set_environment(self)
        try:
            return self.from_string(bounded), single, parts
        except TemplateSyntaxError as exc:
            raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None


def _single_output(body: list[nodes.Node]) -> bool:
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return False
    parts = body[0].nodes
    return len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData)


def _bound_loops_and_concat(node: nodes.Node) -> nodes.Node:
    """Rewrite the tree: `for x in it` -> `for x in __scenarist_iter(it)`, `a ~ b` ->
    `__scenarist_concat([a, b])`, so loops and concatenations run through the budget."""
    for field_name, value in node.iter_fields():
        if isinstance(value, nodes.Node):
            setattr(node, field_name, _bound_loops_and_concat(value))
        elif isinstance(value, list):
            setattr(node, field_name, [_maybe_bound(item) for item in value])
    if isinstance(node, nodes.For):
        node.iter = _call_global(_ITER, [cast(nodes.Expr, node.iter)], node.lineno)
    if isinstance(node, nodes.Concat):
        return _call_global(_CONCAT, [nodes.List(node.nodes, lineno=node.lineno)], node.lineno)
    return node


def _maybe_bound(item: Any) -> Any:
    return _bound_loops_and_concat(item) if isinstance(item, nodes.Node) else item


def _call_global(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load"), args, [], None, None, lineno=lineno)


def _check_binop(budget: RenderBudget, op: str, left: Any, right: Any) -> None:
    if op == "%" and isinstance(left, str):
        check_percent_format(budget, left, right)
    elif op == "*" and isinstance(right, int) and isinstance(left, str | list | tuple):
        _check_repeat(budget, left, right)
    elif op == "*" and isinstance(left, int) and isinstance(right, str | list | tuple):
        _check_repeat(budget, right, left)
    elif op == "*" and isinstance(left, int) and isinstance(right, int):
        _check_int_bits(budget, left.bit_length() + right.bit_length())
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        _check_int_bits(budget, max(left.bit_length() - 1, 0) * right)
    elif op == "+" and isinstance(left, str) and isinstance(right, str):
        budget.check_chars(len(left) + len(right), "a string built with +")
    elif op == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        budget.check_sequence(len(left) + len(right), "a list built with +")


def _check_repeat(
    budget: RenderBudget, sequence: str | list[Any] | tuple[Any, ...], n: int
) -> None:
    if isinstance(sequence, str):
        budget.check_chars(len(sequence) * max(n, 0), "a string built with *")
    else:
        budget.check_sequence(len(sequence) * max(n, 0), "a list built with *")


def _check_int_bits(budget: RenderBudget, bits: int) -> None:
    if bits > budget.limits.max_int_bits:
        raise RenderError(
            f"an integer would need {bits} bits, over the limit of {budget.limits.max_int_bits}"
        )


def _bounded_range(*args: int) -> Iterator[int]:
    budget = active_budget()
    numbers = range(*args)
    budget.check_sequence(len(numbers), "range()")
    return budget.iterate(numbers)


def _bounded_iter(iterable: Any) -> Any:
    if isinstance(iterable, Undefined):
        return iterable  # lets StrictUndefined name the variable
    return active_budget().iterate(iterable)


def _concat(parts: list[Any]) -> str:
    budget = active_budget()
    limit = budget.limits.max_leaf_chars
    size = sum(estimate_chars(p, limit) if not isinstance(p, str) else len(p) for p in parts)
    budget.check_chars(size, "a string built with ~")
    return "".join(map(str, parts))


def _finalize(value: Any) -> Any:
    return check_output(active_budget(), value)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledLeaf:
    """One string leaf of a payload or a count, compiled once at catalog load."""

    source: str
    template: Template | None  # None: plain text, no template syntax
    typed: bool  # a single `{{ expression }}`: the value keeps its JSON type
    parts: SimpleParts | None = None  # only text and variable names: rendered without Jinja
    names: frozenset[str] = frozenset()  # the variable names in `parts`
    path: str = ""  # where it sits in its task (`payload.x[1]`, `count`), for error messages


class Renderer:
    """Compiles leaves with one shared bounded environment and opens per-plan sessions."""

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits()
        self._env = BoundedEnvironment()

    def compile(self, source: str, path: str = "") -> CompiledLeaf:
        """Compile one leaf; `path` is its place in a task, named by its render errors."""
        if not _TEMPLATE_SYNTAX.search(source):
            return CompiledLeaf(source, None, typed=False, path=path)
        template, typed, parts = self._env.compile_leaf_template(source)
        names = frozenset(p.name for p in parts or () if isinstance(p, Variable))
        return CompiledLeaf(source, template, typed, parts, names, path)

    def session(self) -> RenderSession:
        return RenderSession(RenderBudget(self.limits))


@dataclass
class RenderSession:
    """Renders the leaves of one plan against one budget (deadline, total size)."""

    budget: RenderBudget
    _token: Any = field(default=None, repr=False)

    def render(self, leaf: CompiledLeaf, variables: Mapping[str, JSON], where: str) -> JSON:
        """Render one leaf; errors are RenderError naming `where` (scenario, task) and the
        leaf's path."""
        template = leaf.template
        if template is None:
            return leaf.source
        # Text and variable names the request provides need neither Jinja nor the active
        # budget (no template code runs): see render_simple.
        simple = leaf.parts is not None and leaf.names <= variables.keys()
        token = None if simple else activate(self.budget)
        try:
            if leaf.parts is not None and simple:
                return render_simple(leaf.parts, leaf.typed, variables, self.budget)
            return _evaluate(leaf, template, variables, self.budget)
        except RenderError as exc:
            raise RenderError(f"{_place(where, leaf)}: {exc.message}") from None
        except RecursionError:
            raise RenderError(f"{_place(where, leaf)}: templates recursed too deeply") from None
        except UndefinedError as exc:
            message = f"undefined variable: {exc.message}"
            raise RenderError(f"{_place(where, leaf)}: {message}") from None
        except SecurityError as exc:
            raise RenderError(f"{_place(where, leaf)}: not allowed in templates: {exc}") from None
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise RenderError(f"{_place(where, leaf)}: {type(exc).__name__}: {exc}") from None
        finally:
            if token is not None:
                deactivate(token)


def _place(where: str, leaf: CompiledLeaf) -> str:
    # Built only for an error: the success path formats no location strings.
    return f"{where}, {leaf.path}" if leaf.path else where


def _evaluate(
    leaf: CompiledLeaf, template: Template, variables: Mapping[str, JSON], budget: RenderBudget
) -> JSON:
    context = template.new_context(dict(variables))
    if not leaf.typed:
        return join_checked(template.root_render_func(context), budget)
    for _ in template.root_render_func(context):
        pass
    value = context.vars[_RESULT]
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the variable
    return typed_result(value, budget)
