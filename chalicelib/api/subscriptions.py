"""Subscriptions to be told of promotions: by email and/or webhook."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


def _request(call: Call) -> schemas.SubscribeRequest:
    """The original API took query parameters; a JSON body works too (it wins per field)."""
    data = dict(call.query())
    if "events" in data:
        data["events"] = [name.strip() for name in data["events"].split(",") if name.strip()]
    data.update(call.json(required=False))
    return call.body(schemas.SubscribeRequest, data)


@route(bp, "/students/{sid}/subscribe/{cid}", ["POST"])
def subscribe(call: Call, sid: int, cid: int):
    body = _request(call)
    subscription = services.subscriptions().subscribe(call.who, sid, cid, body.email, body.webhook_url, body.events)
    return respond({"message": "Subscription successful", "subscription": subscription.shown(with_secret=True)}, 201)


@route(bp, "/students/{sid}/subscriptions", ["GET"])
def list_subscriptions(call: Call, sid: int):
    listed = services.subscriptions().list(call.who, sid)
    return respond({"message": "Current subscriptions", "subscriptions": [s.shown() for s in listed]})


@route(bp, "/students/{sid}/unsubscribe/{cid}", ["DELETE"])
def unsubscribe(call: Call, sid: int, cid: int):
    services.subscriptions().unsubscribe(call.who, sid, cid)
    return respond({"message": "Unsubscribed", "student_id": sid, "class_id": cid})
