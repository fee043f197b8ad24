"""RabbitMQ helpers for tests: a virtual host of their own, and reading queues."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import unquote, urlparse

import pika


def ensure_vhost(amqp_url: str) -> None:
    """Create the URL's virtual host (and grant the user) when rabbitmqctl is at hand."""
    parsed = urlparse(amqp_url)
    vhost = unquote(parsed.path[1:]) or "/"
    if vhost == "/" or shutil.which("rabbitmqctl") is None:
        return
    try:
        pika.BlockingConnection(pika.URLParameters(amqp_url)).close()
        return
    except pika.exceptions.AMQPError:
        pass
    user = parsed.username or "guest"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=False, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"], check=True, capture_output=True
    )


def drain(amqp_url: str, queue: str, limit: int = 100_000) -> list[tuple[pika.BasicProperties, bytes]]:
    """Take every message now in `queue` (acknowledged: they are gone afterwards)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        taken = []
        for _ in range(limit):
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            taken.append((properties, body))
        return taken
    finally:
        connection.close()


def depth(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()
