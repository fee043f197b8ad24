"""GET /health: public, and honest about each backing service."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def http(stack):
    with stack.client() as client:
        yield client


def test_health_reports_each_service_without_a_token(http):
    response = http.get("/health")
    body = response.json()
    assert set(body) == {"status", "services"}
    assert set(body["services"]) == {"dynamodb", "redis", "rabbitmq"}
    for check in body["services"].values():
        assert isinstance(check["ok"], bool)
    # The test stack runs DynamoDB and Redis itself; RabbitMQ may be absent.
    assert body["services"]["dynamodb"]["ok"] is True
    assert body["services"]["redis"]["ok"] is True
    healthy = all(check["ok"] for check in body["services"].values())
    assert (response.status_code, body["status"]) == ((200, "ok") if healthy else (503, "degraded"))
    assert response.headers["Content-Type"].startswith("application/json")


def test_health_ignores_a_bad_token(http):
    response = http.get("/health", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code in (200, 503)
    assert set(response.json()) == {"status", "services"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_health_answers_only_get(http, method):
    response = http.request(method, "/health")
    assert response.status_code == 405
    assert set(response.json()) == {"message", "code", "details"}
