"""What every route shares: the one error shape, id and body parsing, identity, responses."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice import Blueprint, Response
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib.config import get_settings
from chalicelib.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    MissingInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from chalicelib.domain.model import Identity, Role

log = logging.getLogger("titan.api")

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
_ID = re.compile(r"^[1-9][0-9]{0,17}$")
# Path parameters that name a student, class or instructor: positive integers.
ID_PARAMETERS = {"sid": "Student id", "cid": "Class id", "iid": "Instructor id", "uid": "User id"}


class ApiError(Exception):
    """A request the API cannot accept, before any business rule is asked."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


_STATUS = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Unauthorized: 401,
    InvalidInput: 422,
    MissingInput: 400,
    TooManyAttempts: 429,
}


# RFC 6750 §3: a 401 names the scheme it wants.
AUTHENTICATE = 'Bearer realm="titan"'


def error_body(code: str, message: str, details: list | None = None) -> dict:
    """The one error shape of the API (schemas.ErrorBody)."""
    return {"message": message, "code": code, "details": details or []}


def error_response(error: Exception) -> Response:
    if isinstance(error, ApiError):
        status, details = error.status, error.details
    elif isinstance(error, DomainError):
        status = next(s for kind, s in _STATUS.items() if isinstance(error, kind))
        details = getattr(error, "details", [])
    else:
        raise error
    headers = {"Content-Type": JSON}
    if status == 401:
        headers["WWW-Authenticate"] = AUTHENTICATE
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after)
    return Response(body=error_body(error.code, error.message, details), status_code=status, headers=headers)


def dump(body: Any) -> Any:
    """A response model as JSON data; optional fields never set are left out."""
    return body.model_dump(mode="json", exclude_unset=True) if isinstance(body, BaseModel) else body


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=dump(body), status_code=status, headers={"Content-Type": JSON, **(headers or {})})


@dataclass
class Call:
    """One request as the routes see it."""

    request: Request
    identity: Identity | None

    @property
    def who(self) -> Identity:
        if self.identity is None:
            raise Unauthorized("Authentication required", "unauthorized")
        return self.identity

    def raw_body(self) -> bytes:
        raw = self.request.raw_body or b""
        if len(raw) > get_settings().max_body_bytes:
            raise ApiError(413, "body_too_large", f"Request body exceeds {get_settings().max_body_bytes} bytes")
        return raw

    def json(self, required: bool = True) -> dict:
        raw = self.raw_body()
        if not raw.strip():
            if required:
                raise ApiError(400, "body_required", "A JSON object body is required")
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            # RecursionError: nesting too deep for the parser is malformed input, not a 500.
            raise ApiError(400, "malformed_json", "Request body is not valid JSON") from error
        if not isinstance(data, dict):
            raise ApiError(400, "malformed_json", "Request body must be a JSON object")
        return data

    def no_body(self) -> None:
        """For routes that take no body: nothing, or an empty JSON object. Anything else
        is refused as a body with fields would be (malformed 400, fields 422), so that a
        request carrying what it thinks are options is not carried out without them."""
        fields = self.json(required=False)
        if fields:
            details = [
                {"field": name, "message": "This route takes no body", "type": "extra_forbidden"} for name in fields
            ]
            raise ApiError(422, "validation_error", "This route takes no request body", details)

    def body(self, model: type[M], data: dict | None = None) -> M:
        """Validate a JSON object body (or `data`) against `model`; 422 names the field."""
        data = self.json() if data is None else data
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise validation_error(error) from None

    @property
    def client_address(self) -> str:
        """The caller's address as the gateway saw it."""
        return str(((self.request.context or {}).get("identity") or {}).get("sourceIp") or "unknown")

    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})


def validation_error(error: ValidationError) -> ApiError:
    details = [
        {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(d["field"] for d in details)
    return ApiError(422, "validation_error", f"Invalid value for: {fields}", details)


def parse_id(name: str, value: str) -> int:
    if not _ID.match(value or ""):
        raise ApiError(400, "invalid_id", f"Path parameter {name!r} must be a positive integer")
    return int(value)


def identity_from(request: Request) -> Identity | None:
    context = (request.context or {}).get("authorizer") or {}
    if not context.get("user_id") or not context.get("role"):
        return None
    try:
        return Identity(int(context["user_id"]), Role(context["role"]), context.get("username", ""))
    except (ValueError, TypeError):
        return None


def auth_failure(request: Request) -> Unauthorized:
    context = (request.context or {}).get("authorizer") or {}
    return Unauthorized(
        context.get("auth_message") or "Authentication required", context.get("auth_error") or "unauthorized"
    )


@dataclass(frozen=True)
class RouteDoc:
    """What the OpenAPI document says of one operation; recorded where the route is declared."""

    path: str
    method: str
    handler: str
    summary: str
    public: bool
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, Any]


ROUTE_DOCS: dict[tuple[str, str], RouteDoc] = {}


def route(
    bp: Blueprint,
    path: str,
    methods: list[str],
    *,
    public: bool = False,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, Any],
) -> Callable:
    """Register a view: ids parsed, identity required unless `public`, errors in the one
    shape, and its request and response models recorded for the OpenAPI document.

    `responses` maps each success status to its model (or to a description, for
    bodies that are not JSON)."""
    from chalicelib.api.security import jwt_auth

    def decorator(handler: Callable[..., Response]) -> Callable[..., Response]:
        summary = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
        for method in methods:
            ROUTE_DOCS[(path, method)] = RouteDoc(
                path, method, handler.__name__, summary, public, body, query, responses
            )

        @functools.wraps(handler)
        def view(**params: str) -> Response:
            request = bp.current_request
            try:
                identity = identity_from(request)
                if not public and identity is None:
                    raise auth_failure(request)
                call = Call(request, identity)
                call.raw_body()  # an oversized body is refused on every route, body or not
                if body is None:
                    call.no_body()
                args = {
                    name: parse_id(name, value) if name in ID_PARAMETERS else value for name, value in params.items()
                }
                return handler(call, **args)
            except (ApiError, DomainError) as error:
                return error_response(error)

        bp.route(path, methods=methods, authorizer=None if public else jwt_auth, content_types=[JSON])(view)
        return view

    return decorator


def error_shape_middleware(event: Any, get_response: Callable) -> Response:
    """Give errors produced by Chalice itself (405, 415, 500 ...) the one error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"]).removesuffix("Error")).lower()
        message = "Internal server error" if response.status_code >= 500 else str(body.get("Message", ""))
        response.body = error_body(code or "error", message)
        response.headers = {**response.headers, "Content-Type": JSON}
    return response
