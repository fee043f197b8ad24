"""The one configuration object: every setting comes from the environment.

Stage values live in `.chalice/config.json`; endpoints and local secrets come from the
process environment (`infra/local.env` for `make run`, the test harness for `make test`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Seconds before each retry, in the spirit of Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_DELAYS = "5,300,1800,7200,18000,36000,36000"
# `chalice package` needs a literal stream ARN; the deploy template replaces it with the
# outbox table's real stream (infra/ templates).
PLACEHOLDER_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/titan-outbox/stream/1970-01-01T00:00:00.000"


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    stage: str
    table_prefix: str
    redis_url: str
    amqp_url: str
    jwt_secret: str
    jwt_secret_parameter: str
    token_ttl_seconds: int
    allow_private_webhook_targets: bool
    max_body_bytes: int
    waitlist_capacity: int
    max_waitlists_per_student: int
    retry_delays: tuple[float, ...]
    max_attempts: int
    relay_batch_size: int
    outbox_stream_arn: str
    smtp_host: str
    smtp_port: int
    smtp_from: str
    login_window_seconds: int
    login_failures_per_user: int
    login_failures_per_client: int

    @property
    def classes_table(self) -> str:
        return f"{self.table_prefix}-classes"

    @property
    def enrollments_table(self) -> str:
        return f"{self.table_prefix}-enrollments"

    @property
    def users_table(self) -> str:
        return f"{self.table_prefix}-users"

    @property
    def settings_table(self) -> str:
        return f"{self.table_prefix}-settings"

    @property
    def outbox_table(self) -> str:
        return f"{self.table_prefix}-outbox"

    @property
    def deliveries_table(self) -> str:
        return f"{self.table_prefix}-deliveries"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        stage = env.get("STAGE", "local")
        return cls(
            stage=stage,
            table_prefix=env.get("TABLE_PREFIX", f"titan-{stage}"),
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            amqp_url=env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            jwt_secret=env.get("JWT_SECRET", ""),
            jwt_secret_parameter=env.get("JWT_SECRET_PARAMETER", ""),
            token_ttl_seconds=int(env.get("TOKEN_TTL_SECONDS", "3600")),
            allow_private_webhook_targets=_flag(env.get("ALLOW_PRIVATE_WEBHOOK_TARGETS", "false")),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(64 * 1024))),
            waitlist_capacity=int(env.get("WAITLIST_CAPACITY", "15")),
            max_waitlists_per_student=int(env.get("MAX_WAITLISTS_PER_STUDENT", "3")),
            retry_delays=tuple(float(d) for d in env.get("RETRY_DELAYS", DEFAULT_RETRY_DELAYS).split(",") if d.strip()),
            max_attempts=int(env.get("MAX_ATTEMPTS", "8")),
            relay_batch_size=int(env.get("RELAY_BATCH_SIZE", "500")),
            outbox_stream_arn=env.get("OUTBOX_STREAM_ARN", PLACEHOLDER_STREAM_ARN),
            smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=int(env.get("SMTP_PORT", "8025")),
            login_window_seconds=int(env.get("LOGIN_WINDOW_SECONDS", "300")),
            login_failures_per_user=int(env.get("LOGIN_FAILURES_PER_USER", "5")),
            login_failures_per_client=int(env.get("LOGIN_FAILURES_PER_CLIENT", "30")),
            smtp_from=env.get("SMTP_FROM", "Titan Enrollment <notifications@titan-enrollment.example>"),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
