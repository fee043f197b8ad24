"""Local driver of the relay: reads the outbox table's stream, as Lambda's event source
mapping does on AWS, and hands each batch of records to the same handler.

Like the event source mapping it keeps a checkpoint per shard (in Redis) and moves it
only after the handler returned, so a killed relay resumes where it stopped and
re-reads at most one batch. When the stream has nothing new, a sweep of the outbox's
`unpublished` index (at most every `--sweep` seconds) catches whatever the stream cannot
give any more (a lost checkpoint, a table recreated by the bootstrap).
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws, redis_keys
from chalicelib.adapters.outbox import DynamoOutbox
from chalicelib.adapters.redis_client import connect
from chalicelib.config import get_settings
from chalicelib.handlers import relay as relay_handler

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


def as_lambda_record(record: dict, stream_arn: str) -> dict:
    """A record from GetRecords in the shape Lambda delivers (it adds the source ARN)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "eventSourceARN": stream_arn, "dynamodb": change}


class StreamReader:
    """Reads every shard of the outbox's current stream from its checkpoint on."""

    def __init__(self, table: str, redis: Any) -> None:
        self.table = table
        self.redis = redis
        self.arn: str | None = None
        self.iterators: dict[str, str] = {}

    def _streams(self) -> Any:
        return aws.client("dynamodbstreams")

    def _open(self) -> None:
        self.arn = aws.client("dynamodb").describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shards = self._streams().describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterators = {}
        for shard in shards:
            shard_id = shard["ShardId"]
            after = self.redis.get(redis_keys.relay_checkpoint(self.arn, shard_id))
            position = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self._streams().get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **position)
            self.iterators[shard_id] = iterator["ShardIterator"]

    def read(self, limit: int) -> tuple[str, str, list[dict], str | None]:
        """(shard, next iterator, records) of the first shard with records; records may be []."""
        if self.arn is None:
            self._open()
        for shard_id, iterator in self.iterators.items():
            response = self._streams().get_records(ShardIterator=iterator, Limit=limit)
            records = [as_lambda_record(r, self.arn) for r in response.get("Records", [])]
            if records:
                return shard_id, response.get("NextShardIterator"), records, self.arn
            self.iterators[shard_id] = response.get("NextShardIterator") or iterator
        return "", "", [], self.arn

    def commit(self, shard_id: str, next_iterator: str | None, records: list[dict]) -> None:
        last = records[-1]["dynamodb"]["SequenceNumber"]
        self.redis.set(redis_keys.relay_checkpoint(self.arn, shard_id), last)
        if next_iterator:
            self.iterators[shard_id] = next_iterator

    def reset(self) -> None:
        self.arn = None
        self.iterators = {}


class Poller:
    def __init__(self, batch_size: int, idle_seconds: float, sweep_seconds: float = 30.0) -> None:
        from app import relay_outbox

        self.handler = relay_outbox
        self.settings = get_settings()
        self.outbox = DynamoOutbox(self.settings)
        self.stream = StreamReader(self.settings.outbox_table, connect())
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.sweep_seconds = sweep_seconds
        self.swept_at = float("-inf")
        self.read = 0
        self.stopping = False

    def _relay(self, records: list[dict]) -> int:
        return int(self.handler({"Records": records}, None)["published"])

    def sweep(self) -> int:
        """Relay unpublished events found in the outbox itself; how many it published."""
        items = self.outbox.unpublished(self.batch_size)
        self.read = len(items)
        if not items:
            self.swept_at = time.monotonic()
            return 0
        region = self.outbox.client.meta.region_name
        return self._relay([stream_record(i, region, self.settings.outbox_stream_arn) for i in items])

    def run_once(self) -> int:
        """One batch from the stream or, when the stream has nothing and a sweep is due,
        from the sweep; how many events it published (`read`: how many records it read)."""
        try:
            shard_id, next_iterator, records, _ = self.stream.read(self.batch_size)
        except ClientError as error:
            # The table was recreated or the position is gone: start again, sweep first.
            log.info("outbox stream unavailable (%s); reopening", error.response["Error"]["Code"])
            self.stream.reset()
            self.swept_at = float("-inf")
            records = []
        self.read = len(records)
        if records:
            published = self._relay(records)
            self.stream.commit(shard_id, next_iterator, records)
            return published
        if time.monotonic() - self.swept_at >= self.sweep_seconds:
            return self.sweep()
        return 0

    def run(self) -> None:
        backoff = self.idle_seconds
        while not self.stopping:
            try:
                self.run_once()
                if self.read:
                    backoff = self.idle_seconds
                    continue
            except Exception as error:  # broker or table down: keep the events, retry later
                log.warning("relay batch failed, retrying in %.1f s: %s", backoff, error)
                self.stream.reset()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            time.sleep(self.idle_seconds)

    def stop(self, *_: object) -> None:
        self.stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(description="Publish outbox events to RabbitMQ.")
    parser.add_argument("--batch-size", type=int, default=get_settings().relay_batch_size)
    parser.add_argument("--idle", type=float, default=0.1, help="seconds between polls when idle")
    parser.add_argument("--sweep", type=float, default=30.0, help="seconds between sweeps of the unpublished index")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    poller = Poller(args.batch_size, args.idle, args.sweep)
    signal.signal(signal.SIGTERM, poller.stop)
    signal.signal(signal.SIGINT, poller.stop)
    log.info("relay reading the stream of %s", poller.settings.outbox_table)
    try:
        poller.run()
    finally:
        relay_handler.close()


if __name__ == "__main__":
    main()
