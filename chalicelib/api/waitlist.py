"""A student's waitlist positions (conditional GET with ETag), and leaving a waitlist."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.conditional import conditional_json
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/waitlist/students/{sid}", ["GET"], responses={200: schemas.Waitlists, 304: "Not modified"})
def positions(call: Call, sid: int):
    entries = services.enrollment().waitlist_positions(call.who, sid)
    return conditional_json(
        call.request.headers.get("if-none-match"), schemas.Waitlists(Waitlists=[views.position(e) for e in entries])
    )


@route(bp, "/waitlist/students/{sid}/classes/{cid}", ["GET"], responses={200: schemas.Position, 304: "Not modified"})
def position(call: Call, sid: int, cid: int):
    entry = services.enrollment().waitlist_position(call.who, sid, cid)
    return conditional_json(call.request.headers.get("if-none-match"), views.position(entry))


@route(bp, "/waitlist/students/{sid}/classes/{cid}", ["DELETE"], responses={200: schemas.LeftWaitlist})
def leave(call: Call, sid: int, cid: int):
    services.enrollment().leave_waitlist(call.who, sid, cid)
    return respond(schemas.LeftWaitlist(class_id=cid, student_id=sid, status="left_waitlist"))
