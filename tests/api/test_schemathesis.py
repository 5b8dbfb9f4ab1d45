"""Property-based conformance: schemathesis drives every operation in /openapi.json
(in-process over ASGI) and checks that nothing answers 5xx and every response matches the
documented status codes, content types, headers and schemas.

The operations are driven from one test (schemathesis' pytest loaders do not support this
pytest version); a failure names the operation and the failing case."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from scenarist.api.app import create_app
from tests.api.conftest import make_settings
from tests.api.served_schema import load_served_schema

EXAMPLES_PER_OPERATION = 40
# Schema-valid is not domain-valid here: template parameters are checked against the
# catalog, cursors and ids against the store, transitions against task state, so a
# schema-valid request may rightly get 404/409/422. Every other default check runs.
EXCLUDED = [positive_data_acceptance]


def test_every_operation_conforms_to_the_schema(tmp_path: Path) -> None:
    app = create_app(
        make_settings(
            f"sqlite:///{tmp_path / 'schemathesis.db'}",
            lease_wait_max_seconds=0.05,  # generated long-polls must not stall the run
            callback_interval=3600,  # generated callback URLs are never called
        )
    )
    schema = load_served_schema(app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        # positive: schema-valid requests; negative: schema-invalid ones, which must get 4xx
        cases = st.one_of(operation.as_strategy(mode) for mode in GenerationMode)
        check_operation(cases)


def check_operation(cases: st.SearchStrategy[schemathesis.Case]) -> None:
    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=EXCLUDED)

    conforms()
