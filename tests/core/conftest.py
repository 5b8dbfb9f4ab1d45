"""Fixtures for the scenario engine tests: small catalogs written inline."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from scenarist.core.catalog import Catalog, parse_catalog

CatalogFactory = Callable[[str], Catalog]


@pytest.fixture
def catalog_from() -> CatalogFactory:
    """Parse dedented catalog text as the file `test.yml`."""

    def build(text: str) -> Catalog:
        return parse_catalog(textwrap.dedent(text), "test.yml")

    return build
