"""Titan Enrollment: the Chalice app. It wires blueprints, the authorizer, the
error-shape middleware and the Lambda handlers; every rule lives in chalicelib."""

from chalice import Chalice

from chalicelib.api import auth, health, instructors, registrar, security, students, subscriptions, waitlist
from chalicelib.api.http import error_shape_middleware
from chalicelib.config import get_settings
from chalicelib.handlers import relay

app = Chalice(app_name="titan-enrollment")
app.register_middleware(error_shape_middleware, "http")
app.register_blueprint(security.bp)
for module in (auth, health, students, waitlist, instructors, registrar, subscriptions):
    app.register_blueprint(module.bp)


@app.on_dynamodb_record(
    stream_arn=get_settings().outbox_stream_arn, batch_size=500, maximum_batching_window_in_seconds=1
)
def relay_outbox(event):
    relay.on_stream(event)
