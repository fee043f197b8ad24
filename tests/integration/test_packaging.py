"""`make package` output, checked offline: the SAM template passes cfn-lint, and the
CloudFormation and Terraform formats declare the same functions, tables (as in
chalicelib/adapters/tables.py), event sources, environment and permissions, with no secret.

Packaging runs once per module (chalice downloads the Lambda wheels from the package
registry the first time, then reuses its cache).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import tables, topology
from chalicelib.api import gateway_errors
from chalicelib.config import PLACEHOLDER_STREAM_ARN, Settings
from chalicelib.domain.auth import REVOCATION_DELAY_SECONDS
from infra import deploy_templates, package
from tests.conftest import TEST_ENV

ROOT = deploy_templates.ROOT
PREFIX = "PREFIX"
# Provided by the Lambda Python runtime, so not in the deployment package.
RUNTIME_PROVIDED = {"boto3", "botocore"}


@dataclass
class Packaged:
    sam: dict
    terraform: dict
    sam_text: str
    terraform_text: str
    cfn_dir: Path
    tf_dir: Path


def merge_terraform(directory: Path) -> dict:
    """The configuration Terraform would see: every *.tf.json, then the override files
    merged into the blocks they name (attribute by attribute, as Terraform does)."""
    config: dict[str, Any] = {}
    overrides = []
    for path in sorted(directory.glob("*.tf.json")):
        data = json.loads(path.read_text())
        if path.name.endswith("_override.tf.json") or path.name == "override.tf.json":
            overrides.append(data)
            continue
        for block, content in data.items():
            if block == "resource" or block == "data":
                for kind, named in content.items():
                    target = config.setdefault(block, {}).setdefault(kind, {})
                    for name, body in named.items():
                        assert name not in target, f"{block}.{kind}.{name} declared twice"
                        target[name] = body
            elif isinstance(content, dict):
                for name, body in content.items():
                    assert name not in config.get(block, {}) or block == "terraform", f"{block}.{name} declared twice"
                    config.setdefault(block, {})[name] = body
    for data in overrides:
        for kind, named in data["resource"].items():
            for name, body in named.items():
                base = config["resource"].get(kind, {}).get(name)
                assert base is not None, f"override of missing resource {kind}.{name}"
                base.update(copy.deepcopy(body))
    return config


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    out = tmp_path_factory.mktemp("package")
    sam_path, tf_dir = package.package(out, run_lint=False)
    terraform_text = "\n".join(p.read_text() for p in sorted(tf_dir.glob("*.tf.json")))
    return Packaged(
        sam=json.loads(sam_path.read_text()),
        terraform=merge_terraform(tf_dir),
        sam_text=sam_path.read_text(),
        terraform_text=terraform_text,
        cfn_dir=sam_path.parent,
        tf_dir=tf_dir,
    )


# -- normalizing both formats to the same facts ------------------------------------------


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def cfn_value(value: Any) -> Any:
    """A parameter reference as 'param:<snake_name>', anything else as is."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"param:{snake(value['Ref'])}"
    return value


def tf_value(value: Any) -> Any:
    if isinstance(value, str) and (match := re.fullmatch(r"\$\{var\.(\w+)\}", value)):
        return f"param:{match.group(1)}"
    return value


def cfn_resources(sam: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in sam["Resources"].items() if r["Type"] == kind}


def cfn_functions(sam: dict) -> dict[str, str]:
    """logical id -> handler."""
    return {n: r["Properties"]["Handler"] for n, r in cfn_resources(sam, "AWS::Serverless::Function").items()}


def tf_functions(config: dict) -> dict[str, str]:
    return {n: r["handler"] for n, r in config["resource"]["aws_lambda_function"].items()}


def normal_table(attributes: dict, keys: dict, indexes: dict, stream: str | None, billing: str) -> dict:
    return {"attributes": attributes, "keys": keys, "indexes": indexes, "stream": stream, "billing": billing}


