"""A student's waitlist positions, and leaving a waitlist."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import views
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/waitlist/students/{sid}", ["GET"])
def positions(call: Call, sid: int):
    entries = services.enrollment().waitlist_positions(call.who, sid)
    return respond({"Waitlists": [views.position(e) for e in entries]})


@route(bp, "/waitlist/students/{sid}/classes/{cid}", ["GET"])
def position(call: Call, sid: int, cid: int):
    entry = services.enrollment().waitlist_position(call.who, sid, cid)
    return respond(views.position(entry))


@route(bp, "/waitlist/students/{sid}/classes/{cid}", ["DELETE"])
def leave(call: Call, sid: int, cid: int):
    services.enrollment().leave_waitlist(call.who, sid, cid)
    return respond({"class_id": cid, "student_id": sid, "status": "left_waitlist"})
