"""GET /health: is each backing service reachable?"""

from __future__ import annotations

import threading
import time

from chalice import Blueprint

from chalicelib.adapters import probes
from chalicelib.api import schemas
from chalicelib.api.http import Call, respond, route
from chalicelib.config import get_settings

bp = Blueprint(__name__)

# The route is public: each answer is reused this long, and callers arriving together wait
# for one probe, so that nobody can make the service open a broker connection per request.
ANSWER_SECONDS = 2.0
_probing = threading.Lock()
_last: tuple[float, dict, int] | None = None


def _probe() -> tuple[dict, int]:
    settings = get_settings()
    checks = {
        "dynamodb": probes.dynamodb(settings),
        "redis": probes.redis(settings),
        "rabbitmq": probes.rabbitmq(settings),
    }
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "degraded", "services": checks}, 200 if healthy else 503


@route(bp, "/health", ["GET"], public=True, responses={200: schemas.HealthResponse, 503: schemas.HealthResponse})
def health(call: Call):
    """Whether DynamoDB, Redis and RabbitMQ answer (probed at most every 2 s)."""
    global _last
    with _probing:
        if _last is None or time.monotonic() - _last[0] >= ANSWER_SECONDS:
            _last = (time.monotonic(), *_probe())
        _, body, status = _last
    return respond(body, status)
