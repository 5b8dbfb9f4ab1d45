"""The bounded sandbox: every bomb ends quickly with a RenderError, without big allocations."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest

from scenarist.core.errors import RenderError
from scenarist.core.model import JSON
from scenarist.core.render import Renderer, RenderLimits, TemplateCompileError

WHERE = "scenario 'S', task 't', payload.x"


def render(source: str, renderer: Renderer | None = None, **variables: JSON) -> JSON:
    renderer = renderer or Renderer()
    return renderer.session().render(renderer.compile(source), variables, WHERE)


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("plain text", {}, "plain text"),
        ("{{ n }}", {"n": 3}, 3),
        ("{{ flag }}", {"flag": True}, True),
        ("{{ items }}", {"items": [1, (2, 3)]}, [1, [2, 3]]),
        ("{{ n }} parts", {"n": 3}, "3 parts"),
        (" {{ n }}", {"n": 3}, " 3"),
        ("{{ d|upper }}-{{ i }}", {"d": "cat", "i": 2}, "CAT-2"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", {}, "012"),
        ("{{ '%03d' % n }}", {"n": 7}, "007"),
        ("{{ '{:>4}'.format(n) }}", {"n": 7}, "   7"),
        ("{{ 'a' ~ n ~ 'b' }}", {"n": 1}, "a1b"),
        ("{{ [1, 2, 3] | sum }}", {}, 6),
        ("{{ ['a', 'b'] | join('-') }}", {}, "a-b"),
        ("{{ text }}", {"text": "{{ 7 * 7 }}"}, "{{ 7 * 7 }}"),
    ],
)
def test_rendering(source: str, variables: dict[str, JSON], expected: JSON) -> None:
    assert render(source, **variables) == expected


def test_undefined_variables_are_named() -> None:
    with pytest.raises(RenderError, match="undefined variable: 'missing' is undefined") as caught:
        render("hello {{ missing }}")
    assert caught.value.message.startswith(WHERE)


def test_a_single_undefined_expression_is_an_error_too() -> None:
    with pytest.raises(RenderError, match="'missing' is undefined"):
        render("{{ missing }}")


# Under tracemalloc loops run slower, so the deadline may trip before the iteration cap.
LOOPED = ("templates looped more than", "rendering took longer than")

BOMBS: list[tuple[str, str | tuple[str, ...]]] = [
    ("{{ 'a' * 10**9 }}", "a string built with * would be 1000000000 characters"),
    ("{{ ['a'] * 10**9 }}", "a list built with * would have 1000000000 items"),
    ("{{ 9 ** 9999999 }}", "an integer would need"),
    ("{{ (2 ** 4000) * (2 ** 4000) }}", "an integer would need"),
    ("{{ range(10**9) | list }}", "range() would have 1000000000 items"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "calls nested deeper than"),
    ("{% for x in [1] recursive %}{{ loop([1, 2]) }}{% endfor %}", "calls nested deeper than"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        LOOPED,
    ),
    ("{% for i in range(10000) %}{{ 'x' * 60000 }}{% endfor %}", "the rendered text would be"),
    (
        "{% set s = 'x' * 60000 %}{% set b %}{% for i in range(10000) %}{{ s }}{% endfor %}"
        "{% endset %}{{ b | length }}",
        "a captured block would be",
    ),
    ("{% set s = 'x' * 60000 %}{{ [s] * 10000 }}", "an output would be"),
    ("{% set s = 'x' * 60000 %}{{ ([s] * 10000) | join }}", "join filter"),
    ("{% set s = 'x' * 60000 %}{{ s.replace('x', s) }}", "str.replace() would be"),
    ("{% set s = 'x' * 60000 %}{{ s | replace('x', s) }}", "the replace filter would be"),
    ("{% set s = 'x' * 60000 %}{{ s.join([s, s]) }}", "str.join() would be"),
    ("{{ '%999999999s' % 1 }}", "a % formatted string would be"),
    ("{{ '%*s' % (10**9, 1) }}", "'*' widths are not allowed"),
    ("{{ '%999999999s' | format(1) }}", "a % formatted string would be"),
    ("{{ '{:999999999}'.format(1) }}", "a formatted string would be"),
    ("{{ '{:{w}}'.format(1, w=10**9) }}", "nested replacement fields"),
    ("{{ 'a' | center(10**9) }}", "the center filter would be"),
    ("{{ 'a'.ljust(10**9) }}", "str.ljust() would be"),
    ("{{ 'a\\tb'.expandtabs(10**9) }}", "str.expandtabs() would be"),
    ("{{ 'a' | indent(10**9, true) }}", "the indent filter would be"),
    ("{{ ('a ' * 30000) | wordwrap(2, wrapstring='x' * 1000) }}", "the wordwrap filter"),
    ("{{ [1] | batch(10**9, 'x') | list }}", "'linecount' would have"),
    ("{{ [1] | slice(10**9) | list }}", "'slices' would have"),
    ("{{ [[0] * 10000] * 10000 | sum(start=[]) }}", "the sum filter only adds numbers"),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}",
        "a string built with ~ would be",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s | length }}",
        "a string built with + would be",
    ),
    (
        "{% set s = 'x' * 60000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        LOOPED,
    ),
    ("{{ 'abc'.encode() }}", "not allowed in templates"),
    ("{{ 'abc'.translate({97: 'x' * 60000}) }}", "str.translate() is not allowed"),
    ("{{ lipsum(10**6) }}", "'lipsum' is undefined"),
    ("{{ ''.__class__.__mro__ }}", "not allowed in templates"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
]


@pytest.mark.parametrize(("source", "message"), BOMBS)
def test_bombs_fail_fast_without_allocating(source: str, message: str | tuple[str, ...]) -> None:
    renderer = Renderer()
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(RenderError) as caught:
            render(source, renderer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = (message,) if isinstance(message, str) else message
    assert any(text in caught.value.message for text in expected), caught.value.message
    assert caught.value.message.startswith(WHERE)
    assert time.monotonic() - started < 2.0
    assert peak < 32 * 1024 * 1024


@pytest.mark.parametrize(
    ("source", "message"),
    [("{{ x", "unexpected end of template"), ("{{ [1, 2] | random }}", "No filter named 'random'")],
)
def test_compile_errors_surface_before_rendering(source: str, message: str) -> None:
    # `random` is removed so that the same parameters always give the same plan.
    with pytest.raises(TemplateCompileError, match=message):
        Renderer().compile(source)


def test_wall_clock_limit_stops_slow_templates() -> None:
    renderer = Renderer(RenderLimits(max_seconds=0.2, max_iterations=10**9))
    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"rendering took longer than 0.2 s"):
        render(source, renderer)
    assert time.monotonic() - started < 1.5


def test_per_plan_output_is_capped_across_leaves() -> None:
    renderer = Renderer(RenderLimits(max_plan_chars=100))
    session = renderer.session()
    leaf = renderer.compile("{{ 'x' * 60 }}!")
    session.render(leaf, {}, WHERE)
    with pytest.raises(RenderError, match="rendered payloads exceed 100 characters"):
        session.render(leaf, {}, WHERE)


def test_each_session_has_its_own_budget() -> None:
    renderer = Renderer(RenderLimits(max_plan_chars=100))
    leaf = renderer.compile("{{ 'x' * 60 }}!")
    for _ in range(3):
        assert renderer.session().render(leaf, {}, WHERE) == "x" * 60 + "!"


def test_concurrent_sessions_do_not_share_budgets() -> None:
    renderer = Renderer()
    leaf = renderer.compile("{% for i in range(1000) %}{{ i }}{% endfor %}")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                renderer.session().render(leaf, {}, WHERE)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_templates_render_only_through_a_session() -> None:
    renderer = Renderer()
    leaf = renderer.compile("{{ 'a' * 2 }}")
    assert leaf.template is not None
    with pytest.raises(RenderError, match="only be rendered through a RenderSession"):
        leaf.template.render()
