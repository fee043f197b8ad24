"""A student's notification history: each event with its per-channel delivery status."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


@route(bp, "/students/{sid}/notifications", ["GET"])
def history(call: Call, sid: int):
    return respond({"student_id": sid, "notifications": services.notifications().history(call.who, sid)})
