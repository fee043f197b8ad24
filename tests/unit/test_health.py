"""GET /health probes the backing services at most once per ANSWER_SECONDS, however many
callers ask: it is public, and each probe opens a broker connection."""

from __future__ import annotations

from collections import Counter

import pytest
from chalice.test import Client

from app import app
from chalicelib.api import health


@pytest.fixture
def probes(monkeypatch) -> Counter:
    calls: Counter = Counter()

    def fake(name: str, ok: bool = True):
        def probe(settings) -> dict:
            calls[name] += 1
            return {"ok": ok, "latency_ms": 1.0} if ok else {"ok": False, "error": "ConnectionRefusedError"}

        return probe

    monkeypatch.setattr(health.probes, "dynamodb", fake("dynamodb"))
    monkeypatch.setattr(health.probes, "redis", fake("redis"))
    monkeypatch.setattr(health.probes, "rabbitmq", fake("rabbitmq", ok=False))
    monkeypatch.setattr(health, "_last", None)
    return calls


def test_callers_in_a_row_share_one_probe_until_it_is_stale(probes, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: now[0])
    with Client(app) as client:
        answers = [client.http.get("/health") for _ in range(5)]
        assert probes == Counter(dynamodb=1, redis=1, rabbitmq=1)
        now[0] += health.ANSWER_SECONDS
        again = client.http.get("/health")

    assert probes == Counter(dynamodb=2, redis=2, rabbitmq=2)
    for response in (*answers, again):
        assert response.status_code == 503
        assert response.json_body["status"] == "degraded"
        assert response.json_body["services"]["rabbitmq"] == {"ok": False, "error": "ConnectionRefusedError"}
