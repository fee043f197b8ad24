"""Domain errors: each names a kind of failure; the API maps kinds to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base class. `code` is a stable machine-readable name shown to clients."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    code = "unauthorized"


class InvalidInput(DomainError):
    code = "invalid_input"

    def __init__(self, message: str, code: str | None = None, details: list | None = None) -> None:
        super().__init__(message, code)
        self.details = details or []


class MissingInput(DomainError):
    """Something required was not given at all."""

    code = "missing_input"


class TooManyAttempts(DomainError):
    """Refused for a while, to slow down guessing."""

    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
