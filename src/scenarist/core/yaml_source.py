"""YAML parsing that remembers where each mapping came from, so catalog errors name a line.

Mappings load as `LineMap` (a dict with the 1-based line of the mapping and of each key).
Timestamps stay strings (payloads must be JSON), and a key repeated in one mapping is an
error instead of YAML's silent last-one-wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class SourceError(ValueError):
    """The YAML text is malformed; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class LineMap(dict[Any, Any]):
    """A mapping read from YAML, with the line it starts on and the line of each key."""

    line: int
    key_lines: dict[Any, int]

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_line_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    _reject_duplicate_keys(node)
    loader.flatten_mapping(node)
    data = LineMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise SourceError(
                "a mapping key must be a scalar", key_node.start_mark.line + 1
            ) from None
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1


def _reject_duplicate_keys(node: yaml.MappingNode) -> None:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if key_node.value in seen:
            raise SourceError(f"duplicate key {key_node.value!r}", key_node.start_mark.line + 1)
        seen.add(key_node.value)


def _construct_plain_string(loader: _LineLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_map)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_plain_string)


def load_yaml(text: str) -> object:
    """Parse one YAML document; raise SourceError with the line of a syntax error."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceError(f"invalid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}") from None
