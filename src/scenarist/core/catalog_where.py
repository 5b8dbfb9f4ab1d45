"""Where a catalog check runs (file, line, scenario, task) and the field checks every
part of the catalog shares; each failure is a CatalogError with the location filled in."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from scenarist.core.catalog_problems import Problems
from scenarist.core.errors import CatalogError
from scenarist.core.yaml_source import LineMap


@dataclass(frozen=True, slots=True)
class Where:
    """Where in the catalog a check runs: builds CatalogErrors with the location filled in."""

    file: str
    line: int | None = None
    scenario: str | None = None
    task: str | None = None

    def at(self, line: int | None) -> Where:
        return Where(self.file, line or self.line, self.scenario, self.task)

    def fail(self, message: str, line: int | None = None) -> NoReturn:
        raise CatalogError(
            message, file=self.file, line=line or self.line, scenario=self.scenario, task=self.task
        )


def line_of(value: object, key: object = None) -> int | None:
    if not isinstance(value, LineMap):
        return None
    return value.line_of(key) if key is not None else value.line


def check_keys(
    where: Where, raw: Mapping[Any, Any], allowed: frozenset[str], what: str, problems: Problems
) -> None:
    for key in raw:
        if key not in allowed:
            with problems.recover():
                where.fail(
                    f"unknown key {key!r} in {what}; allowed: {', '.join(sorted(allowed))}",
                    line_of(raw, key),
                )


def positive_int(where: Where, value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        where.fail(f"{key!r} must be a positive integer, got {value!r}")
    return value


def positive_number(where: Where, value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        where.fail(f"{key!r} must be a positive number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        where.fail(f"{key!r} must be a positive number, got {value!r}")
    return float(value)


def field_where(where: Where, raw: Mapping[Any, Any], key: str) -> Where:
    return where.at(line_of(raw, key))
