"""Scenario parameters: their declared specs and the validation of a request against them.

Request values are strict JSON types (no bool-as-int, no numeric strings); only the CLI
turns `k=v` text into a typed value, through `parse_param_text` and the declared type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from scenarist.core.errors import ParamError
from scenarist.core.model import JSON


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


class SpecError(ValueError):
    """A parameter spec in a catalog is malformed; the catalog loader adds file and line."""


SPEC_KEYS = frozenset(
    {"type", "required", "default", "minimum", "maximum", "min_length", "max_length"}
    | {"enum", "description"}
)
_NO_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: ParamType
    required: bool = False
    default: JSON = _NO_DEFAULT
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[JSON, ...] | None = None
    description: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    def describe(self) -> dict[str, JSON]:
        """A JSON-Schema-like description of this parameter (for `GET /templates`)."""
        schema: dict[str, JSON] = {"type": self.type.value}
        optional = {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "enum": list(self.enum) if self.enum is not None else None,
            "description": self.description or None,
        }
        schema.update({key: value for key, value in optional.items() if value is not None})
        if self.has_default:
            schema["default"] = self.default
        return schema

    def check(self, value: JSON) -> None:
        """Raise ParamError naming this parameter and the broken rule."""
        _check_type(self, value)
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(repr(v) for v in self.enum)
            self._fail(f"must be one of {allowed} (enum), got {value!r}")
        if isinstance(value, str):
            self._check_length(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._check_bounds(value)

    def _check_length(self, value: str) -> None:
        if self.min_length is not None and len(value) < self.min_length:
            self._fail(f"must be at least {self.min_length} characters (min_length)")
        if self.max_length is not None and len(value) > self.max_length:
            self._fail(
                f"must be at most {self.max_length} characters (max_length), got {len(value)}"
            )

    def _check_bounds(self, value: float) -> None:
        if self.minimum is not None and value < self.minimum:
            self._fail(f"must be >= {self.minimum} (minimum), got {value}")
        if self.maximum is not None and value > self.maximum:
            self._fail(f"must be <= {self.maximum} (maximum), got {value}")

    def _fail(self, rule: str) -> NoReturn:
        raise ParamError(f"parameter {self.name!r} {rule}", field=self.name)


def _json_type_name(value: JSON) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return names.get(type(value), "array" if isinstance(value, list | tuple) else "object")


def _check_type(spec: ParamSpec, value: JSON) -> None:
    kind = spec.type
    if kind is ParamType.STRING:
        ok = isinstance(value, str)
    elif kind is ParamType.BOOLEAN:
        ok = isinstance(value, bool)
    elif kind is ParamType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    if not ok:
        spec._fail(f"must be of type {kind.value}, got {_json_type_name(value)}")


def validate_params(specs: tuple[ParamSpec, ...], values: Mapping[str, JSON]) -> dict[str, JSON]:
    """The request's parameters checked against `specs`, with defaults filled in."""
    by_name = {spec.name: spec for spec in specs}
    errors: list[ParamError] = []
    for name in values:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "(none)"
            errors.append(
                ParamError(f"unknown parameter {name!r}; known: {known}", field=str(name))
            )
    validated: dict[str, JSON] = {}
    for spec in specs:
        if spec.name in values:
            try:
                spec.check(values[spec.name])
            except ParamError as exc:
                errors.append(exc)
            validated[spec.name] = values[spec.name]
        elif spec.has_default:
            validated[spec.name] = spec.default
        elif spec.required:
            errors.append(ParamError(f"parameter {spec.name!r} is required", field=spec.name))
    if errors:  # every bad parameter at once, not one per round trip
        raise ParamError.every(errors)
    return validated


def parse_param_text(spec: ParamSpec | None, name: str, text: str) -> JSON:
    """Turn command-line text into the declared type (unknown names stay strings)."""
    if spec is None or spec.type is ParamType.STRING:
        return text
    try:
        if spec.type is ParamType.INTEGER:
            return int(text)
        if spec.type is ParamType.NUMBER:
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
    except ValueError:
        raise ParamError(
            f"parameter {name!r} must be of type {spec.type.value}, got {text!r}", field=name
        ) from None
    booleans = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in booleans:
        raise ParamError(f"parameter {name!r} must be of type boolean, got {text!r}", field=name)
    return booleans[text.lower()]


