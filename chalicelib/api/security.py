"""The Chalice authorizer: verifies the bearer token and hands the identity to the routes.

A missing, expired or forged token is not denied here but passed on as an
`auth_error`, so that the routes answer 401 in the API's one error shape, locally
and behind API Gateway alike.
"""

from __future__ import annotations

from chalice import AuthResponse, Blueprint

from chalicelib import services
from chalicelib.domain.auth import REVOCATION_DELAY_SECONDS
from chalicelib.domain.errors import Unauthorized

bp = Blueprint(__name__)


# API Gateway caches an answer per token for this long (300 s when unset), so keep it as
# short as the revocation list's own refresh.
@bp.authorizer(ttl_seconds=REVOCATION_DELAY_SECONDS)
def jwt_auth(auth_request):
    scheme, _, token = (auth_request.token or "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", "invalid_token")
        identity = services.auth().identify(token.strip())
    except Unauthorized as error:
        return AuthResponse(
            routes=["*"],
            principal_id="anonymous",
            context={"auth_error": error.code, "auth_message": error.message},
        )
    return AuthResponse(
        routes=["*"],
        principal_id=str(identity.user_id),
        context={
            "user_id": str(identity.user_id),
            "role": identity.role.value,
            "username": identity.username,
        },
    )
