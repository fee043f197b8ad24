"""`python -m infra.preflight` when a service is down and no server is installed to start:
a non-zero exit and one line per missing service that names it and says how to install
it, never a traceback.

The down service's URL points at a loopback port that was bound and closed again; the
other one at a socket this test listens on. PATH holds only a python, so preflight can
find no redis-server or rabbitmq-server to start.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ROOT, free_port

URLS = {
    "redis": ("REDIS_URL", "redis://127.0.0.1:{port}/15"),
    "rabbitmq": ("AMQP_URL", "amqp://guest:guest@127.0.0.1:{port}/titan-test"),
}
SERVERS = ("redis-server", "rabbitmq-server")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH with a python in it and nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    assert [shutil.which(server, path=str(bin_dir)) for server in SERVERS] == [None, None]
    return str(bin_dir)


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that accepts connections: a service that is up."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def preflight(ports: dict[str, int], path: str) -> tuple[int, list[str], str]:
    """Exit status, the lines printed (stdout and stderr) and the whole output."""
    env = {**os.environ, "PATH": path}
    for service, (name, template) in URLS.items():
        env[name] = template.format(port=ports[service])
    # --wait bounds the run should preflight find a server to start after all.
    done = subprocess.run(
        [sys.executable, "-m", "infra.preflight", "--wait", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    return done.returncode, [line for line in output.splitlines() if line.strip()], output


def names_and_tells_how_to_install(line: str, service: str) -> bool:
    return service in line and re.search(rf"\binstall\s+\S*{service}", line) is not None


@pytest.mark.parametrize(("down", "up"), [("redis", "rabbitmq"), ("rabbitmq", "redis")])
def test_one_service_down_and_not_installed_is_one_line_naming_it(
    down: str, up: str, bare_path: str, listening: int
) -> None:
    closed = free_port()

    status, lines, output = preflight({down: closed, up: listening}, bare_path)

    assert status != 0
    assert "Traceback" not in output
    assert len(lines) == 1, output
    (line,) = lines
    assert names_and_tells_how_to_install(line, down), line
    assert f"127.0.0.1:{closed}" in line
    assert up not in line


def test_both_services_down_give_one_line_each(bare_path: str) -> None:
    ports = {"redis": free_port(), "rabbitmq": free_port()}

    status, lines, output = preflight(ports, bare_path)

    assert status != 0
    assert "Traceback" not in output
    assert len(lines) == 2, output
    assert [service for service in URLS if any(names_and_tells_how_to_install(line, service) for line in lines)] == [
        "redis",
        "rabbitmq",
    ]