def expected_tables() -> dict[str, dict]:
    settings = Settings.from_env({"TABLE_PREFIX": PREFIX})
    found = {}
    for d in tables.definitions(settings):
        stream = d.get("StreamSpecification", {})
        found[d["TableName"].removeprefix(f"{PREFIX}-")] = normal_table(
            {a["AttributeName"]: a["AttributeType"] for a in d["AttributeDefinitions"]},
            {k["KeyType"]: k["AttributeName"] for k in d["KeySchema"]},
            {
                i["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]}, i["Projection"])
                for i in d.get("GlobalSecondaryIndexes", [])
            },
            stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            "PAY_PER_REQUEST",
        )
    return found


def cfn_tables(sam: dict) -> dict[str, dict]:
    found = {}
    for table in cfn_resources(sam, "AWS::DynamoDB::Table").values():
        p = table["Properties"]
        name = p["TableName"]["Fn::Sub"].removeprefix("${TablePrefix}-")
        found[name] = normal_table(
            {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]},
            {k["KeyType"]: k["AttributeName"] for k in p["KeySchema"]},
            {
                i["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]}, i["Projection"])
                for i in p.get("GlobalSecondaryIndexes", [])
            },
            p.get("StreamSpecification", {}).get("StreamViewType"),
            p["BillingMode"],
        )
    return found


def tf_tables(config: dict) -> dict[str, dict]:
    found = {}
    for table in config["resource"]["aws_dynamodb_table"].values():
        keys = {"HASH": table["hash_key"]} | ({"RANGE": table["range_key"]} if "range_key" in table else {})
        indexes = {}
        for index in table.get("global_secondary_index", []):
            index_keys = {"HASH": index["hash_key"]} | ({"RANGE": index["range_key"]} if "range_key" in index else {})
            indexes[index["name"]] = (index_keys, {"ProjectionType": index["projection_type"]})
        found[table["name"].removeprefix("${var.table_prefix}-")] = normal_table(
            {a["name"]: a["type"] for a in table["attribute"]},
            keys,
            indexes,
            table.get("stream_view_type") if table.get("stream_enabled") else None,
            table["billing_mode"],
        )
    return found


def cfn_event_sources(sam: dict) -> set[tuple]:
    tables_by_id = {n: r["Properties"]["TableName"]["Fn::Sub"].split("-", 1)[1] for n, r in sam["Resources"].items()
                    if r["Type"] == "AWS::DynamoDB::Table"}  # fmt: skip
    found = set()
    for function in cfn_resources(sam, "AWS::Serverless::Function").values():
        handler = function["Properties"]["Handler"]
        for event in function["Properties"].get("Events", {}).values():
            p = event["Properties"]
            if event["Type"] == "DynamoDB":
                table_id, attribute = p["Stream"]["Fn::GetAtt"]
                assert attribute == "StreamArn"
                source = ("dynamodb-stream", tables_by_id[table_id])
                found.add(
                    (handler, *source, p["BatchSize"], p["MaximumBatchingWindowInSeconds"], p["StartingPosition"])
                )
            elif event["Type"] == "MQ":
                access = {a["Type"]: cfn_value(a["URI"]) for a in p["SourceAccessConfigurations"]}
                found.add(
                    (
                        handler,
                        "mq",
                        cfn_value(p["Broker"]),
                        tuple(p["Queues"]),
                        cfn_value(p["BatchSize"]),
                        cfn_value(p["MaximumBatchingWindowInSeconds"]),
                        tuple(sorted(access.items())),
                    )
                )
            else:
                pytest.fail(f"unexpected event source {event['Type']}")
    return found


def tf_event_sources(config: dict) -> set[tuple]:
    functions = config["resource"]["aws_lambda_function"]
    found = set()
    for mapping in config["resource"]["aws_lambda_event_source_mapping"].values():
        function = re.fullmatch(r"\$\{aws_lambda_function\.(\w+)\.arn\}", mapping["function_name"]).group(1)
        handler = functions[function]["handler"]
        source = mapping["event_source_arn"]
        if stream := re.fullmatch(r"\$\{aws_dynamodb_table\.(\w+)\.stream_arn\}", source):
            table = config["resource"]["aws_dynamodb_table"][stream.group(1)]["name"].split("-", 1)[1]
            found.add(
                (
                    handler,
                    "dynamodb-stream",
                    table,
                    mapping["batch_size"],
                    mapping["maximum_batching_window_in_seconds"],
                    mapping["starting_position"],
                )
            )
        else:
            access = {a["type"]: tf_value(a["uri"]) for a in mapping["source_access_configuration"]}
            found.add(
                (
                    handler,
                    "mq",
                    tf_value(source),
                    tuple(mapping["queues"]),
                    tf_value(mapping["batch_size"]),
                    tf_value(mapping["maximum_batching_window_in_seconds"]),
                    tuple(sorted(access.items())),
                )
            )
    return found


def cfn_policies(sam: dict) -> dict[str, list[dict]]:
    """handler -> statements of its role."""
    found = {}
    for function in cfn_resources(sam, "AWS::Serverless::Function").values():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        policies = sam["Resources"][role]["Properties"]["Policies"]
        found[function["Properties"]["Handler"]] = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    return found


def tf_policies(config: dict) -> dict[str, list[dict]]:
    found = {}
    for name, function in config["resource"]["aws_lambda_function"].items():
        role_policy = re.search(r"aws_iam_role_policy\.(\w+)\.role", function["role"]).group(1)
        document = re.fullmatch(
            r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}",
            config["resource"]["aws_iam_role_policy"][role_policy]["policy"],
        ).group(1)
        assert config["resource"]["aws_iam_role_policy"][role_policy]["role"] == f"${{aws_iam_role.{name}_role.id}}"
        found[function["handler"]] = config["data"]["aws_iam_policy_document"][document]["statement"]
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- the tests -----------------------------------------------------------------------------

