"""Student routes: the catalogue, enrolling, dropping, their classes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import views
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/classes", ["GET"])
def open_classes(call: Call):
    listed = services.enrollment().open_classes()
    return respond({"classes": [views.section(s, length) for s, length in listed]})


@route(bp, "/students/{sid}/classes/{cid}/enroll", ["POST"])
def enroll(call: Call, sid: int, cid: int):
    result = services.enrollment().enroll(call.who, sid, cid)
    body = {"class_id": cid, "student_id": sid}
    if result.enrolled:
        return respond({**body, "status": "enrolled"}, 201)
    return respond({**body, "status": "waitlisted", "waitlist_position": result.waitlist_position}, 202)


@route(bp, "/students/{sid}/classes/{cid}/drop", ["PUT"])
def drop(call: Call, sid: int, cid: int):
    promoted = services.enrollment().drop(call.who, sid, cid)
    return respond({"class_id": cid, "student_id": sid, "status": "dropped", "promoted": views.promotions(promoted)})


@route(bp, "/students/{sid}/classes", ["GET"])
def enrolled_classes(call: Call, sid: int):
    sections = services.enrollment().enrolled_classes(call.who, sid)
    return respond({"student_id": sid, "classes": [views.section(s) for s in sections]})
