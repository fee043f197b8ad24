"""Registrar routes: classes and the automatic-enrollment switch."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.registrar import NewClass

bp = Blueprint(__name__)


@route(bp, "/registrar/classes", ["POST"])
def create_class(call: Call):
    body = call.body(schemas.CreateClassRequest)
    section = services.registrar().create_class(call.who, NewClass(**body.model_dump()))
    return respond(views.section(section), 201)


@route(bp, "/registrar/classes/{cid}", ["PATCH"])
def update_class(call: Call, cid: int):
    body = call.body(schemas.UpdateClassRequest)
    section, promoted = services.registrar().update_class(call.who, cid, body.max_enroll, body.name)
    return respond({**views.section(section), "promoted": views.promotions(promoted)})


@route(bp, "/registrar/classes/{cid}", ["DELETE"])
def delete_class(call: Call, cid: int):
    services.registrar().delete_class(call.who, cid)
    return respond({"class_id": cid, "status": "deleted"})


@route(bp, "/registrar/classes/{cid}/instructors/{iid}", ["PUT"])
def set_instructor(call: Call, cid: int, iid: int):
    section = services.registrar().set_instructor(call.who, cid, iid)
    return respond(views.section(section))


@route(bp, "/registrar/automatic-enrollment/freeze", ["PUT"])
def freeze(call: Call):
    body = call.body(schemas.FreezeRequest)
    promoted = services.registrar().set_frozen(call.who, body.frozen)
    return respond({"frozen": body.frozen, "promoted": views.promotions(promoted)})
