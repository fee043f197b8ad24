"""Registrar routes: classes and the automatic-enrollment switch."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.registrar import NewClass

bp = Blueprint(__name__)


@route(bp, "/registrar/classes", ["POST"], body=schemas.CreateClassRequest, responses={201: schemas.ClassView})
def create_class(call: Call):
    """Create a class (section)."""
    body = call.body(schemas.CreateClassRequest)
    section = services.registrar().create_class(call.who, NewClass(**body.model_dump()))
    return respond(views.section(section), 201)


@route(
    bp, "/registrar/classes/{cid}", ["PATCH"], body=schemas.UpdateClassRequest, responses={200: schemas.ClassUpdated}
)
def update_class(call: Call, cid: int):
    """Change a class's capacity or name; raising capacity promotes from the waitlist."""
    body = call.body(schemas.UpdateClassRequest)
    section, promoted = services.registrar().update_class(call.who, cid, body.max_enroll, body.name)
    return respond(views.updated(section, promoted))


@route(bp, "/registrar/classes/{cid}", ["DELETE"], responses={200: schemas.ClassDeleted})
def delete_class(call: Call, cid: int):
    """Remove a class, its enrollments, its waitlist and subscriptions to it."""
    services.registrar().delete_class(call.who, cid)
    return respond(schemas.ClassDeleted(class_id=cid, status="deleted"))


@route(bp, "/registrar/classes/{cid}/instructors/{iid}", ["PUT"], responses={200: schemas.ClassView})
def set_instructor(call: Call, cid: int, iid: int):
    """Change the instructor of a class."""
    section = services.registrar().set_instructor(call.who, cid, iid)
    return respond(views.section(section))


@route(
    bp,
    "/registrar/automatic-enrollment/freeze",
    ["PUT"],
    body=schemas.FreezeRequest,
    responses={200: schemas.FreezeResponse},
)
def freeze(call: Call):
    """Freeze or unfreeze automatic enrollment; unfreezing fills open seats."""
    body = call.body(schemas.FreezeRequest)
    promoted = services.registrar().set_frozen(call.who, body.frozen)
    return respond(schemas.FreezeResponse(frozen=body.frozen, promoted=views.promotions(promoted)))
