"""Make sure Redis and RabbitMQ answer; start a local server when one is installed.

Prints one line and exits 1 when a service is down and cannot be started here.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

from chalicelib.config import get_settings

SERVERS = {
    "redis": (
        "redis-server",
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "{port}", "--save", ""],
        "apt-get install redis-server",
    ),
    "rabbitmq": ("rabbitmq-server", ["rabbitmq-server", "-detached"], "apt-get install rabbitmq-server"),
}


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure(name: str, url: str, default_port: int, wait_seconds: float) -> str | None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    if reachable(host, port):
        return None
    binary, command, install = SERVERS[name]
    if host not in ("127.0.0.1", "localhost", "::1") or shutil.which(binary) is None:
        return f"{name} is not reachable at {host}:{port} and no local server is installed: run `{install}`"
    subprocess.run([part.format(port=port) for part in command], check=False, capture_output=True)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if reachable(host, port):
            return None
        time.sleep(0.5)
    return f"{name} is not reachable at {host}:{port}; {binary} started but did not answer in {wait_seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=60)
    args = parser.parse_args()
    settings = get_settings()
    problems = [
        problem
        for problem in (
            ensure("redis", settings.redis_url, 6379, args.wait),
            ensure("rabbitmq", settings.amqp_url, 5672, args.wait),
        )
        if problem
    ]
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
