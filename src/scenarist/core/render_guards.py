"""Size pre-checks for every operation a template can use to build something big.

The sandbox stops attribute escapes but happily builds `'a' * 10**9`. Each guard here
predicts the size of a result from its inputs and refuses before anything is allocated.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2.runtime import Undefined

from scenarist.core.errors import RenderError
from scenarist.core.render_budget import RenderBudget, active_budget, estimate_chars

# str methods whose output is at most about as long as their input: always fine.
_LINEAR_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
_WIDTH_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def check_percent_format(budget: RenderBudget, fmt: str, args: object) -> None:
    """`fmt % args`: widths and precisions are bounded, then the arguments' sizes add up."""
    widths = 0
    for width, precision in _PERCENT_SPEC.findall(fmt):
        if "*" in (width, precision):
            raise RenderError("'*' widths are not allowed in % formatting")
        widths += int(width or 0) + int(precision or 0)
    size = len(fmt) + widths + estimate_chars(args, budget.limits.max_leaf_chars)
    budget.check_chars(size, "a % formatted string")


def check_format_method(budget: RenderBudget, fmt: str, args: object) -> None:
    """`fmt.format(...)`: no nested replacement fields in specs, bounded widths."""
    widths = 0
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise RenderError(f"bad format string: {exc}") from None
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise RenderError("nested replacement fields are not allowed in format specs")
        widths += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    size = len(fmt) + widths + estimate_chars(args, budget.limits.max_leaf_chars)
    budget.check_chars(size, "a formatted string")


def check_str_method(budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]) -> None:
    """Called before a str method runs: refuse the ones whose output can explode."""
    if name in _LINEAR_STR_METHODS:
        return
    if name in _WIDTH_STR_METHODS:
        budget.check_chars(max(len(text), _as_int(args[0]) if args else 0), f"str.{name}()")
    elif name == "expandtabs":
        tab = _as_int(args[0]) if args else 8
        budget.check_chars(len(text) + text.count("\t") * tab, "str.expandtabs()")
    elif name == "replace" and len(args) >= 2:
        budget.check_chars(replace_size(text, args[0], args[1], None), "str.replace()")
    elif name == "join" and args:
        items = list(budget.iterate(args[0]))
        budget.check_chars(join_size(budget, text, items), "str.join()")
    elif name in ("format", "format_map"):
        check_format_method(budget, text, args)
    else:
        raise RenderError(f"str.{name}() is not allowed in templates")


def replace_size(text: str, old: object, new: object, count: object) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * len(new)


def join_size(budget: RenderBudget, separator: str, items: list[Any]) -> int:
    limit = budget.limits.max_leaf_chars
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += estimate_chars(item, limit) if not isinstance(item, str) else len(item)
        if size > limit:
            break
    return size


# --- filters ---------------------------------------------------------------------------

FilterCheck = Callable[[RenderBudget, tuple[Any, ...], Mapping[str, Any]], None]


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], pos: int, key: str, default: Any) -> Any:
    return args[pos] if len(args) > pos else kwargs.get(key, default)


def _check_center(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = _as_int(_arg(args, kwargs, 1, "width", 80))
    budget.check_chars(max(width, len(str(args[0]))), "the center filter")


def _check_indent(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    text = str(args[0])
    width = _arg(args, kwargs, 1, "width", 4)
    step = len(width) if isinstance(width, str) else _as_int(width)
    budget.check_chars(len(text) + (text.count("\n") + 1) * step, "the indent filter")


def _check_format(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    check_percent_format(budget, str(args[0]), (args[1:], dict(kwargs)))


def _check_replace(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    old, new = _arg(args, kwargs, 1, "old", ""), _arg(args, kwargs, 2, "new", "")
    count = _arg(args, kwargs, 3, "count", None)
    budget.check_chars(replace_size(str(args[0]), old, new, count), "the replace filter")


def _check_wordwrap(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    wrap = _arg(args, kwargs, 3, "wrapstring", None) or "\n"
    text = str(args[0])
    budget.check_chars(len(text) * (1 + len(str(wrap))), "the wordwrap filter")


def _check_count_arg(position: int, key: str) -> FilterCheck:
    def check(budget: RenderBudget, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        budget.check_sequence(_as_int(_arg(args, kwargs, position, key, 0)), f"{key!r}")

    return check


_FILTER_CHECKS: dict[str, FilterCheck] = {
    "center": _check_center,
    "indent": _check_indent,
    "format": _check_format,
    "replace": _check_replace,
    "wordwrap": _check_wordwrap,
    "batch": _check_count_arg(1, "linecount"),
    "slice": _check_count_arg(1, "slices"),
}
# Filters that materialise their input: feed it through the iteration budget first.
_ITERATING_FILTERS = frozenset({"join", "list", "sum"})
REMOVED_FILTERS = frozenset({"random"})  # plans must be reproducible


def _bounded_input(budget: RenderBudget, value: Any) -> Any:
    if isinstance(value, str | Mapping | Undefined):
        return value
    return list(budget.iterate(value)) if isinstance(value, Iterable) else value


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: deadline, sizes of its inputs, its specific pre-check, its output."""
    special = _FILTER_CHECKS.get(name)
    takes_env = getattr(func, "jinja_pass_arg", None) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        head = 1 if takes_env else 0  # context / eval context / environment comes first
        own = list(args[head:])
        if own and name in _ITERATING_FILTERS:
            own[0] = _bounded_input(budget, own[0])
        if name == "sum":
            _require_number_start(_arg(tuple(own), kwargs, 2, "start", 0))
        limit = budget.limits.max_leaf_chars
        for value in (*own, *kwargs.values()):
            budget.check_chars(estimate_chars(value, limit), f"the input of the {name} filter")
        if special is not None and own:
            special(budget, tuple(own), kwargs)
        if name == "join" and own:
            separator = str(_arg(tuple(own), kwargs, 1, "d", ""))
            budget.check_chars(join_size(budget, separator, own[0]), "the join filter")
        result = func(*args[:head], *own, **kwargs)
        if isinstance(result, str):
            budget.check_chars(len(result), f"the output of the {name} filter")
        return result

    return guarded


def _require_number_start(start: object) -> None:
    # With a numeric start, adding a list or string fails at once instead of building
    # a quadratic concatenation.
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise RenderError("the sum filter only adds numbers (start must be a number)")
