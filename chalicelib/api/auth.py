"""Accounts: register, log in, and the registrar's user creation."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.model import Role

bp = Blueprint(__name__)


@route(
    bp,
    "/auth/register",
    ["POST"],
    public=True,
    body=schemas.RegisterRequest,
    responses={201: schemas.UserView, 409: schemas.ErrorBody},
)
def register(call: Call):
    """Create a student account."""
    body = call.body(schemas.RegisterRequest)
    user = services.auth().register(body.username, body.password, body.name, body.email or "")
    return respond(views.user(user), 201)


@route(
    bp,
    "/auth/login",
    ["POST"],
    public=True,
    body=schemas.LoginRequest,
    responses={200: schemas.TokenResponse, 401: schemas.ErrorBody, 429: schemas.ErrorBody},
)
def login(call: Call):
    """Exchange a username and password for a bearer token."""
    body = call.body(schemas.LoginRequest)
    token, ttl = services.auth().login(body.username, body.password, call.client_address)
    return respond(schemas.TokenResponse(access_token=token, token_type="bearer", expires_in=ttl))


@route(bp, "/registrar/users", ["POST"], body=schemas.CreateUserRequest, responses={201: schemas.UserView})
def create_user(call: Call):
    """Create an account of any role (registrar only)."""
    body = call.body(schemas.CreateUserRequest)
    user = services.auth().create_user(
        call.who, body.username, body.password, Role(body.role), body.name, body.email or ""
    )
    return respond(views.user(user), 201)


@route(bp, "/registrar/users/{uid}", ["DELETE"], responses={200: schemas.UserDeleted})
def delete_user(call: Call, uid: int):
    """Remove an account (registrar only); its tokens stop working."""
    services.auth().delete_user(call.who, uid)
    return respond(schemas.UserDeleted(user_id=uid, status="deleted"))
