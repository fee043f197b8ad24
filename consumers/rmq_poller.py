"""Local driver of the delivery handlers, shaped like Lambda's Amazon MQ event source
mapping: consume one queue with pika (manual acks, a prefetch), batch up to a size or
a batching window, hand the batch to the handler as an aws:rmq event, and acknowledge
the batch after the handler returns. Several pollers on one queue compete for its
messages, so each message goes to one of them.

    python -m consumers.rmq_poller --channel email|webhook
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from collections.abc import Callable
from urllib.parse import unquote, urlparse

import pika

from chalicelib.adapters import topology
from chalicelib.config import get_settings
from chalicelib.handlers import rmq_event

log = logging.getLogger("titan.poller")


def handler_for(channel: str) -> Callable[[dict, object], object]:
    import app

    return {"email": app.deliver_email, "webhook": app.deliver_webhook}[channel]


class Poller:
    def __init__(
        self, channel: str, batch_size: int, window_seconds: float, prefetch: int, handler: Callable | None = None
    ) -> None:
        self.settings = get_settings()
        self.queue = topology.queue(channel)
        self.vhost = unquote(urlparse(self.settings.amqp_url).path[1:]) or "/"
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.prefetch = max(prefetch, batch_size)
        self.handler = handler or handler_for(channel)
        self.stopping = False
        self.buffer: list[tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]] = []
        self.first_at = 0.0

    def _on_message(self, _channel, method, properties, body) -> None:
        if not self.buffer:
            self.first_at = time.monotonic()
        self.buffer.append((method, properties, body))

    def _flush(self, channel) -> None:
        batch, self.buffer = self.buffer, []
        event = rmq_event.build(self.queue, self.vhost, [(p, b, m.redelivered) for m, p, b in batch])
        last_tag = batch[-1][0].delivery_tag
        try:
            self.handler(event, None)
        except Exception:
            # As Lambda does: the whole batch comes back; the claims make resending harmless.
            log.exception("handler failed on a batch of %d; returning it to the queue", len(batch))
            channel.basic_nack(last_tag, multiple=True, requeue=True)
            time.sleep(1.0)
            return
        channel.basic_ack(last_tag, multiple=True)

    def consume(self) -> None:
        params = pika.URLParameters(self.settings.amqp_url)
        params.heartbeat = 30
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            channel.basic_consume(self.queue, self._on_message, auto_ack=False)
            log.info("consuming %s (batch %d, window %.2f s)", self.queue, self.batch_size, self.window_seconds)
            while not self.stopping:
                connection.process_data_events(time_limit=min(self.window_seconds, 0.05) if self.buffer else 0.2)
                if self.buffer and (
                    len(self.buffer) >= self.batch_size or time.monotonic() - self.first_at >= self.window_seconds
                ):
                    self._flush(channel)
        finally:
            self.buffer = []
            if connection.is_open:
                connection.close()

    def run(self) -> None:
        backoff = 0.5
        while not self.stopping:
            try:
                self.consume()
                backoff = 0.5
            except pika.exceptions.AMQPError as error:
                log.warning("broker connection lost (%s); reconnecting in %.1f s", error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def stop(self, *_: object) -> None:
        self.stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(description="Feed a notification queue to its Lambda-style handler.")
    parser.add_argument("--channel", choices=topology.CHANNELS, required=True)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--window", type=float, default=0.2, help="batching window in seconds")
    parser.add_argument("--prefetch", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.channel}-poller %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pika").setLevel(logging.WARNING)
    poller = Poller(args.channel, args.batch_size, args.window, args.prefetch)
    signal.signal(signal.SIGTERM, poller.stop)
    signal.signal(signal.SIGINT, poller.stop)
    try:
        poller.run()
    finally:
        from chalicelib.handlers import email, webhook

        {"email": email, "webhook": webhook}[args.channel].close()


if __name__ == "__main__":
    main()
