"""The project's moto launcher: cancelled transactions leave nothing behind, successful
ones apply whole, and streams carry no record of a cancelled transaction."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.processes import Process, free_port, python, wait_for_port


@pytest.fixture(scope="module")
def dynamodb() -> Iterator:
    port = free_port()
    server = Process("dynamodb-launcher", python("-m", "infra.dynamodb_server", "--port", str(port)), dict(os.environ))
    server.start()
    try:
        wait_for_port(port)
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        client.create_table(
            TableName="seats",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "k", "AttributeType": "S"},
                {"AttributeName": "r", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        yield client
    finally:
        server.stop()


def _stream_records(client) -> int:
    streams = boto3.client("dynamodbstreams", endpoint_url=client.meta.endpoint_url, region_name="us-east-1")
    arn = client.describe_table(TableName="seats")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"])


def _update(key: str, condition: str = "attribute_exists(k)") -> dict:
    return {
        "Update": {
            "TableName": "seats",
            "Key": {"k": {"S": key}, "r": {"N": "0"}},
            "UpdateExpression": "SET n = n + :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def test_cancelled_transaction_changes_nothing_and_leaves_no_stream_record(dynamodb) -> None:
    dynamodb.put_item(TableName="seats", Item={"k": {"S": "a"}, "r": {"N": "0"}, "n": {"N": "0"}})
    dynamodb.put_item(TableName="seats", Item={"k": {"S": "b"}, "r": {"N": "0"}, "n": {"N": "0"}})
    before = _stream_records(dynamodb)
    new_row = {"Put": {"TableName": "seats", "Item": {"k": {"S": "c"}, "r": {"N": "0"}, "n": {"N": "1"}}}}
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[_update("a"), new_row, _update("b", "n > :one")])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    rows = {i["k"]["S"]: int(i["n"]["N"]) for i in dynamodb.scan(TableName="seats")["Items"]}
    assert rows == {"a": 0, "b": 0}
    assert _stream_records(dynamodb) == before


def test_successful_transaction_applies_every_item(dynamodb) -> None:
    dynamodb.put_item(TableName="seats", Item={"k": {"S": "x"}, "r": {"N": "0"}, "n": {"N": "0"}})
    many = [{"Put": {"TableName": "seats", "Item": {"k": {"S": "bulk"}, "r": {"N": str(i)}}}} for i in range(1, 99)]
    dynamodb.transact_write_items(TransactItems=[_update("x"), *many])
    item = dynamodb.get_item(TableName="seats", Key={"k": {"S": "x"}, "r": {"N": "0"}})["Item"]
    assert item["n"] == {"N": "1"}
    bulk = dynamodb.query(
        TableName="seats", KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "bulk"}}
    )
    assert bulk["Count"] == 98