pytestmark = pytest.mark.slow


def test_sam_template_passes_cfn_lint(packaged: Packaged) -> None:
    findings = package.lint(packaged.cfn_dir / package.SAM_TEMPLATE)  # raises on errors
    assert findings == "", f"cfn-lint warnings:\n{findings}"


def test_both_formats_declare_the_apps_functions(packaged: Packaged) -> None:
    handlers = {
        "app.app",
        "chalicelib.api.security.jwt_auth",
        "app.relay_outbox",
        "app.deliver_email",
        "app.deliver_webhook",
    }
    assert set(cfn_functions(packaged.sam).values()) == handlers
    assert set(tf_functions(packaged.terraform).values()) == handlers
    assert set(tf_functions(packaged.terraform)) == {f.name for f in deploy_templates.FUNCTIONS}


def test_both_formats_declare_the_tables_of_tables_py(packaged: Packaged) -> None:
    expected = expected_tables()
    assert cfn_tables(packaged.sam) == expected
    assert tf_tables(packaged.terraform) == expected
    assert expected["outbox"]["stream"] == "NEW_IMAGE"


def test_both_formats_declare_the_same_event_sources(packaged: Packaged) -> None:
    cfn, tf = cfn_event_sources(packaged.sam), tf_event_sources(packaged.terraform)
    assert cfn == tf
    auth = (("BASIC_AUTH", "param:broker_credentials_secret_arn"), ("VIRTUAL_HOST", "param:broker_virtual_host"))
    batch = ("param:queue_batch_size", "param:queue_batching_window_seconds")
    assert cfn == {
        ("app.relay_outbox", "dynamodb-stream", "outbox", 500, 1, "TRIM_HORIZON"),
        ("app.deliver_email", "mq", "param:broker_arn", (topology.queue("email"),), *batch, auth),
        ("app.deliver_webhook", "mq", "param:broker_arn", (topology.queue("webhook"),), *batch, auth),
    }


def test_the_placeholder_stream_is_replaced_in_both(packaged: Packaged) -> None:
    assert PLACEHOLDER_STREAM_ARN not in packaged.sam_text
    assert PLACEHOLDER_STREAM_ARN not in json.dumps(packaged.terraform)


