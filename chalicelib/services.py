"""Composition root: builds the domain services on their adapters, once, on first use.

Importing this module opens no connection and creates no client (Lambda cold start).
"""

from __future__ import annotations

from functools import lru_cache

from chalicelib.config import get_settings
from chalicelib.domain.auth import AuthService
from chalicelib.domain.enrollment import EnrollmentService, Limits
from chalicelib.domain.notifications import NotificationHistory
from chalicelib.domain.registrar import RegistrarService
from chalicelib.domain.subscriptions import SubscriptionService


@lru_cache(maxsize=1)
def enrollment() -> EnrollmentService:
    from chalicelib.adapters.dynamodb import DynamoCatalog, DynamoUsers
    from chalicelib.adapters.redis_client import connect
    from chalicelib.adapters.redis_subscriptions import RedisSubscriptions
    from chalicelib.adapters.redis_waitlist import RedisWaitlists

    settings = get_settings()
    redis = connect()
    return EnrollmentService(
        catalog=DynamoCatalog(settings),
        users=DynamoUsers(settings),
        waitlists=RedisWaitlists(redis),
        subscriptions=RedisSubscriptions(redis),
        limits=Limits(settings.waitlist_capacity, settings.max_waitlists_per_student),
    )


@lru_cache(maxsize=1)
def subscriptions() -> SubscriptionService:
    from chalicelib.adapters import webhook_target

    settings = get_settings()
    service = enrollment()
    return SubscriptionService(
        catalog=service.catalog,
        subscriptions=service.subscriptions,
        check_webhook=lambda url: webhook_target.check(url, settings.allow_private_webhook_targets),
    )


@lru_cache(maxsize=1)
def notifications() -> NotificationHistory:
    from chalicelib.adapters.outbox import DeliveryHistory

    return NotificationHistory(DeliveryHistory(get_settings()))


@lru_cache(maxsize=1)
def registrar() -> RegistrarService:
    return RegistrarService(enrollment())


@lru_cache(maxsize=1)
def auth() -> AuthService:
    from chalicelib.adapters.passwords import Argon2Hasher
    from chalicelib.adapters.redis_auth import RedisLoginThrottle, RedisRevocations
    from chalicelib.adapters.redis_client import connect
    from chalicelib.adapters.secrets import jwt_secret
    from chalicelib.adapters.tokens import JwtCodec

    settings = get_settings()
    redis = connect()
    return AuthService(
        users=enrollment().users,
        hasher=Argon2Hasher(),
        tokens=JwtCodec(jwt_secret(settings), settings.token_ttl_seconds),
        throttle=RedisLoginThrottle(
            redis, settings.login_window_seconds, settings.login_failures_per_user, settings.login_failures_per_client
        ),
        revocations=RedisRevocations(redis),
    )


def reset() -> None:
    """Forget every built service (tests that change configuration)."""
    for factory in (enrollment, registrar, auth, subscriptions, notifications):
        factory.cache_clear()
    get_settings.cache_clear()
