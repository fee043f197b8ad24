"""Property-based test of the published contract: schemathesis reads /openapi.json from
`chalice local` and, for every operation, generates requests that fit the document and
requests that break it. No response may be a 5xx, and every response must have a status
code and a body the document declares for that operation.

Bounded: a few examples per operation and mode, no example database, and a time budget per
operation after which the remaining examples are passed over (not failed). Registrar calls change
the sample data, so it is restored before and after."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

import app as application

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
STUDENT = 79
# A deeper run: API_PROPERTY_EXAMPLES=100 pytest tests/integration/test_api_properties.py
EXAMPLES_PER_OPERATION = int(os.environ.get("API_PROPERTY_EXAMPLES", "8"))
SECONDS_PER_OPERATION = float(os.environ.get("API_PROPERTY_SECONDS", "30"))

OPERATIONS = [
    pytest.param(path, method, id=f"{method} {path}")
    for path, methods in sorted(application.app.routes.items())
    for method in sorted(methods)
]
# What a student may call on their own behalf.
STUDENT_OPERATIONS = [op for op in OPERATIONS if op.values[0].startswith(("/students/", "/waitlist/"))]


@pytest.fixture(scope="module")
def contract(stack) -> Iterator[schemathesis.BaseSchema]:
    """The document as the running API serves it; the sample data restored around the module."""
    stack.reset()
    config = schemathesis.Config.from_dict({"base-url": stack.url, "request-timeout": 30})
    yield schemathesis.openapi.from_url(f"{stack.url}/openapi.json", config=config, timeout=30)
    stack.reset()


def explore(
    schema: schemathesis.BaseSchema, path: str, method: str, token: str, path_parameters: dict | None = None
) -> None:
    operation = schema[path][method]
    cases = st.one_of(*(operation.as_strategy(mode, path_parameters=path_parameters) for mode in GenerationMode))
    headers = {"Authorization": f"Bearer {token}"}
    protected = bool(operation.definition.raw.get("security"))
    stop_at = time.monotonic() + SECONDS_PER_OPERATION
    tried = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def each(case: schemathesis.Case) -> None:
        nonlocal tried
        if tried and time.monotonic() > stop_at:
            return
        tried += 1
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        # Negative cases may leave the token out; a request that carries it is let in.
        if protected and "Authorization" in response.request.headers:
            assert response.status_code != 401, response.text

    each()
    assert tried > 0


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_registrar_calls_keep_the_contract(contract, stack, path: str, method: str) -> None:
    explore(contract, path, method, stack.token("registrar551"))


@pytest.mark.parametrize(("path", "method"), STUDENT_OPERATIONS)
def test_student_calls_on_themself_keep_the_contract(contract, stack, path: str, method: str) -> None:
    explore(contract, path, method, stack.token(f"student{STUDENT}"), {"sid": STUDENT})
