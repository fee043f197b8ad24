"""Subscriptions to be told of promotions: by email and/or webhook."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import services
from chalicelib.api import schemas, views
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)


def _request(call: Call) -> schemas.SubscribeRequest:
    """The original API took query parameters; a JSON body works too (it wins per field)."""
    data = dict(call.query())
    if "events" in data:
        data["events"] = [name.strip() for name in data["events"].split(",") if name.strip()]
    data.update(call.json(required=False))
    return call.body(schemas.SubscribeRequest, data)


@route(
    bp,
    "/students/{sid}/subscribe/{cid}",
    ["POST"],
    body=schemas.SubscribeRequest,
    query=schemas.SubscribeQuery,
    responses={201: schemas.Subscribed},
)
def subscribe(call: Call, sid: int, cid: int):
    """Subscribe to be told by email and/or webhook when enrolled from the waitlist."""
    body = _request(call)
    created = services.subscriptions().subscribe(call.who, sid, cid, body.email, body.webhook_url, body.events)
    subscribed = schemas.Subscribed(
        message="Subscription successful", subscription=views.subscription(created, with_secret=True)
    )
    return respond(subscribed, 201)


@route(bp, "/students/{sid}/subscriptions", ["GET"], responses={200: schemas.SubscriptionList})
def list_subscriptions(call: Call, sid: int):
    """A student's subscriptions (secrets are never shown again)."""
    listed = services.subscriptions().list(call.who, sid)
    return respond(
        schemas.SubscriptionList(
            message="Current subscriptions", subscriptions=[views.listed_subscription(s) for s in listed]
        )
    )


@route(bp, "/students/{sid}/unsubscribe/{cid}", ["DELETE"], responses={200: schemas.Unsubscribed})
def unsubscribe(call: Call, sid: int, cid: int):
    """Stop notifications for a class."""
    services.subscriptions().unsubscribe(call.who, sid, cid)
    return respond(schemas.Unsubscribed(message="Unsubscribed", student_id=sid, class_id=cid))
