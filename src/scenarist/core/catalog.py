"""The scenario catalog: a YAML file of scenario templates, checked once when loaded.

Top-level keys `defaults` (task defaults), `services` (the known worker services, a
list or a mapping to their scheduling limits, see core/gates.py) and `tenants` (their
weights and caps, see core/tenants.py) are reserved; every
other key is a scenario. `Catalog.plan` validates a request's parameters and expands the
scenario into a ScenarioPlan. A bad catalog raises one CatalogError that holds every
problem found, in file order (`CatalogError.errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path

from scenarist.core.catalog_parse import ScenarioParser, TaskDefaults, parse_defaults
from scenarist.core.catalog_problems import Problems
from scenarist.core.catalog_services import parse_services, parse_tenants
from scenarist.core.catalog_where import Where
from scenarist.core.errors import CatalogError, UnknownScenarioError
from scenarist.core.expand import expand_plan
from scenarist.core.gates import NO_GATES, Gates
from scenarist.core.model import JSON, ScenarioPlan
from scenarist.core.render import Renderer, RenderLimits
from scenarist.core.template import ScenarioTemplate
from scenarist.core.tenants import NO_TENANTS, Tenants
from scenarist.core.yaml_source import LineMap, SourceError, load_yaml

__all__ = ["Catalog", "default_catalog_path", "load_catalog", "parse_catalog"]

RESERVED_KEYS = frozenset({"defaults", "services", "tenants"})


@dataclass(frozen=True, eq=False)
class Catalog:
    source: str  # the file (or label) the catalog was read from
    scenarios: Mapping[str, ScenarioTemplate]
    defaults: TaskDefaults = field(default_factory=TaskDefaults)
    services: tuple[str, ...] | None = None  # None: any service name is accepted
    renderer: Renderer = field(default_factory=Renderer, repr=False)
    # Scheduling limits of the services that have any (`services:` as a mapping).
    gates: Gates = field(default_factory=lambda: NO_GATES)
    tenants: Tenants = field(default_factory=lambda: NO_TENANTS)  # `tenants:` of the catalog

    def names(self) -> list[str]:
        return list(self.scenarios)

    def get(self, name: str) -> ScenarioTemplate:
        try:
            return self.scenarios[name]
        except KeyError:
            raise UnknownScenarioError(name, self.names()) from None

    def plan(self, name: str, params: Mapping[str, JSON]) -> ScenarioPlan:
        """Validate `params` against the scenario and expand it (ParamError, RenderError)."""
        template = self.get(name)
        return expand_plan(template, template.validate(params), self.renderer)

    def describe(self) -> list[dict[str, JSON]]:
        return [template.describe() for template in self.scenarios.values()]

    @functools.cached_property
    def requirements(self) -> Mapping[str, list[tuple[str, Mapping[str, str]]]]:
        """Service -> (scenario.task, its `requires`) for the tasks that require labels
        known at load (a value rendered from the parameters is known per scenario only)."""
        found: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
        for template in self.scenarios.values():
            for task in template.tasks:
                affinity = task.affinity
                if affinity is None or not affinity.requires:
                    continue
                plain = {k: v for k, v in affinity.requires.items() if isinstance(v, str)}
                if len(plain) == len(affinity.requires):
                    found.setdefault(task.service, []).append((f"{template.name}.{task.id}", plain))
        return found

    @functools.cached_property
    def prefer_waits(self) -> Mapping[str, float]:
        """Service -> the shortest `prefer_wait_seconds` of its tasks that prefer labels:
        a long poll looks again that often, since a wait running out wakes nobody."""
        waits: dict[str, float] = {}
        for template in self.scenarios.values():
            for task in template.tasks:
                if task.affinity is not None and task.affinity.prefers:
                    wait = task.affinity.prefer_wait
                    waits[task.service] = min(wait, waits.get(task.service, wait))
        return waits


def default_catalog_path() -> Path:
    """The catalog shipped inside the package."""
    return Path(str(resources.files("scenarist").joinpath("scenarios.yml")))


def load_catalog(path: str | Path | None = None, *, limits: RenderLimits | None = None) -> Catalog:
    """Read and check a catalog file; None reads the packaged default catalog."""
    file = Path(path) if path is not None else default_catalog_path()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalog: {exc}", file=str(file)) from None
    return parse_catalog(text, str(file), limits=limits)


def parse_catalog(text: str, source: str, *, limits: RenderLimits | None = None) -> Catalog:
    """Parse and check catalog text; its problems are one CatalogError naming `source`.

    Malformed YAML stops at its first error (nothing after it can be read); everything
    else is checked to the end."""
    where = Where(source)
    try:
        document = load_yaml(text)
    except SourceError as exc:
        where.fail(exc.message, exc.line)
    if not isinstance(document, LineMap):
        where.fail("a catalog must be a mapping of scenario names to scenarios")
    problems = Problems()
    defaults = TaskDefaults()
    if "defaults" in document:
        at = where.at(document.line_of("defaults"))
        defaults = problems.checked(
            partial(parse_defaults, at, document["defaults"], problems), defaults
        )
    services: tuple[str, ...] | None = None
    gates: Gates = NO_GATES
    if "services" in document:
        at = where.at(document.line_of("services"))
        unchecked: tuple[tuple[str, ...] | None, Gates] = (None, NO_GATES)
        services, gates = problems.checked(
            partial(parse_services, at, document["services"], problems), unchecked
        )
    tenants: Tenants = NO_TENANTS
    if "tenants" in document:
        at = where.at(document.line_of("tenants"))
        tenants = problems.checked(
            partial(parse_tenants, at, document["tenants"], problems), NO_TENANTS
        )
    renderer = Renderer(limits)
    parser = ScenarioParser(source, renderer, defaults, services, problems)
    scenarios: dict[str, ScenarioTemplate] = {}
    for name, raw in document.items():
        if name in RESERVED_KEYS:
            continue
        with problems.recover():
            if not isinstance(name, str):
                where.fail(f"scenario name {name!r} must be a string", document.line_of(name))
            scenarios[name] = parser.parse(name, raw, document.line_of(name))
    if not scenarios and not problems.errors:
        where.fail("the catalog defines no scenarios")
    problems.raise_if_any()
    return Catalog(source, scenarios, defaults, services, renderer, gates, tenants)