# --- reading a spec from the catalog ------------------------------------------------------


def parse_param_spec(name: str, raw: object) -> ParamSpec:
    """Build a ParamSpec from its catalog mapping; raise SpecError on any malformed field."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"parameter {name!r}: spec must be a mapping, got {_json_type_name(raw)}")
    unknown = sorted(str(k) for k in raw if k not in SPEC_KEYS)
    if unknown:
        raise SpecError(
            f"parameter {name!r}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(SPEC_KEYS))}"
        )
    kind = _spec_type(name, raw.get("type"))
    spec = ParamSpec(
        name=name,
        type=kind,
        required=_spec_bool(name, raw, "required"),
        default=raw.get("default", _NO_DEFAULT),
        minimum=_spec_number(name, raw, "minimum", kind),
        maximum=_spec_number(name, raw, "maximum", kind),
        min_length=_spec_length(name, raw, "min_length", kind),
        max_length=_spec_length(name, raw, "max_length", kind),
        enum=_spec_enum(name, raw.get("enum")),
        description=_spec_text(name, raw, "description"),
    )
    _check_spec_consistency(spec)
    return spec


def _spec_type(name: str, value: object) -> ParamType:
    allowed = ", ".join(t.value for t in ParamType)
    if value is None:
        raise SpecError(f"parameter {name!r}: missing 'type' (one of {allowed})")
    try:
        return ParamType(str(value))
    except ValueError:
        raise SpecError(f"parameter {name!r}: unknown type {value!r}; allowed: {allowed}") from None


def _spec_bool(name: str, raw: Mapping[str, object], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"parameter {name!r}: {key!r} must be true or false, got {value!r}")
    return value


def _spec_text(name: str, raw: Mapping[str, object], key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise SpecError(f"parameter {name!r}: {key!r} must be a string")
    return value


def _spec_number(
    name: str, raw: Mapping[str, object], key: str, kind: ParamType
) -> int | float | None:
    value = raw.get(key)
    if value is None:
        return None
    if kind not in (ParamType.INTEGER, ParamType.NUMBER):
        raise SpecError(f"parameter {name!r}: {key!r} only applies to integer or number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"parameter {name!r}: {key!r} must be a number, got {value!r}")
    return value


def _spec_length(name: str, raw: Mapping[str, object], key: str, kind: ParamType) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if kind is not ParamType.STRING:
        raise SpecError(f"parameter {name!r}: {key!r} only applies to string")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"parameter {name!r}: {key!r} must be a non-negative integer")
    return value


def _spec_enum(name: str, value: object) -> tuple[JSON, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise SpecError(f"parameter {name!r}: 'enum' must be a non-empty list")
    return tuple(value)


def _check_spec_consistency(spec: ParamSpec) -> None:
    prefix = f"parameter {spec.name!r}"
    if spec.required and spec.has_default:
        raise SpecError(f"{prefix}: a required parameter cannot have a default")
    for low, high in ((spec.minimum, spec.maximum), (spec.min_length, spec.max_length)):
        if low is not None and high is not None and low > high:
            raise SpecError(f"{prefix}: lower bound {low} is greater than upper bound {high}")
    checks = [("enum value", v) for v in spec.enum or ()]
    if spec.has_default:
        checks.append(("default", spec.default))
    for what, value in checks:
        probe = spec if what == "default" else _without_enum(spec)
        try:
            probe.check(value)
        except ParamError as exc:
            raise SpecError(f"{prefix}: {what} {value!r} is invalid: {exc.message}") from None


def _without_enum(spec: ParamSpec) -> ParamSpec:
    return ParamSpec(
        name=spec.name,
        type=spec.type,
        minimum=spec.minimum,
        maximum=spec.maximum,
        min_length=spec.min_length,
        max_length=spec.max_length,
    )
