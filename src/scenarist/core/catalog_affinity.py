"""Load-time checks of a task's worker affinity: `requires: {label: value}`,
`prefers: {label: value}` (values may be templates over the parameters) and
`prefer_wait_seconds` (core/affinity.py). Every error names the file, the line and the
field."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from scenarist.core.affinity import DEFAULT_PREFER_WAIT
from scenarist.core.catalog_where import Where, field_where
from scenarist.core.render import CompiledLeaf
from scenarist.core.template import AffinityTemplate, LabelSource
from scenarist.core.workers import LABEL_KEY_PATTERN, MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS

AFFINITY_KEYS = frozenset({"requires", "prefers", "prefer_wait_seconds"})
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)


def parse_affinity(where: Where, raw: Mapping[str, Any], compile_leaf: Any) -> AffinityTemplate:
    """The task's affinity; `raw` is the task's mapping (at least one key of
    AFFINITY_KEYS present). `compile_leaf(where, source, path)` compiles a value."""
    requires = _labels(where, raw, "requires", compile_leaf)
    prefers = _labels(where, raw, "prefers", compile_leaf)
    wait = raw.get("prefer_wait_seconds")
    if wait is None:
        return AffinityTemplate(requires, prefers, DEFAULT_PREFER_WAIT)
    at = field_where(where, raw, "prefer_wait_seconds")
    if not prefers:
        at.fail("'prefer_wait_seconds' needs 'prefers' (the labels a worker is preferred for)")
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
        at.fail(f"'prefer_wait_seconds' must be a number of seconds >= 0, got {wait!r}")
    if wait < 0:
        at.fail(f"'prefer_wait_seconds' must be a number of seconds >= 0, got {wait!r}")
    return AffinityTemplate(requires, prefers, float(wait))


def _labels(
    where: Where, raw: Mapping[str, Any], key: str, compile_leaf: Any
) -> dict[str, LabelSource]:
    value = raw.get(key)
    if value is None:
        return {}
    at = field_where(where, raw, key)
    if not isinstance(value, Mapping) or not value:
        at.fail(f"{key!r} must be a non-empty mapping of label name to value")
    if len(value) > MAX_LABELS:
        at.fail(f"{key!r} may name at most {MAX_LABELS} labels, got {len(value)}")
    labels: dict[str, LabelSource] = {}
    for name, label in value.items():
        if not isinstance(name, str) or len(name) > MAX_LABEL_KEY or not _LABEL_KEY.match(name):
            at.fail(
                f"{key}: label name {name!r} must be 1..{MAX_LABEL_KEY} letters, digits, '_', "
                "'.' or '-', starting with a letter or digit"
            )
        if isinstance(label, bool) or not isinstance(label, str | int | float):
            at.fail(f"{key}.{name}: must be text or a template, got {label!r}")
        text = str(label)
        if len(text) > MAX_LABEL_VALUE:
            at.fail(f"{key}.{name}: at most {MAX_LABEL_VALUE} characters")
        leaf: CompiledLeaf = compile_leaf(at, text, f"{key}.{name}")
        labels[name] = leaf if leaf.template is not None else text
    return labels
