"""Serve moto's DynamoDB (and DynamoDB Streams) API with one request at a time.

Stock `moto_server` handles concurrent requests on threads without isolation, so
conditional transactions are not atomic under load (ARCHITECTURE.md, "Known pitfalls").
This launcher wraps moto's WSGI app in one process-wide lock: each request runs, and
its body is produced, inside the lock.

It also makes TransactWriteItems cost what the items cost: moto backs up every table a
transaction touches with a deep copy, once per item, to roll back a cancelled
transaction, so each transaction grows slower as the tables fill (a 100-item
transaction on a table of a few thousand rows took seconds). Here the backup is an
undo log of the touched items (and the length of the table's stream), which is exact
because requests are serialized.
"""

from __future__ import annotations

import argparse
import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class Serialized:
    def __init__(self, app: Callable, latency_seconds: float = 0.0) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.latency_seconds = latency_seconds

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.latency_seconds:
            # Fault injection: a slow DynamoDB (outside the lock, as network delay would be).
            time.sleep(self.latency_seconds)
        with self.lock:
            result: Any = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        return [body]


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's transact_write_items: tables are
    handed back as they are (the undo log below restores them), anything else copied."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _restore(table: Table, hash_key: Any, range_key: Any, saved: Any) -> None:
    if range_key is None:
        if saved is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = saved
        return
    rows = table.items[hash_key]
    if saved is None:
        rows.pop(range_key, None)
        if not rows:
            table.items.pop(hash_key, None)
    else:
        rows[range_key] = saved


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    undo: list[tuple[Table, Any, Any, Any]] = []
    streams: dict[str, int] = {}
    for entry in transact_items:
        _, operation = next(iter(entry.items()))
        table = self.tables.get(operation.get("TableName"))
        if table is None:
            continue
        try:
            hash_key, range_key = self.get_keys_value(table, operation.get("Item") or operation.get("Key") or {})
        except Exception:  # a malformed item: moto itself reports it
            continue
        current = table.get_item(hash_key, range_key)
        undo.append((table, hash_key, range_key, copy.deepcopy(current) if current is not None else None))
        if table.stream_shard is not None:
            streams.setdefault(table.name, len(table.stream_shard.items))
    dynamodb_models.copy = _TablesNotCopied
    try:
        _moto_transact_write_items(self, transact_items)
    except Exception:
        for table, hash_key, range_key, saved in reversed(undo):
            _restore(table, hash_key, range_key, saved)
        for name, length in streams.items():
            del self.tables[name].stream_shard.items[length:]
        raise
    finally:
        dynamodb_models.copy = copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5500)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    DynamoDBBackend.transact_write_items = transact_write_items
    app = Serialized(DomainDispatcherApplication(create_backend_app), args.latency_ms / 1000)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
