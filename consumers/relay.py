"""Local driver of the relay: feeds unpublished outbox events, as DynamoDB stream
records, to the same handler that runs on the outbox stream on AWS.

It reads the outbox's `unpublished` index rather than the local stream: a stream
reader must keep its shard position somewhere durable, and without it a restarted
relay either re-reads the whole stream or skips what was written while it was down.
The index is the outbox itself, so a restart simply continues.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time

from chalicelib.adapters.outbox import DynamoOutbox
from chalicelib.config import get_settings

log = logging.getLogger("titan.relay.poller")


def stream_record(item: dict, region: str, stream_arn: str) -> dict:
    """A DynamoDB stream INSERT record carrying `item` as its NewImage."""
    event_id = item["event_id"]["S"]
    return {
        "eventID": event_id,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": time.time(),
            "Keys": {"event_id": item["event_id"]},
            "NewImage": item,
            "SequenceNumber": str(time.time_ns()),
            "SizeBytes": len(str(item)),
            "StreamViewType": "NEW_IMAGE",
        },
    }


class Poller:
    def __init__(self, batch_size: int, idle_seconds: float) -> None:
        from app import relay_outbox

        self.handler = relay_outbox
        self.settings = get_settings()
        self.outbox = DynamoOutbox(self.settings)
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.stopping = False

    def run_once(self) -> int:
        items = self.outbox.unpublished(self.batch_size)
        if items:
            region = self.outbox.client.meta.region_name
            records = [stream_record(i, region, self.settings.outbox_stream_arn) for i in items]
            self.handler({"Records": records}, None)
        return len(items)

    def run(self) -> None:
        backoff = self.idle_seconds
        while not self.stopping:
            try:
                if self.run_once():
                    backoff = self.idle_seconds
                    continue
            except Exception as error:  # broker or table down: keep the events, retry later
                log.warning("relay batch failed, retrying in %.1f s: %s", backoff, error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            time.sleep(self.idle_seconds)

    def stop(self, *_: object) -> None:
        self.stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(description="Publish outbox events to RabbitMQ.")
    parser.add_argument("--batch-size", type=int, default=get_settings().relay_batch_size)
    parser.add_argument("--idle", type=float, default=0.2, help="seconds between polls when idle")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    poller = Poller(args.batch_size, args.idle)
    signal.signal(signal.SIGTERM, poller.stop)
    signal.signal(signal.SIGINT, poller.stop)
    log.info("relay polling %s", poller.settings.outbox_table)
    poller.run()


if __name__ == "__main__":
    main()
