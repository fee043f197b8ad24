"""GET /health: is each backing service reachable?"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.adapters import probes
from chalicelib.api import schemas
from chalicelib.api.http import Call, respond, route
from chalicelib.config import get_settings

bp = Blueprint(__name__)


@route(bp, "/health", ["GET"], public=True, responses={200: schemas.HealthResponse, 503: schemas.HealthResponse})
def health(call: Call):
    """Whether DynamoDB, Redis and RabbitMQ answer."""
    settings = get_settings()
    checks = {
        "dynamodb": probes.dynamodb(settings),
        "redis": probes.redis(settings),
        "rabbitmq": probes.rabbitmq(settings),
    }
    healthy = all(check["ok"] for check in checks.values())
    return respond({"status": "ok" if healthy else "degraded", "services": checks}, 200 if healthy else 503)
