"""What API Gateway answers by itself, before the authorizer or any route runs, put in the
API's one error shape. Deployed, these are the REST API's gateway responses (the swagger
extension below, merged into the packaged templates by infra.deploy_templates);
`infra.chalice_local` gives the same answers locally."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chalicelib.api.http import AUTHENTICATE, error_body

EXTENSION = "x-amazon-apigateway-gateway-responses"
# API Gateway's own text of the error, already a JSON string literal in its templates.
GATEWAY_MESSAGE = "$context.error.messageString"


@dataclass(frozen=True)
class GatewayError:
    status: int | None  # None: API Gateway's own status for that kind of error
    code: str
    message: str | None  # None: API Gateway's own message
    headers: dict[str, str] = field(default_factory=dict)


# By API Gateway response type.
GATEWAY_ERRORS = {
    # No route for this method and path. API Gateway says 403 "Missing Authentication
    # Token"; with an Authorization header, its message would quote the header.
    "MISSING_AUTHENTICATION_TOKEN": GatewayError(404, "route_not_found", "No route for this method and path"),
    # A protected route asked without an Authorization header.
    "UNAUTHORIZED": GatewayError(
        401, "missing_token", "This route needs 'Authorization: Bearer <token>'", {"WWW-Authenticate": AUTHENTICATE}
    ),
    "ACCESS_DENIED": GatewayError(403, "forbidden", "Not allowed"),
    "DEFAULT_4XX": GatewayError(None, "gateway_error", None),
    "DEFAULT_5XX": GatewayError(None, "gateway_error", None),
}


def swagger_extension() -> dict:
    """`x-amazon-apigateway-gateway-responses` for the REST API's definition."""
    responses = {}
    for kind, error in GATEWAY_ERRORS.items():
        if error.message is None:
            template = json.dumps(error_body(error.code, "MESSAGE")).replace('"MESSAGE"', GATEWAY_MESSAGE)
        else:
            template = json.dumps(error_body(error.code, error.message))
        response: dict = {"responseTemplates": {"application/json": template}}
        if error.headers:
            response["responseParameters"] = {
                f"gatewayresponse.header.{name}": f"'{value}'" for name, value in error.headers.items()
            }
        if error.status is not None:
            response["statusCode"] = error.status
        responses[kind] = response
    return responses
