"""Cold start: importing the modules Lambda imports (app.py for the API, relay and delivery
functions; chalicelib.api.security for the authorizer) creates no client, opens no socket
and starts no thread. Clients are built on first use.

Each import runs in a fresh interpreter with an audit hook that refuses any socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infra.deploy_templates import ROOT

# Imported lazily by the adapters that use them; importing any at start-up would build
# clients or pools (or is most of the start-up time, as boto3 is).
LAZY = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "redis",
    "pika",
    "aio_pika",
    "aiormq",
    "httpx",
    "urllib3",
    "email_validator",
    "aiohttp",
    # Each Lambda function imports app.py whole; a function's own handler is imported when
    # it first runs, so no function pays for the others'.
    "chalicelib.handlers.relay",
    "chalicelib.handlers.email",
    "chalicelib.handlers.webhook",
    "chalicelib.adapters.publisher",
    "asyncio",
)

PROBE = """
import json, sys, threading

opened = []

def refuse_sockets(event, args):
    if event.startswith("socket.") or event in ("ssl.wrap_socket",):
        opened.append(event)
        raise RuntimeError(f"network activity at import: {{event}}")

sys.addaudithook(refuse_sockets)
import {module}
print(json.dumps({{
    "opened": opened,
    "loaded": [name for name in {lazy!r} if name in sys.modules],
    "threads": threading.active_count(),
}}))
"""


def import_in_fresh_interpreter(module: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "JWT_SECRET"))}
    env.update(
        {
            # The prod settings: the signing key is an SSM parameter, the stores are remote.
            "STAGE": "prod",
            "JWT_SECRET_PARAMETER": "/titan/prod/jwt-secret",
            "REDIS_URL": "rediss://127.0.0.1:9/0",
            "AMQP_URL": "amqps://user:password@127.0.0.1:9/%2F",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, lazy=LAZY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["app", "chalicelib.api.security"])
def test_importing_a_lambda_entry_module_touches_no_network(module: str) -> None:
    result = import_in_fresh_interpreter(module)
    assert result["opened"] == []
    assert result["loaded"] == [], f"imported at start-up: {result['loaded']}"
    assert result["threads"] == 1
