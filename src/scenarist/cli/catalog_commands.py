"""Catalog commands that need no server: templates, validate, graph.

Exit codes: 0 success; 1 the catalog, the scenario name or a parameter is invalid (the
message names the file and line, the scenario, the task or the parameter).

The catalog machinery (YAML, Jinja2) is imported inside the commands, so that every other
command, and `--help`, starts without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scenarist.core.errors import CatalogError, ScenaristError

if TYPE_CHECKING:
    from scenarist.core.catalog import Catalog
    from scenarist.core.model import JSON, ScenarioPlan, TaskSpec
    from scenarist.core.params import ParamSpec
    from scenarist.core.template import ScenarioTemplate

EXIT_INVALID = 1

CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar="SCENARIST_SCENARIOS",
        help="scenario catalog (YAML); default: the packaged catalog",
        dir_okay=False,
    ),
]


class GraphFormat(StrEnum):
    TEXT = "text"
    DOT = "dot"
    JSON = "json"


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Print a core error as one line on stderr (a catalog's: one line per problem, in
    file order) and exit with EXIT_INVALID."""
    try:
        yield
    except ScenaristError as exc:
        lines = exc.lines() if isinstance(exc, CatalogError) else [exc.message]
        for line in lines:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(EXIT_INVALID) from None


def templates(
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """List the scenarios of a catalog with their parameters."""
    from scenarist.core.catalog import load_catalog

    with _reported_errors():
        loaded = load_catalog(catalog)
    if as_json:
        typer.echo(json.dumps(loaded.describe(), indent=2))
        return
    for template in loaded.scenarios.values():
        typer.echo(describe_template_text(template))


def validate(
    file: Annotated[Path, typer.Argument(help="catalog file to check", dir_okay=False)],
) -> None:
    """Check a catalog file: YAML, names, parameters, dependencies, cycles, templates."""
    from scenarist.core.catalog import load_catalog

    with _reported_errors():
        loaded = load_catalog(file)
    count = len(loaded.scenarios)
    typer.echo(f"ok: {count} scenario{'s' if count != 1 else ''} ({', '.join(loaded.names())})")


def graph(
    scenario: Annotated[str, typer.Argument(help="scenario name, e.g. CreateVideo")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="parameter as KEY=VALUE (repeat)")
    ] = None,
    catalog: CatalogOption = None,
    output: Annotated[GraphFormat, typer.Option("--format", help="output format")] = (
        GraphFormat.TEXT
    ),
) -> None:
    """Expand a scenario with parameters and print its task graph (nothing is stored)."""
    from scenarist.core.catalog import load_catalog

    with _reported_errors():
        loaded = load_catalog(catalog)
        plan = plan_from_cli(loaded, scenario, param or [])
    if output is GraphFormat.JSON:
        typer.echo(json.dumps([task_to_json(task) for task in plan.tasks], indent=2))
    elif output is GraphFormat.DOT:
        typer.echo(plan_to_dot(plan))
    else:
        typer.echo(plan_to_text(plan))


def register(app: typer.Typer) -> None:
    app.command("templates")(templates)
    app.command("validate")(validate)
    app.command("graph")(graph)


# --- helpers (also used by tests) ------------------------------------------------------


def plan_from_cli(catalog: Catalog, scenario: str, pairs: list[str]) -> ScenarioPlan:
    """Parse `KEY=VALUE` pairs with the declared parameter types, then plan."""
    from scenarist.core.params import parse_param_text

    template = catalog.get(scenario)
    specs = {spec.name: spec for spec in template.params}
    params: dict[str, JSON] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        params[key] = parse_param_text(specs.get(key), key, text)
    return catalog.plan(scenario, params)


def describe_param_text(spec: ParamSpec) -> str:
    rules = [spec.type.value, "required" if spec.required else "optional"]
    if spec.has_default:
        rules.append(f"default {json.dumps(spec.default)}")
    for label, value in (
        ("min", spec.minimum),
        ("max", spec.maximum),
        ("min length", spec.min_length),
        ("max length", spec.max_length),
    ):
        if value is not None:
            rules.append(f"{label} {value}")
    if spec.enum is not None:
        rules.append("one of " + ", ".join(json.dumps(v) for v in spec.enum))
    about = f"  {spec.description}" if spec.description else ""
    return f"    {spec.name}: {', '.join(rules)}{about}"


def describe_template_text(template: ScenarioTemplate) -> str:
    lines = [f"{template.name}: {template.description}".rstrip(": ")]
    lines += [describe_param_text(spec) for spec in template.params] or ["    (no parameters)"]
    services = sorted({task.service for task in template.tasks})
    lines.append(f"    tasks: {len(template.tasks)} ({', '.join(services)})")
    return "\n".join(lines)


def task_to_json(task: TaskSpec) -> dict[str, JSON]:
    described = {
        "name": task.name,
        "template_id": task.template_id,
        "index": task.index,
        "service": task.service,
        "level": task.level,
        "priority": task.priority,
        "depends_on": list(task.depends_on),
        "payload": dict(task.payload),
        "max_attempts": task.max_attempts,
        "timeout_seconds": task.timeout_seconds,
    }
    if task.dynamic:  # one node for the group until its parents' results are known
        described.update(dynamic=True, for_each=task.for_each)
    return described


def plan_to_text(plan: ScenarioPlan) -> str:
    count = len(plan.tasks)
    lines = [f"{plan.template}: {count} task{'s' if count != 1 else ''} in {plan.levels} levels"]
    groups = sum(task.dynamic for task in plan.tasks)
    if groups:
        lines[0] += f" ({groups} of them dynamic groups, one node each until they expand)"
    for level in range(plan.levels):
        lines.append(f"level {level}:")
        for task in (t for t in plan.tasks if t.level == level):
            deps = f"  <- {', '.join(task.depends_on)}" if task.depends_on else ""
            lines.append(f"  {task.name}{_dynamic_mark(task)} [{task.service}]{deps}")
    return "\n".join(lines)


def _dynamic_mark(task: TaskSpec) -> str:
    """An unexpanded group is one node: its instances exist once its parents' results do."""
    return f"[*] (dynamic, for_each {task.for_each})" if task.dynamic else ""


def plan_to_dot(plan: ScenarioPlan) -> str:
    lines = [f"digraph {json.dumps(plan.template)} {{", "  rankdir=LR;"]
    for task in plan.tasks:
        if task.dynamic:
            label = json.dumps(f"{task.name}[*]\n{task.service}\ndynamic: for_each")
            lines.append(f"  {json.dumps(task.name)} [label={label}, style=dashed];")
            continue
        label = json.dumps(f"{task.name}\n{task.service}")
        lines.append(f"  {json.dumps(task.name)} [label={label}];")
    for task in plan.tasks:
        lines += [f"  {json.dumps(p)} -> {json.dumps(task.name)};" for p in task.depends_on]
    lines.append("}")
    return "\n".join(lines)
