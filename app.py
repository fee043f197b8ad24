"""Titan Enrollment: the Chalice app. It wires blueprints, the authorizer and the
error-shape middleware; every rule lives in chalicelib."""

from chalice import Chalice

from chalicelib.api import auth, health, instructors, registrar, security, students, waitlist
from chalicelib.api.http import error_shape_middleware

app = Chalice(app_name="titan-enrollment")
app.register_middleware(error_shape_middleware, "http")
app.register_blueprint(security.bp)
for module in (auth, health, students, waitlist, instructors, registrar):
    app.register_blueprint(module.bp)
