"""Titan Enrollment: the Chalice app. It wires blueprints, the authorizer, the
error-shape middleware and the Lambda handlers; every rule lives in chalicelib."""

import logging

from chalice import Chalice

from chalicelib.api import (
    auth,
    docs,
    health,
    instructors,
    notifications,
    registrar,
    security,
    students,
    subscriptions,
    waitlist,
)
from chalicelib.api.http import error_shape_middleware
from chalicelib.config import get_settings

app = Chalice(app_name="titan-enrollment")
# Connection chatter of the AMQP client is not worth a log line per request.
logging.getLogger("pika").setLevel(logging.WARNING)
app.register_middleware(error_shape_middleware, "http")
app.register_blueprint(security.bp)
for module in (auth, health, students, waitlist, instructors, registrar, subscriptions, notifications, docs):
    app.register_blueprint(module.bp)


@app.on_dynamodb_record(
    stream_arn=get_settings().outbox_stream_arn, batch_size=500, maximum_batching_window_in_seconds=1
)
def relay_outbox(event):
    from chalicelib.handlers import relay  # each function imports only its own handler

    return relay.on_stream(event).summary()


@app.lambda_function(name="deliver_email")
def deliver_email(event, context):
    from chalicelib.handlers import email

    email.handle(event)


@app.lambda_function(name="deliver_webhook")
def deliver_webhook(event, context):
    from chalicelib.handlers import webhook

    webhook.handle(event)
