"""Instructor routes: who is enrolled, dropped and waiting; administrative drop."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route
from chalicelib.domain.model import EnrollmentState

bp = Blueprint(__name__)


def _students(call: Call, iid: int, cid: int, state: EnrollmentState):
    students = services.enrollment().class_students(call.who, iid, cid, state)
    return respond(
        schemas.ClassStudents(class_id=cid, students=[schemas.StudentRef(student_id=s) for s in sorted(students)])
    )


@route(bp, "/instructors/{iid}/classes/{cid}/enrollment", ["GET"], responses={200: schemas.ClassStudents})
def enrollment(call: Call, iid: int, cid: int):
    """Students enrolled in a class the instructor teaches."""
    return _students(call, iid, cid, EnrollmentState.ENROLLED)


@route(bp, "/instructors/{iid}/classes/{cid}/dropped", ["GET"], responses={200: schemas.ClassStudents})
def dropped(call: Call, iid: int, cid: int):
    """Students who dropped a class the instructor teaches."""
    return _students(call, iid, cid, EnrollmentState.DROPPED)


@route(bp, "/instructors/{iid}/classes/{cid}/waitlist", ["GET"], responses={200: schemas.ClassWaitlist})
def waitlist(call: Call, iid: int, cid: int):
    """The waitlist of a class the instructor teaches, in order."""
    entries = services.enrollment().class_waitlist(call.who, iid, cid)
    seats = [schemas.WaitlistSeat(student_id=e.student_id, waitlist_position=e.position) for e in entries]
    return respond(schemas.ClassWaitlist(class_id=cid, waitlist=seats))


@route(bp, "/instructors/{iid}/classes/{cid}/students/{sid}/drop", ["POST"], responses={200: schemas.Dropped})
def drop_student(call: Call, iid: int, cid: int, sid: int):
    """Drop a student administratively; the first waitlisted student takes the seat."""
    promoted = services.enrollment().instructor_drop(call.who, iid, cid, sid)
    return respond(views.dropped(cid, sid, promoted))
