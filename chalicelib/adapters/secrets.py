"""Secrets: from the environment locally, from SSM Parameter Store (SecureString) on AWS."""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.config import Settings


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if not settings.jwt_secret_parameter:
        raise RuntimeError("Set JWT_SECRET or JWT_SECRET_PARAMETER")
    response = aws.client("ssm").get_parameter(Name=settings.jwt_secret_parameter, WithDecryption=True)
    return response["Parameter"]["Value"]
