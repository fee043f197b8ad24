"""Who may act on what. Every role check of the API is one of these functions."""

from __future__ import annotations

from chalicelib.domain.errors import Forbidden
from chalicelib.domain.model import ClassSection, Identity, Role


def is_registrar(identity: Identity) -> bool:
    return identity.role is Role.REGISTRAR


def require_registrar(identity: Identity) -> None:
    if not is_registrar(identity):
        raise Forbidden("Only the registrar may do this")


def require_student_self(identity: Identity, student_id: int) -> None:
    """A student acts only as themself; the registrar acts for anyone."""
    if is_registrar(identity):
        return
    if identity.role is not Role.STUDENT or identity.user_id != student_id:
        raise Forbidden("You may act only on your own behalf")


def require_instructor_self(identity: Identity, instructor_id: int) -> None:
    if is_registrar(identity):
        return
    if identity.role is not Role.INSTRUCTOR or identity.user_id != instructor_id:
        raise Forbidden("You may act only on your own behalf")


def teaches(section: ClassSection, instructor_id: int) -> bool:
    return section.instructor_id == instructor_id
