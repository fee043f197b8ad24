"""The deploy templates merged into `chalice package` output, generated from the one source
of each fact: the tables (chalicelib/adapters/tables.py), the queues (topology.py), the
stage's settings (.chalice/config.json) and, below, what each Lambda function touches.

python -m infra.deploy_templates           write infra/templates/
python -m infra.deploy_templates --check   exit 1 when infra/templates/ is out of date

Outputs, both reviewed in git:
- infra/templates/sam-merge.json: `chalice package --merge-template` for CloudFormation/SAM;
- infra/templates/terraform/titan.tf.json: tables, event sources, policies, variables;
- infra/templates/terraform/chalice_override.tf.json: a Terraform override file for the
  resources chalice generates (chalice's terraform format has no --merge-template; Terraform
  merges `*_override.tf.json` into them natively).

Least privilege: each function's role allows exactly the DynamoDB actions on the tables and
indexes its code uses (TransactWriteItems is authorized per item, as PutItem/UpdateItem),
ssm:GetParameter on the one JWT parameter, and, for the Amazon MQ consumers, what the event
source mapping needs (mq:DescribeBroker, secretsmanager:GetSecretValue on the broker
secret, ENI management). Secrets appear only as references: the broker credentials as a
CloudFormation dynamic reference or a Terraform data source, the JWT key as an SSM name.

A role's policy is inline (CloudFormation) or referenced by the function's role ARN
(Terraform), so no function or event source mapping exists before its permissions do.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.adapters import tables, topology
from chalicelib.api import gateway_errors
from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parent.parent
STAGE = "prod"
OUTPUT = ROOT / "infra" / "templates"
SAM_MERGE = OUTPUT / "sam-merge.json"
TF_MAIN = OUTPUT / "terraform" / "titan.tf.json"
TF_OVERRIDE = OUTPUT / "terraform" / "chalice_override.tf.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"

# Table names are "<prefix>-<name>"; this prefix marks where the template's own goes.
_MARK = "TABLEPREFIX"
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
# What Lambda's Amazon MQ poller does with the function's role.
MQ_SOURCE_ACTIONS = ("ec2:DescribeSecurityGroups", "ec2:DescribeVpcs")
STREAM_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)


@dataclass(frozen=True)
class TableAccess:
    table: str
    actions: tuple[str, ...]
    indexes: tuple[str, ...] = ()
    index_actions: tuple[str, ...] = ("dynamodb:Query",)


@dataclass(frozen=True)
class Function:
    """One Lambda function of the app, by its chalice name, and what it reaches."""

    name: str
    tables: tuple[TableAccess, ...] = ()
    env: tuple[str, ...] = ()
    vpc: bool = False
    jwt: bool = False
    queue: str | None = None
    stream: str | None = None


API_TABLES = (
    TableAccess(
        "classes",
        (
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
        ),
        indexes=(tables.CATALOG_INDEX,),
    ),
    TableAccess(
        "enrollments",
        (
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
        ),
        indexes=(tables.BY_STUDENT_INDEX,),
    ),
    TableAccess(
        "users",
        ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    ),
    TableAccess(
        "settings",
        ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    ),
    TableAccess(
        "outbox",
        ("dynamodb:PutItem", "dynamodb:BatchWriteItem"),
        indexes=(tables.BY_STUDENT_INDEX,),
    ),
    TableAccess("deliveries", ("dynamodb:BatchGetItem",)),
)
# Delivery handlers only record each channel's outcome, one row per event and channel.
HISTORY = TableAccess("deliveries", ("dynamodb:BatchWriteItem",))

FUNCTIONS = (
    Function("api_handler", API_TABLES, ("TABLE_PREFIX", "REDIS_URL", "AMQP_URL"), vpc=True, jwt=True),
    # The authorizer verifies tokens and checks revocations in Redis: no tables.
    Function("jwt_auth", env=("REDIS_URL",), vpc=True, jwt=True),
    Function(
        "relay_outbox",
        (TableAccess("outbox", ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")),),
        ("TABLE_PREFIX", "AMQP_URL"),
        vpc=True,
        stream="outbox",
    ),
    Function(
        "deliver_email",
        (HISTORY,),
        ("TABLE_PREFIX", "REDIS_URL", "AMQP_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_FROM"),
        vpc=True,
        queue=topology.queue("email"),
    ),
    Function(
        "deliver_webhook",
        (HISTORY,),
        ("TABLE_PREFIX", "REDIS_URL", "AMQP_URL"),
        vpc=True,
        queue=topology.queue("webhook"),
    ),
)


def chalice_config() -> dict:
    return json.loads(CHALICE_CONFIG.read_text())


def chalice_stage() -> dict:
    return chalice_config()["stages"][STAGE]


def chalice_environment() -> dict[str, str]:
    """The environment chalice gives every function of the stage."""
    config = chalice_config()
    return {**config.get("environment_variables", {}), **chalice_stage().get("environment_variables", {})}


def table_definitions() -> dict[str, dict]:
    """tables.definitions() keyed by short name ("classes", ...)."""
    settings = Settings.from_env({"STAGE": STAGE, "TABLE_PREFIX": _MARK})
    return {d["TableName"].removeprefix(f"{_MARK}-"): d for d in tables.definitions(settings)}


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def cfn_function(name: str) -> str:
    # chalice's one irregular name: the REST API's handler.
    return "APIHandler" if name == "api_handler" else pascal(name)


def stream_source_name(function: str) -> str:
    """chalice's name for a function's DynamoDB stream event source."""
    return f"{function}-dynamodb-event-source"


# -- CloudFormation / SAM -------------------------------------------------------------


def _cfn_parameters() -> dict:
    vhost = {"AllowedPattern": r"^(/|[A-Za-z0-9_.\-]+)$"}
    return {
        "TablePrefix": {
            "Type": "String",
            "Default": f"titan-{STAGE}",
            "AllowedPattern": r"^[A-Za-z0-9_.\-]{3,200}$",
            "Description": "Table names are <prefix>-classes, <prefix>-outbox, ...",
        },
        "SubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Private subnets (with a NAT gateway or VPC endpoints) that reach ElastiCache and Amazon MQ",
        },
        "SecurityGroupIds": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups of the functions; ElastiCache and the broker must admit them",
        },
        "RedisEndpoint": {
            "Type": "String",
            "AllowedPattern": r"^[A-Za-z0-9.\-]+:[0-9]+$",
            "Description": "ElastiCache primary endpoint, host:port",
        },
        "RedisScheme": {
            "Type": "String",
            "Default": "rediss",
            "AllowedValues": ["rediss", "redis"],
            "Description": "rediss when in-transit encryption is on",
        },
        "BrokerArn": {
            "Type": "String",
            "AllowedPattern": r"^arn:aws[A-Za-z\-]*:mq:[a-z0-9\-]+:[0-9]{12}:broker:.+$",
            "Description": "Amazon MQ for RabbitMQ broker",
        },
        "BrokerAmqpEndpoint": {
            "Type": "String",
            "AllowedPattern": r"^[A-Za-z0-9.\-]+:[0-9]+$",
            "Description": "AMQPS endpoint of the broker, host:port (port 5671)",
        },
        "BrokerVirtualHost": {"Type": "String", "Default": "/", **vhost},
        "BrokerCredentialsSecretArn": {
            "Type": "String",
            "AllowedPattern": r"^arn:aws[A-Za-z\-]*:secretsmanager:.+$",
            "Description": 'Secrets Manager secret {"username": ..., "password": ...} of the broker user',
        },
        "QueueBatchSize": {"Type": "Number", "Default": 50, "MinValue": 1, "MaxValue": 10000},
        "QueueBatchingWindowSeconds": {"Type": "Number", "Default": 1, "MinValue": 0, "MaxValue": 300},
        "JwtSecretParameterName": {
            "Type": "String",
            "Default": chalice_environment()["JWT_SECRET_PARAMETER"],
            "AllowedPattern": r"^/[A-Za-z0-9_.\-/]+$",
            "Description": "SSM SecureString holding the token signing key (never in this template)",
        },
        "SmtpHost": {"Type": "String", "Description": "SMTP relay reachable from the subnets"},
        "SmtpPort": {"Type": "Number", "Default": 587, "MinValue": 1, "MaxValue": 65535},
        "SmtpFrom": {
            "Type": "String",
            "Default": "Titan Enrollment <notifications@titan-enrollment.example>",
        },
    }


def _cfn_env(name: str) -> Any:
    secret = "{{resolve:secretsmanager:${BrokerCredentialsSecretArn}:SecretString:%s}}"
    values = {
        "TABLE_PREFIX": {"Ref": "TablePrefix"},
        "REDIS_URL": {"Fn::Sub": "${RedisScheme}://${RedisEndpoint}/0"},
        "AMQP_URL": {
            "Fn::Sub": [
                "amqps://" + secret % "username" + ":" + secret % "password" + "@${BrokerAmqpEndpoint}/${Path}",
                {"Path": {"Fn::If": ["DefaultVirtualHost", "%2F", {"Ref": "BrokerVirtualHost"}]}},
            ]
        },
        "SMTP_HOST": {"Ref": "SmtpHost"},
        "SMTP_PORT": {"Ref": "SmtpPort"},
        "SMTP_FROM": {"Ref": "SmtpFrom"},
    }
    return values[name]


def _cfn_table(name: str, definition: dict) -> dict:
    properties: dict[str, Any] = {
        "TableName": {"Fn::Sub": f"${{TablePrefix}}-{name}"},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": definition["AttributeDefinitions"],
        "KeySchema": definition["KeySchema"],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if "GlobalSecondaryIndexes" in definition:
        properties["GlobalSecondaryIndexes"] = definition["GlobalSecondaryIndexes"]
    stream = definition.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        properties["StreamSpecification"] = {"StreamViewType": stream["StreamViewType"]}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _cfn_table_id(name: str) -> str:
    return f"{pascal(name)}Table"


def _cfn_statements(function: Function) -> list[dict]:
    statements: list[dict] = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                ":log-group:/aws/lambda/${AWS::StackName}-*"
            },
        }
    ]
    for access in function.tables:
        table = _cfn_table_id(access.table)
        statements.append(
            {
                "Sid": f"{pascal(access.table)}Table",
                "Effect": "Allow",
                "Action": list(access.actions),
                "Resource": {"Fn::GetAtt": [table, "Arn"]},
            }
        )
        if access.indexes:
            statements.append(
                {
                    "Sid": f"{pascal(access.table)}Indexes",
                    "Effect": "Allow",
                    "Action": list(access.index_actions),
                    "Resource": [{"Fn::Sub": f"${{{table}.Arn}}/index/{index}"} for index in access.indexes],
                }
            )
    if function.stream:
        statements.append(
            {
                "Sid": "ReadOutboxStream",
                "Effect": "Allow",
                "Action": list(STREAM_ACTIONS),
                "Resource": {"Fn::Sub": f"${{{_cfn_table_id(function.stream)}.Arn}}/stream/*"},
            }
        )
    if function.jwt:
        statements.append(
            {
                "Sid": "JwtSigningKey",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": {
                    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                    ":parameter${JwtSecretParameterName}"
                },
            }
        )
    if function.queue:
        statements += [
            {"Sid": "Broker", "Effect": "Allow", "Action": ["mq:DescribeBroker"], "Resource": {"Ref": "BrokerArn"}},
            {
                "Sid": "BrokerCredentials",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": {"Ref": "BrokerCredentialsSecretArn"},
            },
        ]
    if function.vpc:
        actions = VPC_ACTIONS + (MQ_SOURCE_ACTIONS if function.queue else ())
        statements.append({"Sid": "NetworkInterfaces", "Effect": "Allow", "Action": list(actions), "Resource": "*"})
    return statements


def sam_merge() -> dict:
    resources: dict[str, Any] = {
        _cfn_table_id(name): _cfn_table(name, definition) for name, definition in table_definitions().items()
    }
    for function in FUNCTIONS:
        role = f"{pascal(function.name)}Role"
        resources[role] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{role}Policy",
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": _cfn_statements(function)},
                    }
                ]
            }
        }
        variables = {"JWT_SECRET_PARAMETER": {"Ref": "JwtSecretParameterName"}}
        variables |= {name: _cfn_env(name) for name in function.env}
        properties: dict[str, Any] = {"Environment": {"Variables": variables}}
        if function.vpc:
            properties["VpcConfig"] = {
                "SubnetIds": {"Ref": "SubnetIds"},
                "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
            }
        if function.stream:
            source = pascal(stream_source_name(function.name))
            properties["Events"] = {
                source: {
                    "Properties": {
                        "Stream": {"Fn::GetAtt": [_cfn_table_id(function.stream), "StreamArn"]},
                        # A recreated mapping replays what the stream still holds; the
                        # relay skips events already marked published.
                        "StartingPosition": "TRIM_HORIZON",
                    }
                }
            }
        if function.queue:
            properties["Events"] = {
                f"{pascal(function.name)}Queue": {
                    "Type": "MQ",
                    "Properties": {
                        "Broker": {"Ref": "BrokerArn"},
                        "Queues": [function.queue],
                        "BatchSize": {"Ref": "QueueBatchSize"},
                        "MaximumBatchingWindowInSeconds": {"Ref": "QueueBatchingWindowSeconds"},
                        "SourceAccessConfigurations": [
                            {"Type": "BASIC_AUTH", "URI": {"Ref": "BrokerCredentialsSecretArn"}},
                            {"Type": "VIRTUAL_HOST", "URI": {"Ref": "BrokerVirtualHost"}},
                        ],
                    },
                }
            }
        resources[cfn_function(function.name)] = {"Properties": properties}
    # The gateway's own answers in the API's error shape.
    resources["RestAPI"] = {
        "Properties": {"DefinitionBody": {gateway_errors.EXTENSION: gateway_errors.swagger_extension()}}
    }
    return {
        "Description": "Titan Enrollment: API, relay and delivery functions, tables and event sources",
        "Parameters": _cfn_parameters(),
        "Conditions": {"DefaultVirtualHost": {"Fn::Equals": [{"Ref": "BrokerVirtualHost"}, "/"]}},
        "Resources": resources,
        "Outputs": {
            "OutboxStreamArn": {"Value": {"Fn::GetAtt": [_cfn_table_id("outbox"), "StreamArn"]}},
        },
    }


# -- Terraform ------------------------------------------------------------------------

_ACCOUNT = "${data.aws_caller_identity.chalice.account_id}"
_PARTITION = "${data.aws_partition.chalice.partition}"
_REGION = "${data.aws_region.chalice.name}"


def _tf_variables() -> dict:
    def var(kind: str, description: str, default: Any = None) -> dict:
        spec: dict[str, Any] = {"type": kind, "description": description}
        if default is not None:
            spec["default"] = default
        return spec

    return {
        "table_prefix": var("string", "Table names are <prefix>-classes, <prefix>-outbox, ...", f"titan-{STAGE}"),
        "subnet_ids": var("list(string)", "Private subnets that reach ElastiCache and Amazon MQ"),
        "security_group_ids": var("list(string)", "Security groups of the functions"),
        "redis_endpoint": var("string", "ElastiCache primary endpoint, host:port"),
        "redis_scheme": var("string", "rediss when in-transit encryption is on", "rediss"),
        "broker_arn": var("string", "Amazon MQ for RabbitMQ broker"),
        "broker_amqp_endpoint": var("string", "AMQPS endpoint of the broker, host:port (port 5671)"),
        "broker_virtual_host": var("string", "Virtual host of the queues", "/"),
        "broker_credentials_secret_arn": var(
            "string", 'Secrets Manager secret {"username": ..., "password": ...} of the broker user'
        ),
        "queue_batch_size": var("number", "Messages per delivery batch", 50),
        "queue_batching_window_seconds": var("number", "Longest wait to fill a batch", 1),
        "jwt_secret_parameter_name": var(
            "string",
            "SSM SecureString holding the token signing key",
            chalice_environment()["JWT_SECRET_PARAMETER"],
        ),
        "smtp_host": var("string", "SMTP relay reachable from the subnets"),
        "smtp_port": var("number", "SMTP port", 587),
        "smtp_from": var("string", "From address", "Titan Enrollment <notifications@titan-enrollment.example>"),
    }


def _tf_env(name: str) -> str:
    values = {
        "TABLE_PREFIX": "${var.table_prefix}",
        "REDIS_URL": "${var.redis_scheme}://${var.redis_endpoint}/0",
        "AMQP_URL": "amqps://${urlencode(local.broker_credentials.username)}:"
        "${urlencode(local.broker_credentials.password)}@${var.broker_amqp_endpoint}/"
        "${urlencode(var.broker_virtual_host)}",
        "SMTP_HOST": "${var.smtp_host}",
        "SMTP_PORT": "${var.smtp_port}",
        "SMTP_FROM": "${var.smtp_from}",
    }
    return values[name]


def _tf_table(name: str, definition: dict) -> dict:
    keys = {k["KeyType"]: k["AttributeName"] for k in definition["KeySchema"]}
    table: dict[str, Any] = {
        "name": f"${{var.table_prefix}}-{name}",
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": keys["HASH"],
        "attribute": [
            {"name": a["AttributeName"], "type": a["AttributeType"]} for a in definition["AttributeDefinitions"]
        ],
        "point_in_time_recovery": {"enabled": True},
        "server_side_encryption": {"enabled": True},
        "lifecycle": {"prevent_destroy": True},
    }
    if "RANGE" in keys:
        table["range_key"] = keys["RANGE"]
    indexes = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        index_keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        spec = {"name": index["IndexName"], "hash_key": index_keys["HASH"]}
        if "RANGE" in index_keys:
            spec["range_key"] = index_keys["RANGE"]
        spec["projection_type"] = index["Projection"]["ProjectionType"]
        indexes.append(spec)
    if indexes:
        table["global_secondary_index"] = indexes
    stream = definition.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        table["stream_enabled"] = True
        table["stream_view_type"] = stream["StreamViewType"]
    return table


def _tf_statements(function: Function) -> list[dict]:
    def arn(table: str) -> str:
        return f"${{aws_dynamodb_table.{table}.arn}}"

    statements: list[dict] = [
        {
            "sid": "OwnLogs",
            "actions": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "resources": [
                f"arn:{_PARTITION}:logs:{_REGION}:{_ACCOUNT}:log-group:/aws/lambda/"
                f"{chalice_config()['app_name']}-{STAGE}*"
            ],
        }
    ]
    for access in function.tables:
        statements.append(
            {"sid": f"{pascal(access.table)}Table", "actions": list(access.actions), "resources": [arn(access.table)]}
        )
        if access.indexes:
            statements.append(
                {
                    "sid": f"{pascal(access.table)}Indexes",
                    "actions": list(access.index_actions),
                    "resources": [f"{arn(access.table)}/index/{index}" for index in access.indexes],
                }
            )
    if function.stream:
        statements.append(
            {
                "sid": "ReadOutboxStream",
                "actions": list(STREAM_ACTIONS),
                "resources": [f"{arn(function.stream)}/stream/*"],
            }
        )
    if function.jwt:
        statements.append(
            {
                "sid": "JwtSigningKey",
                "actions": ["ssm:GetParameter"],
                "resources": [f"arn:{_PARTITION}:ssm:{_REGION}:{_ACCOUNT}:parameter${{var.jwt_secret_parameter_name}}"],
            }
        )
    if function.queue:
        statements += [
            {"sid": "Broker", "actions": ["mq:DescribeBroker"], "resources": ["${var.broker_arn}"]},
            {
                "sid": "BrokerCredentials",
                "actions": ["secretsmanager:GetSecretValue"],
                "resources": ["${var.broker_credentials_secret_arn}"],
            },
        ]
    if function.vpc:
        actions = VPC_ACTIONS + (MQ_SOURCE_ACTIONS if function.queue else ())
        statements.append({"sid": "NetworkInterfaces", "actions": list(actions), "resources": ["*"]})
    return statements


def terraform_main() -> dict:
    mappings: dict[str, Any] = {}
    for function in FUNCTIONS:
        if function.queue:
            mappings[f"{function.name}_queue"] = {
                "function_name": f"${{aws_lambda_function.{function.name}.arn}}",
                "event_source_arn": "${var.broker_arn}",
                "queues": [function.queue],
                "batch_size": "${var.queue_batch_size}",
                "maximum_batching_window_in_seconds": "${var.queue_batching_window_seconds}",
                "source_access_configuration": [
                    {"type": "BASIC_AUTH", "uri": "${var.broker_credentials_secret_arn}"},
                    {"type": "VIRTUAL_HOST", "uri": "${var.broker_virtual_host}"},
                ],
            }
    return {
        "variable": _tf_variables(),
        "data": {
            # Read at plan time: the value lives in the Terraform state, never in a file here.
            "aws_secretsmanager_secret_version": {"broker": {"secret_id": "${var.broker_credentials_secret_arn}"}},
            "aws_iam_policy_document": {
                function.name: {"statement": _tf_statements(function)} for function in FUNCTIONS
            },
        },
        "locals": {
            "broker_credentials": "${jsondecode(data.aws_secretsmanager_secret_version.broker.secret_string)}",
            # chalice's API definition with the gateway's own answers in the API's error shape.
            "gateway_responses": json.dumps(gateway_errors.swagger_extension(), sort_keys=True),
            "api_swagger": (
                "${jsonencode(merge(jsondecode(local.chalice_api_swagger), "
                f'{{"{gateway_errors.EXTENSION}" = jsondecode(local.gateway_responses)}}))}}'
            ),
        },
        "resource": {
            "aws_dynamodb_table": {name: _tf_table(name, d) for name, d in table_definitions().items()},
            "aws_lambda_event_source_mapping": mappings,
        },
        "output": {"OutboxStreamArn": {"value": "${aws_dynamodb_table.outbox.stream_arn}"}},
    }


def terraform_override() -> dict:
    functions: dict[str, Any] = {}
    policies: dict[str, Any] = {}
    stream_sources: dict[str, Any] = {}
    for function in FUNCTIONS:
        role = f"{function.name}_role"
        policies[role] = {"policy": f"${{data.aws_iam_policy_document.{function.name}.json}}"}
        variables = chalice_environment()
        variables["JWT_SECRET_PARAMETER"] = "${var.jwt_secret_parameter_name}"
        variables |= {name: _tf_env(name) for name in function.env}
        spec: dict[str, Any] = {
            # The role's ARN through its policy: the function (and its event sources)
            # waits until the role has its permissions.
            "role": f"arn:{_PARTITION}:iam::{_ACCOUNT}:role/${{aws_iam_role_policy.{role}.role}}",
            "environment": {"variables": variables},
        }
        if function.vpc:
            spec["vpc_config"] = {"subnet_ids": "${var.subnet_ids}", "security_group_ids": "${var.security_group_ids}"}
        functions[function.name] = spec
        if function.stream:
            stream_sources[stream_source_name(function.name)] = {
                "event_source_arn": f"${{aws_dynamodb_table.{function.stream}.stream_arn}}",
                "starting_position": "TRIM_HORIZON",
            }
    return {
        "resource": {
            "aws_api_gateway_rest_api": {"rest_api": {"body": "${local.api_swagger}"}},
            # A new deployment whenever the definition changes, gateway responses included.
            "aws_api_gateway_deployment": {"rest_api": {"stage_description": "${md5(local.api_swagger)}"}},
            "aws_iam_role_policy": policies,
            "aws_lambda_function": functions,
            "aws_lambda_event_source_mapping": stream_sources,
        }
    }


def rendered() -> dict[Path, str]:
    def dump(data: dict) -> str:
        return json.dumps(data, indent=2) + "\n"

    return {SAM_MERGE: dump(sam_merge()), TF_MAIN: dump(terraform_main()), TF_OVERRIDE: dump(terraform_override())}


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the deploy templates in infra/templates/.")
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args()
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            sys.exit(f"out of date: {names}; run python -m infra.deploy_templates")
        return
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
