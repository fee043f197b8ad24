"""Accounts: register, log in, and the registrar's user creation."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.model import Role

bp = Blueprint(__name__)


@route(bp, "/auth/register", ["POST"], public=True)
def register(call: Call):
    body = call.body(schemas.RegisterRequest)
    user = services.auth().register(body.username, body.password, body.name, body.email or "")
    return respond(views.user(user), 201)


@route(bp, "/auth/login", ["POST"], public=True)
def login(call: Call):
    body = call.body(schemas.LoginRequest)
    token, ttl = services.auth().login(body.username, body.password)
    return respond({"access_token": token, "token_type": "bearer", "expires_in": ttl})


@route(bp, "/registrar/users", ["POST"])
def create_user(call: Call):
    body = call.body(schemas.CreateUserRequest)
    user = services.auth().create_user(
        call.who, body.username, body.password, Role(body.role), body.name, body.email or ""
    )
    return respond(views.user(user), 201)
