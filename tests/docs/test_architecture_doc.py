"""docs/architecture.md names files, rows and functions; they must exist, so the document
cannot silently drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from scenarist.core import (
    group_expansion,
    lifecycle,
    ready_order,
    step_cache,
    transition_changes,
    transition_guards,
    transitions,
    workers,
)
from scenarist.storage.sqlite import transitions as sqlite_transitions

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
CODE = re.compile(r"`([^`\s]+)`")


def test_every_file_it_names_exists() -> None:
    named = {c for c in CODE.findall(DOC) if c.endswith((".py", ".lua")) and "*" not in c}
    assert named, "the document names no files"
    missing = []
    for name in named:
        candidates = [ROOT / name, ROOT / "src" / "scenarist" / name]
        candidates += list((ROOT / "src" / "scenarist").rglob(Path(name).name))
        if not any(p.exists() for p in candidates):
            missing.append(name)
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_row_and_core_function_it_names_exists() -> None:
    table_section = DOC.split("## Where each rule lives")[1].split("## One task's life")[0]
    names = {c for c in CODE.findall(table_section) if re.fullmatch(r"[a-z_]+", c)}
    core_names = {
        n for n in names if n.startswith(("check_", "can_", "complete_", "fail_", "ready_"))
    }
    core_names |= {n for n in names if n.endswith(("_change", "_changes"))}
    modules = (
        transitions,
        group_expansion,
        transition_changes,
        transition_guards,
        ready_order,
        lifecycle,
        workers,
        step_cache,
        sqlite_transitions,
    )
    missing = sorted(n for n in core_names if not any(hasattr(m, n) for m in modules))
    assert not missing, f"named but defined nowhere: {missing}"
    rows = set(re.findall(r"row `([a-z_]+)`", DOC))
    assert rows, "the task's life names no rows"
    assert rows <= set(transitions.RULES), sorted(rows - set(transitions.RULES))
