"""Every Redis key the system uses (compatible with the original system's keys)."""

from __future__ import annotations

WAITLIST_SEQUENCE = "waitlist:sequence"


def class_waitlist(class_id: int) -> str:
    return f"class:{class_id}:waitlist"


def student_waitlists(student_id: int) -> str:
    return f"student:{student_id}:waitlists"


def subscriptions(student_id: int) -> str:
    return f"subscriptions:{student_id}"


def class_subscribers(class_id: int) -> str:
    return f"class:{class_id}:subscribers"


def delivery(event_id: str, channel: str) -> str:
    return f"delivery:{event_id}:{channel}"


REVOKED_USERS = "auth:revoked-users"


def login_failures(scope: str, who: str) -> str:
    """Failed logins in the current window, per username or per client address."""
    return f"auth:login-failures:{scope}:{who}"


def relay_checkpoint(stream_arn: str, shard_id: str) -> str:
    """The last outbox stream record the local relay finished, per shard."""
    return f"relay:checkpoint:{stream_arn}:{shard_id}"


# Patterns the bootstrap clears when it resets the sample data.
OWNED_PATTERNS = (
    "class:*:waitlist",
    "class:*:subscribers",
    "student:*:waitlists",
    "subscriptions:*",
    "delivery:*",
    "auth:*",
    "relay:*",
    WAITLIST_SEQUENCE,
)
