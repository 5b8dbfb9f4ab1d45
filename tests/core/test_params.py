"""Request parameters against declared specs: every rule names the field and the rule."""

from __future__ import annotations

import math

import pytest

from scenarist.core.errors import ParamError
from scenarist.core.params import (
    ParamSpec,
    ParamType,
    SpecError,
    parse_param_spec,
    parse_param_text,
    validate_params,
)

SPECS = (
    ParamSpec("description", ParamType.STRING, required=True, min_length=1, max_length=10),
    ParamSpec("slides_count", ParamType.INTEGER, default=3, minimum=1, maximum=100),
    ParamSpec("ratio", ParamType.NUMBER, minimum=0.5),
    ParamSpec("loud", ParamType.BOOLEAN, default=False),
    ParamSpec("voice", ParamType.STRING, enum=("alto", "bass")),
)


def test_defaults_are_filled_and_optional_params_without_default_are_left_out() -> None:
    assert validate_params(SPECS, {"description": "cats"}) == {
        "description": "cats",
        "slides_count": 3,
        "loud": False,
    }


def test_given_values_are_kept() -> None:
    values = {"description": "d", "slides_count": 7, "ratio": 2, "loud": True, "voice": "bass"}
    assert validate_params(SPECS, values) == values


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"description": "x", "colour": "red"}, "colour", "unknown parameter 'colour'"),
        ({}, "description", "parameter 'description' is required"),
        ({"description": 5}, "description", "must be of type string, got integer"),
        ({"description": None}, "description", "must be of type string, got null"),
        ({"description": ""}, "description", "at least 1 characters (min_length)"),
        ({"description": "x" * 11}, "description", "at most 10 characters (max_length), got 11"),
        ({"description": "x", "slides_count": True}, "slides_count", "type integer, got boolean"),
        ({"description": "x", "slides_count": "3"}, "slides_count", "type integer, got string"),
        ({"description": "x", "slides_count": 3.0}, "slides_count", "type integer, got number"),
        ({"description": "x", "slides_count": 0}, "slides_count", ">= 1 (minimum), got 0"),
        ({"description": "x", "slides_count": 101}, "slides_count", "<= 100 (maximum), got 101"),
        ({"description": "x", "ratio": 0.1}, "ratio", ">= 0.5 (minimum)"),
        ({"description": "x", "ratio": math.nan}, "ratio", "must be of type number"),
        ({"description": "x", "ratio": False}, "ratio", "type number, got boolean"),
        ({"description": "x", "loud": 1}, "loud", "type boolean, got integer"),
        ({"description": "x", "voice": "tenor"}, "voice", "one of 'alto', 'bass' (enum)"),
        ({"description": "x", "voice": ["alto"]}, "voice", "type string, got array"),
    ],
)
def test_each_rule_names_the_field(values: dict[str, object], field: str, text: str) -> None:
    with pytest.raises(ParamError) as caught:
        validate_params(SPECS, values)
    assert caught.value.field == field
    assert text in caught.value.message
    assert repr(field) in caught.value.message


def test_number_accepts_integers() -> None:
    assert validate_params(SPECS, {"description": "x", "ratio": 1})["ratio"] == 1


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (ParamType.INTEGER, "3", 3),
        (ParamType.NUMBER, "2.5", 2.5),
        (ParamType.NUMBER, "2", 2),
        (ParamType.BOOLEAN, "yes", True),
        (ParamType.BOOLEAN, "False", False),
        (ParamType.STRING, "42", "42"),
    ],
)
def test_cli_text_is_converted_with_the_declared_type(
    kind: ParamType, text: str, expected: object
) -> None:
    value = parse_param_text(ParamSpec("p", kind), "p", text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("kind", [ParamType.INTEGER, ParamType.NUMBER, ParamType.BOOLEAN])
def test_cli_text_of_the_wrong_type_names_the_field(kind: ParamType) -> None:
    with pytest.raises(ParamError, match=rf"parameter 'p' must be of type {kind.value}, got 'abc'"):
        parse_param_text(ParamSpec("p", kind), "p", "abc")


def test_cli_text_for_an_unknown_name_stays_text() -> None:
    assert parse_param_text(None, "other", "12") == "12"


def test_spec_description_is_json_schema_like() -> None:
    spec = parse_param_spec(
        "n",
        {"type": "integer", "default": 2, "minimum": 1, "maximum": 5, "description": "how many"},
    )
    assert spec.describe() == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "default": 2,
        "description": "how many",
    }


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ({"type": "text"}, "unknown type 'text'"),
        ({}, "missing 'type'"),
        ({"type": "integer", "maximun": 3}, "unknown key(s) maximun"),
        ({"type": "integer", "default": 0, "minimum": 1}, "default 0 is invalid"),
        ({"type": "integer", "default": "3"}, "default '3' is invalid"),
        ({"type": "string", "required": True, "default": "x"}, "cannot have a default"),
        ({"type": "string", "minimum": 1}, "'minimum' only applies to integer or number"),
        ({"type": "integer", "max_length": 1}, "'max_length' only applies to string"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "lower bound 5 is greater"),
        ({"type": "string", "enum": []}, "'enum' must be a non-empty list"),
        ({"type": "string", "enum": ["a", 1]}, "enum value 1 is invalid"),
        ({"type": "string", "required": "yes"}, "'required' must be true or false"),
        ("string", "spec must be a mapping"),
    ],
)
def test_bad_specs_are_refused(raw: object, text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_param_spec("n", raw)
    assert text in str(caught.value)
    assert "parameter 'n'" in str(caught.value)


def test_every_bad_parameter_is_reported_at_once_in_spec_order() -> None:
    with pytest.raises(ParamError) as caught:
        validate_params(SPECS, {"slides_count": 0, "loud": "yes", "extra": 1})
    assert caught.value.fields == ("extra", "description", "slides_count", "loud")
    assert caught.value.field == "extra"
    assert "'loud'" in caught.value.message
