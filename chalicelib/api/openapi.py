"""The OpenAPI 3.1 document, generated from Chalice's route table and the models each
route declared (chalicelib.api.http.route); nothing here is written per route."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api import schemas
from chalicelib.api.http import ID_PARAMETERS, ROUTE_DOCS, RouteDoc

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{(\w+)\}")
PUBLIC_ERRORS = (400, 413, 415, 422)
AUTHED_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)


class UndocumentedRoute(LookupError):
    """A route of the app has no recorded documentation."""


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _content(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": _ref(model)}}


def _operation(doc: RouteDoc) -> dict:
    parameters: list[dict] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": ID_PARAMETERS.get(name, name),
            "schema": {"type": "integer", "minimum": 1} if name in ID_PARAMETERS else {"type": "string"},
        }
        for name in _PARAM.findall(doc.path)
    ]
    if doc.query is not None:
        for name, field in doc.query.model_fields.items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": field.description or name,
                    "schema": {"type": "string"},
                }
            )
    responses: dict[str, Any] = {}
    for status, described in doc.responses.items():
        if isinstance(described, str):
            responses[str(status)] = {"description": described}
        else:
            responses[str(status)] = {
                "description": described.__doc__ or described.__name__,
                "content": _content(described),
            }
    if not doc.public:
        responses["401"] = {
            "description": "No token (answered by the gateway, in the same shape), or an expired or invalid one",
            "content": _content(schemas.ErrorBody),
        }
    for status in PUBLIC_ERRORS if doc.public else AUTHED_ERRORS:
        responses.setdefault(str(status), {"description": "Error", "content": _content(schemas.ErrorBody)})
    operation: dict[str, Any] = {
        "operationId": f"{doc.handler}_{doc.method.lower()}" if doc.method != "GET" else doc.handler,
        "summary": doc.summary,
        "tags": [doc.path.strip("/").split("/")[0]],
        "parameters": parameters,
        "responses": responses,
        "security": [] if doc.public else [{"bearerAuth": []}],
    }
    if doc.body is not None:
        operation["requestBody"] = {"required": doc.query is None, "content": _content(doc.body)}
    return operation


def _models(docs: list[RouteDoc]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {schemas.ErrorBody.__name__: schemas.ErrorBody}
    for doc in docs:
        for model in (doc.body, doc.query, *doc.responses.values()):
            if isinstance(model, type) and issubclass(model, BaseModel):
                found[model.__name__] = model
    return list(found.values())


def documented_routes(app: Any) -> list[RouteDoc]:
    """The documentation of every route of `app`; raises if one has none."""
    docs = []
    for path, methods in app.routes.items():
        for method in methods:
            doc = ROUTE_DOCS.get((path, method))
            if doc is None:
                raise UndocumentedRoute(f"{method} {path} has no documentation")
            docs.append(doc)
    return docs


def document(app: Any, version: str = "1.0.0") -> dict:
    docs = documented_routes(app)
    requests = {m for d in docs for m in (d.body, d.query) if m is not None}
    _, definitions = models_json_schema(
        [(m, "validation" if m in requests else "serialization") for m in _models(docs)], ref_template=REF
    )
    paths: dict[str, dict] = {}
    for doc in sorted(docs, key=lambda d: (d.path, d.method)):
        paths.setdefault(doc.path, {})[doc.method.lower()] = _operation(doc)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Titan Enrollment API",
            "version": version,
            "description": "Course registration: enrollment, waitlists, instructors, the registrar, notifications.",
        },
        "servers": [{"url": "."}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "access_token from POST /auth/login",
                }
            },
        },
    }
