"""Declare the notification topology (exchange, queues, delay and dead-letter queues) on a
broker, and nothing else: no tables, no sample data, no purge. For Amazon MQ, run it once
per deployment from a host that reaches the broker, with the broker user's credentials.

AMQP_URL=amqps://USER:PASSWORD@b-....mq.REGION.amazonaws.com:5671/VHOST python -m infra.declare_topology

Re-running it is harmless: declarations are idempotent. RETRY_DELAYS must match the
functions' setting (the default does), since each delay has its own queue.
"""

from __future__ import annotations

import logging

from chalicelib.adapters import topology
from chalicelib.config import get_settings

log = logging.getLogger("titan.topology")


def declare(amqp_url: str, delays: tuple[float, ...]) -> list[str]:
    """Declare everything; returns the queue names."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        topology.declare(connection.channel(), delays)
    finally:
        connection.close()
    return list(dict.fromkeys(topology.queues(delays)))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    settings = get_settings()
    names = declare(settings.amqp_url, settings.retry_delays)
    log.info("declared exchange %s and %d queues: %s", topology.EXCHANGE, len(names), ", ".join(names))


if __name__ == "__main__":
    main()
