"""Student routes: the catalogue, enrolling, dropping, their classes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/classes", ["GET"], responses={200: schemas.ClassList})
def open_classes(call: Call):
    """Classes open for enrollment: a free seat or room on the waitlist."""
    listed = services.enrollment().open_classes()
    return respond(schemas.ClassList(classes=[views.listing(s, length) for s, length in listed]))


@route(
    bp,
    "/students/{sid}/classes/{cid}/enroll",
    ["POST"],
    responses={201: schemas.Enrolled, 202: schemas.Waitlisted},
)
def enroll(call: Call, sid: int, cid: int):
    """Enroll in a class, or join its waitlist when it is full (202)."""
    result = services.enrollment().enroll(call.who, sid, cid)
    if result.enrolled:
        return respond(schemas.Enrolled(class_id=cid, student_id=sid, status="enrolled"), 201)
    waitlisted = schemas.Waitlisted(
        class_id=cid, student_id=sid, status="waitlisted", waitlist_position=result.waitlist_position
    )
    return respond(waitlisted, 202)


@route(bp, "/students/{sid}/classes/{cid}/drop", ["PUT"], responses={200: schemas.Dropped})
def drop(call: Call, sid: int, cid: int):
    """Drop a class; the first waitlisted student takes the seat."""
    promoted = services.enrollment().drop(call.who, sid, cid)
    return respond(views.dropped(cid, sid, promoted))


@route(bp, "/students/{sid}/classes", ["GET"], responses={200: schemas.StudentClasses})
def enrolled_classes(call: Call, sid: int):
    """The classes a student is enrolled in."""
    sections = services.enrollment().enrolled_classes(call.who, sid)
    return respond(schemas.StudentClasses(student_id=sid, classes=[views.section(s) for s in sections]))
