"""Instructor routes: who is enrolled, dropped and waiting; administrative drop."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.model import EnrollmentState

bp = Blueprint(__name__)


def _students(call: Call, iid: int, cid: int, state: EnrollmentState):
    students = services.enrollment().class_students(call.who, iid, cid, state)
    return respond({"class_id": cid, "students": [{"student_id": s} for s in sorted(students)]})


@route(bp, "/instructors/{iid}/classes/{cid}/enrollment", ["GET"])
def enrollment(call: Call, iid: int, cid: int):
    return _students(call, iid, cid, EnrollmentState.ENROLLED)


@route(bp, "/instructors/{iid}/classes/{cid}/dropped", ["GET"])
def dropped(call: Call, iid: int, cid: int):
    return _students(call, iid, cid, EnrollmentState.DROPPED)


@route(bp, "/instructors/{iid}/classes/{cid}/waitlist", ["GET"])
def waitlist(call: Call, iid: int, cid: int):
    entries = services.enrollment().class_waitlist(call.who, iid, cid)
    return respond(
        {
            "class_id": cid,
            "waitlist": [{"student_id": e.student_id, "waitlist_position": e.position} for e in entries],
        }
    )


@route(bp, "/instructors/{iid}/classes/{cid}/students/{sid}/drop", ["POST"])
def drop_student(call: Call, iid: int, cid: int, sid: int):
    promoted = services.enrollment().instructor_drop(call.who, iid, cid, sid)
    return respond({"class_id": cid, "student_id": sid, "status": "dropped", "promoted": views.promotions(promoted)})