def test_both_formats_give_the_gateways_own_answers_in_the_apis_error_shape(packaged: Packaged) -> None:
    wanted = gateway_errors.swagger_extension()
    definition = packaged.sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert definition[gateway_errors.EXTENSION] == wanted
    config = packaged.terraform
    assert json.loads(config["locals"]["gateway_responses"]) == wanted
    swagger = config["locals"]["api_swagger"]
    assert "local.chalice_api_swagger" in swagger and "local.gateway_responses" in swagger
    assert config["resource"]["aws_api_gateway_rest_api"]["rest_api"]["body"] == "${local.api_swagger}"
    assert "local.api_swagger" in config["resource"]["aws_api_gateway_deployment"]["rest_api"]["stage_description"]
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "UNAUTHORIZED", "DEFAULT_4XX", "DEFAULT_5XX"):
        template = wanted[kind]["responseTemplates"]["application/json"]
        body = json.loads(template.replace(gateway_errors.GATEWAY_MESSAGE, '"what API Gateway says"'))
        assert set(body) == {"message", "code", "details"} and body["message"], kind
    assert wanted["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404


def test_api_gateway_caches_the_authorizers_answer_no_longer_than_revocation_allows(packaged: Packaged) -> None:
    """Unset, API Gateway would keep a removed account's token working for 300 s."""
    pattern = r'\\?"authorizerResultTtlInSeconds\\?": (\d+)'
    for text in (packaged.sam_text, packaged.terraform_text):
        assert [int(ttl) for ttl in re.findall(pattern, text)] == [REVOCATION_DELAY_SECONDS]


def test_both_formats_give_each_function_the_same_environment(packaged: Packaged) -> None:
    cfn = {
        f["Properties"]["Handler"]: set(f["Properties"]["Environment"]["Variables"])
        for f in cfn_resources(packaged.sam, "AWS::Serverless::Function").values()
    }
    tf = {
        f["handler"]: set(f["environment"]["variables"])
        for f in packaged.terraform["resource"]["aws_lambda_function"].values()
    }
    assert cfn == tf
    assert {"TABLE_PREFIX", "REDIS_URL", "AMQP_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_FROM"} <= cfn["app.deliver_email"]
    assert "AMQP_URL" not in cfn["chalicelib.api.security.jwt_auth"]
    assert all("JWT_SECRET_PARAMETER" in names and "JWT_SECRET" not in names for names in cfn.values())


def test_functions_that_reach_redis_or_the_broker_run_in_the_vpc(packaged: Packaged) -> None:
    for function in cfn_resources(packaged.sam, "AWS::Serverless::Function").values():
        p = function["Properties"]
        in_vpc = "VpcConfig" in p
        assert in_vpc == bool({"REDIS_URL", "AMQP_URL"} & set(p["Environment"]["Variables"])), p["Handler"]
        if in_vpc:
            assert p["VpcConfig"] == {
                "SubnetIds": {"Ref": "SubnetIds"},
                "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
            }


def test_both_formats_grant_the_same_permissions(packaged: Packaged) -> None:
    cfn, tf = cfn_policies(packaged.sam), tf_policies(packaged.terraform)
    assert {h: {(s["Sid"], frozenset(as_list(s["Action"]))) for s in st} for h, st in cfn.items()} == {
        h: {(s["sid"], frozenset(s["actions"])) for s in st} for h, st in tf.items()
    }


def test_each_role_has_least_privilege(packaged: Packaged) -> None:
    policies = cfn_policies(packaged.sam)
    table_ids = set(cfn_resources(packaged.sam, "AWS::DynamoDB::Table"))
    for handler, statements in policies.items():
        for statement in statements:
            actions = as_list(statement["Action"])
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in actions), (handler, actions)
            if statement["Resource"] == "*":
                assert all(a.startswith("ec2:") for a in actions), (handler, actions)
            if any(a.startswith("dynamodb:") for a in actions):
                text = json.dumps(statement["Resource"])
                assert any(t in text for t in table_ids), (handler, statement)
    actions = {h: {a for s in st for a in as_list(s["Action"])} for h, st in policies.items()}

    assert {a for a in actions["chalicelib.api.security.jwt_auth"] if not a.startswith("ec2:")} == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
    }
    assert {h for h, a in actions.items() if "ssm:GetParameter" in a} == {"app.app", "chalicelib.api.security.jwt_auth"}
    consumers = {"app.deliver_email", "app.deliver_webhook"}
    assert {h for h, a in actions.items() if "secretsmanager:GetSecretValue" in a} == consumers
    assert {h for h, a in actions.items() if "mq:DescribeBroker" in a} == consumers
    assert all({"ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"} <= actions[h] for h in consumers)
    assert {h for h, a in actions.items() if "dynamodb:GetRecords" in a} == {"app.relay_outbox"}
    for consumer in consumers:  # delivery only records outcomes, in the deliveries table
        assert {a for a in actions[consumer] if a.startswith("dynamodb:")} == {"dynamodb:BatchWriteItem"}
        (history,) = [s for s in policies[consumer] if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
        assert "DeliveriesTable" in json.dumps(history["Resource"]), history
    assert not {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"} & actions["app.relay_outbox"]

    by_sid = {s["Sid"]: s for s in policies["app.app"]}
    assert by_sid["JwtSigningKey"]["Resource"]["Fn::Sub"].endswith(":parameter${JwtSecretParameterName}")
    broker = {s["Sid"]: s for s in policies["app.deliver_email"]}
    assert broker["BrokerCredentials"]["Resource"] == {"Ref": "BrokerCredentialsSecretArn"}
    assert broker["Broker"]["Resource"] == {"Ref": "BrokerArn"}


def test_terraform_references_resolve(packaged: Packaged) -> None:
    config = packaged.terraform
    text = json.dumps(config)
    for name in set(re.findall(r"\bvar\.(\w+)", text)):
        assert name in config["variable"], f"undeclared variable {name}"
    for name in set(re.findall(r"\blocal\.(\w+)", text)):
        assert name in config["locals"], f"undeclared local {name}"
    for kind, name in set(re.findall(r"\bdata\.(\w+)\.([\w-]+)", text)):
        assert name in config["data"].get(kind, {}), f"undeclared data.{kind}.{name}"
    for kind, name in set(
        re.findall(r"\$\{(aws_\w+)\.([\w-]+)\.", text) + re.findall(r"[(\s](aws_\w+)\.([\w-]+)\.", text)
    ):
        assert name in config["resource"].get(kind, {}), f"undeclared {kind}.{name}"


def test_no_secret_value_in_any_template(packaged: Packaged) -> None:
    local_secret = next(
        line.split("=", 1)[1]
        for line in (ROOT / "infra" / "local.env").read_text().splitlines()
        if line.startswith("JWT_SECRET=")
    )
    for text in (packaged.sam_text, packaged.terraform_text):
        for secret in (local_secret, TEST_ENV["JWT_SECRET"], "whsec_", "guest:guest", "PRIVATE KEY"):
            assert secret not in text
        assert not re.search(r"AKIA[0-9A-Z]{16}", text)
        assert 'JWT_SECRET"' not in text
    amqp = {
        json.dumps(f["Properties"]["Environment"]["Variables"]["AMQP_URL"])
        for f in cfn_resources(packaged.sam, "AWS::Serverless::Function").values()
        if "AMQP_URL" in f["Properties"]["Environment"]["Variables"]
    }
    assert amqp and all(
        "{{resolve:secretsmanager:${BrokerCredentialsSecretArn}:SecretString:password}}" in a for a in amqp
    )
    tf_amqp = {
        f["environment"]["variables"].get("AMQP_URL")
        for f in packaged.terraform["resource"]["aws_lambda_function"].values()
    } - {None}
    assert tf_amqp and all("urlencode(local.broker_credentials.password)" in a for a in tf_amqp)


def third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"app", "chalicelib", "__future__"} - RUNTIME_PROVIDED


def test_deployment_package_holds_every_import_of_the_app(packaged: Packaged) -> None:
    with zipfile.ZipFile(packaged.cfn_dir / "deployment.zip") as archive:
        entries = archive.namelist()
    top = {e.split("/")[0].removesuffix(".py") for e in entries} | {e.split(".")[0] for e in entries if "/" not in e}
    assert "app" in top and "chalicelib" in top
    missing = third_party_imports() - top
    assert not missing, f"imported by the app but not packaged (add to requirements.txt): {sorted(missing)}"
    with zipfile.ZipFile(packaged.tf_dir / "deployment.zip") as archive:
        assert sorted(archive.namelist()) == sorted(entries)


def test_committed_templates_are_generated_from_the_sources() -> None:
    for path, text in deploy_templates.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run python -m infra.deploy_templates"
