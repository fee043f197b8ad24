"""A student's notification history: each event with its per-channel delivery status."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/students/{sid}/notifications", ["GET"], responses={200: schemas.NotificationHistory})
def history(call: Call, sid: int):
    """A student's notifications, newest first, with per-channel delivery status."""
    shown = services.notifications().history(call.who, sid)
    return respond(
        schemas.NotificationHistory(student_id=sid, notifications=[schemas.NotificationView(**n) for n in shown])
    )
