"""Leaves of text and bare variable names skip Jinja: same values, same budget, same errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarist.core.errors import RenderError
from scenarist.core.model import JSON
from scenarist.core.render import CompiledLeaf, Renderer, RenderLimits
from scenarist.core.render_simple import Variable

WHERE = "scenario 'S', task 't', payload.x"
# Names a request may use, including some that shadow Jinja globals (variables win).
NAMES = ["a", "b", "index", "count", "range", "namespace"]


def outcome(renderer: Renderer, leaf: CompiledLeaf, variables: dict[str, JSON]) -> object:
    """The rendered value (or error message) and the budget counters it left behind."""
    session = renderer.session()
    try:
        value: object = session.render(leaf, variables, WHERE)
    except RenderError as exc:
        value = ("error", exc.message)
    budget = session.budget
    return value, budget.rendered_chars, budget.allocated_chars, budget.iterations


def through_jinja(leaf: CompiledLeaf) -> CompiledLeaf:
    return dataclasses.replace(leaf, parts=None, names=frozenset())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
plain_text = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=12)


@st.composite
def simple_sources(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            pieces.append(draw(plain_text))
        else:
            left, right = draw(st.sampled_from(["", "-"])), draw(st.sampled_from(["", "-"]))
            pieces.append(f"{{{{{left} {draw(st.sampled_from(NAMES))} {right}}}}}")
    return "".join(pieces)


@settings(max_examples=300, deadline=None)
@given(simple_sources(), st.dictionaries(st.sampled_from(NAMES), json_values))
def test_simple_leaves_render_as_jinja_does(source: str, variables: dict[str, JSON]) -> None:
    renderer = Renderer(RenderLimits(max_leaf_chars=200, max_plan_chars=400))
    leaf = renderer.compile(source)
    if leaf.template is not None:
        assert leaf.parts is not None
    assert outcome(renderer, leaf, variables) == outcome(renderer, through_jinja(leaf), variables)


@pytest.mark.parametrize(
    ("source", "parts"),
    [
        ("{{ n }}", (Variable("n"),)),
        ("a {{ n }} b{# note #}c", ("a ", Variable("n"), " bc")),
        (" {{- n }}  \n", (Variable("n"), "  ")),
        ("{{ n + 1 }}", None),
        ("{{ n.upper() }}", None),
        ("{{ n | upper }}", None),
        ("{% if n %}x{% endif %}", None),
        ("{% set n = 1 %}{{ n }}", None),
    ],
)
def test_only_text_and_bare_names_take_the_simple_path(
    source: str, parts: tuple[object, ...] | None
) -> None:
    assert Renderer().compile(source).parts == parts


def test_typed_and_text_leaves_keep_their_types() -> None:
    renderer = Renderer()
    session = renderer.session()
    values: dict[str, JSON] = {"n": 3, "items": (1, [2]), "flag": False}
    assert session.render(renderer.compile("{{ n }}"), values, WHERE) == 3
    assert session.render(renderer.compile("{{ items }}"), values, WHERE) == [1, [2]]
    assert session.render(renderer.compile("{{ flag }}!"), values, WHERE) == "False!"
    assert session.render(renderer.compile("{{ n }}\n"), values, WHERE) == "3"


def test_names_the_request_lacks_still_go_through_jinja() -> None:
    renderer = Renderer()
    with pytest.raises(RenderError, match=r"payload.x: undefined variable: 'n' is undefined"):
        renderer.session().render(renderer.compile("a {{ n }}"), {"m": 1}, WHERE)
    leaf = renderer.compile("{{ range }}")
    assert str(renderer.session().render(leaf, {}, WHERE)).startswith("<function")


@pytest.mark.parametrize(
    ("source", "value", "message"),
    [
        ("{{ v }}", "x" * 70_000, "the value would be 70002 characters"),
        ("{{ v }}", ["x" * 40_000] * 2, "the value would be"),
        ("a{{ v }}", "x" * 70_000, "the rendered text would be 70001 characters"),
        ("a{{ v }}", ["x" * 60_000] * 10_000, "an output would be"),
    ],
)
def test_oversized_variables_are_refused(source: str, value: JSON, message: str) -> None:
    renderer = Renderer()
    leaf = renderer.compile(source)
    assert leaf.parts is not None
    with pytest.raises(RenderError, match=message) as caught:
        renderer.session().render(leaf, {"v": value}, WHERE)
    assert caught.value.message.startswith(WHERE)


def test_simple_leaves_count_towards_the_plan_total() -> None:
    renderer = Renderer(RenderLimits(max_plan_chars=100))
    session = renderer.session()
    leaf = renderer.compile("{{ v }}!")
    session.render(leaf, {"v": "x" * 60}, WHERE)
    with pytest.raises(RenderError, match="rendered payloads exceed 100 characters"):
        session.render(leaf, {"v": "x" * 60}, WHERE)


def test_simple_leaves_respect_the_deadline() -> None:
    renderer = Renderer(RenderLimits(max_seconds=0.0))
    with pytest.raises(RenderError, match="rendering took longer than 0 s"):
        renderer.session().render(renderer.compile("{{ v }}"), {"v": 1}, WHERE)
