"""Enrolling, dropping, waitlists and promotion: the rules of ARCHITECTURE.md in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain import access, events
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.events import Contact
from chalicelib.domain.model import (
    ClassSection,
    EnrollmentState,
    Identity,
    JoinOutcome,
    Promotion,
    Role,
    WaitlistEntry,
    WriteOutcome,
)
from chalicelib.domain.ports import Catalog, Subscriptions, Users, Waitlists


@dataclass(frozen=True)
class Limits:
    waitlist_capacity: int = 15
    waitlists_per_student: int = 3


@dataclass(frozen=True)
class EnrollResult:
    class_id: int
    student_id: int
    enrolled: bool
    waitlist_position: int | None = None


_JOIN_REFUSALS = {
    JoinOutcome.DUPLICATE: ("already_waitlisted", "Student is already on this class's waitlist"),
    JoinOutcome.WAITLIST_FULL: ("waitlist_full", "The class is full and its waitlist is full"),
    JoinOutcome.TOO_MANY_WAITLISTS: (
        "waitlist_limit",
        "Student is already on the maximum number of waitlists",
    ),
}


class EnrollmentService:
    def __init__(
        self,
        catalog: Catalog,
        users: Users,
        waitlists: Waitlists,
        subscriptions: Subscriptions,
        limits: Limits = Limits(),
    ) -> None:
        self.catalog = catalog
        self.users = users
        self.waitlists = waitlists
        self.subscriptions = subscriptions
        self.limits = limits

    # -- students -------------------------------------------------------------------

    def enroll(self, identity: Identity, student_id: int, class_id: int) -> EnrollResult:
        access.require_student_self(identity, student_id)
        section, student, enrollment, frozen = self.catalog.load(class_id, student_id)
        _require_student(student, student_id)
        section = _require_class(section, class_id)
        if enrollment is not None and enrollment.state is EnrollmentState.ENROLLED:
            raise Conflict("Student is already enrolled in this class", "already_enrolled")

        # A new student takes an open seat only when nobody is waiting for it.
        if section.open_seats > 0 and self.waitlists.length(class_id) == 0:
            outcome = self.catalog.enroll(class_id, student_id)
            if outcome is WriteOutcome.DONE:
                return EnrollResult(class_id, student_id, enrolled=True)
            if outcome is WriteOutcome.ALREADY_ENROLLED:
                raise Conflict("Student is already enrolled in this class", "already_enrolled")

        joined, position = self.waitlists.join(
            class_id, student_id, self.limits.waitlist_capacity, self.limits.waitlists_per_student
        )
        if joined is not JoinOutcome.JOINED:
            code, message = _JOIN_REFUSALS[joined]
            raise Conflict(message, code)

        # Read again: since the first read a seat may have opened (and whoever freed it found
        # nobody waiting yet), or another request of this student may have enrolled it.
        # Or the class may have been removed, its waitlist cleaned before this student joined.
        section, _, enrollment, frozen = self.catalog.load(class_id, student_id)
        if section is None:
            self._unlist(class_id, student_id)
            raise NotFound(f"Class {class_id} not found", "class_not_found")
        if enrollment is not None and enrollment.state is EnrollmentState.ENROLLED:
            self._unlist(class_id, student_id)
            if enrollment.from_waitlist:
                # A seat opened meanwhile and this very request's waitlist entry took it.
                return EnrollResult(class_id, student_id, enrolled=True)
            raise Conflict("Student is already enrolled in this class", "already_enrolled")
        if section.open_seats > 0 and not frozen:
            # Seats left open by an interrupted promotion are filled now, in waitlist order.
            promoted = self.settle(section, frozen)
            if any(p.student_id == student_id for p in promoted):
                return EnrollResult(class_id, student_id, enrolled=True)
            position = self.waitlists.position(class_id, student_id) or position
        return EnrollResult(class_id, student_id, enrolled=False, waitlist_position=position)

    def drop(self, identity: Identity, student_id: int, class_id: int) -> list[Promotion]:
        access.require_student_self(identity, student_id)
        return self._drop(identity, class_id, student_id, instructor_id=None)

    def instructor_drop(
        self, identity: Identity, instructor_id: int, class_id: int, student_id: int
    ) -> list[Promotion]:
        access.require_instructor_self(identity, instructor_id)
        return self._drop(identity, class_id, student_id, instructor_id=instructor_id)

    def _drop(self, identity: Identity, class_id: int, student_id: int, instructor_id: int | None) -> list[Promotion]:
        section, student, enrollment, frozen = self.catalog.load(class_id, student_id)
        section = _require_class(section, class_id)
        if instructor_id is not None:
            _require_teaches(identity, section, instructor_id)
        _require_student(student, student_id)
        if enrollment is not None and enrollment.state is EnrollmentState.ENROLLED:
            # An enrolled student can still be listed when a promotion was cut short before
            # its waitlist removal; unlisted first, a dropped student is never promoted back.
            self._unlist(class_id, student_id)
        outcome = self.catalog.drop(class_id, student_id)
        # Settle even when the drop finds nothing to do: a retried request completes a
        # promotion that an earlier attempt left half done.
        promoted = self.settle(_with_count(section, -1 if outcome is WriteOutcome.DONE else 0), frozen)
        if outcome is WriteOutcome.NOT_ENROLLED:
            raise Conflict("Student is not enrolled in this class", "not_enrolled")
        if outcome is WriteOutcome.CLASS_GONE:
            raise NotFound(f"Class {class_id} not found", "class_not_found")
        return promoted

    def enrolled_classes(self, identity: Identity, student_id: int) -> list[ClassSection]:
        access.require_student_self(identity, student_id)
        self._require_known_student(identity, student_id)
        return self.catalog.get_classes(self.catalog.enrolled_class_ids(student_id))

    def open_classes(self) -> list[tuple[ClassSection, int]]:
        """Classes with a free seat or room on the waitlist, with their waitlist length."""
        sections = self.catalog.list_classes()
        lengths = self.waitlists.lengths([s.class_id for s in sections])
        return [
            (s, lengths.get(s.class_id, 0))
            for s in sections
            if s.open_seats > 0 or lengths.get(s.class_id, 0) < self.limits.waitlist_capacity
        ]

    # -- waitlists ------------------------------------------------------------------

    def waitlist_positions(self, identity: Identity, student_id: int) -> list[WaitlistEntry]:
        access.require_student_self(identity, student_id)
        self._require_known_student(identity, student_id)
        return self.waitlists.positions(student_id)

    def waitlist_position(self, identity: Identity, student_id: int, class_id: int) -> WaitlistEntry:
        access.require_student_self(identity, student_id)
        self._require_known_student(identity, student_id)
        position = self.waitlists.position(class_id, student_id)
        if position is None:
            raise NotFound("Student is not on this class's waitlist", "not_waitlisted")
        return WaitlistEntry(class_id, student_id, position)

    def leave_waitlist(self, identity: Identity, student_id: int, class_id: int) -> None:
        access.require_student_self(identity, student_id)
        if not self._unlist(class_id, student_id):
            raise NotFound("Student is not on this class's waitlist", "not_waitlisted")

    def _unlist(self, class_id: int, student_id: int) -> bool:
        """Take the student off the class's waitlist, telling those who move up; False if not listed."""
        moved = self.waitlists.remove(class_id, student_id)
        if moved is None:
            return False
        self._announce_positions(class_id, moved)
        return True

    # -- instructors ----------------------------------------------------------------

    def class_students(
        self, identity: Identity, instructor_id: int, class_id: int, state: EnrollmentState
    ) -> list[int]:
        self.taught_class(identity, instructor_id, class_id)
        return self.catalog.students(class_id, state)

    def class_waitlist(self, identity: Identity, instructor_id: int, class_id: int) -> list[WaitlistEntry]:
        self.taught_class(identity, instructor_id, class_id)
        return self.waitlists.entries(class_id)

    def taught_class(self, identity: Identity, instructor_id: int, class_id: int) -> ClassSection:
        access.require_instructor_self(identity, instructor_id)
        section, _, _, _ = self.catalog.load(class_id)
        section = _require_class(section, class_id)
        _require_teaches(identity, section, instructor_id)
        return section

    # -- promotion ------------------------------------------------------------------

    def settle(self, section: ClassSection, frozen: bool) -> list[Promotion]:
        """Fill the open seats of a class from its waitlist, first come first served.

        Each promotion is one DynamoDB transaction (seat count, enrollment, outbox event)
        followed by one atomic Redis removal. A crash between the two leaves the student
        enrolled and still listed; the next settle finds the enrollment and only removes the
        entry, so a student is never in neither place and never enrolled twice.
        """
        if frozen:
            return []
        promoted: list[Promotion] = []
        # At least one attempt, so that a stale entry is cleaned even in a full class.
        budget = max(section.open_seats, 1)
        while budget > 0:
            student_id = self.waitlists.head(section.class_id)
            if student_id is None:
                break
            contact = self.subscriptions.contact(student_id, section.class_id, events.PROMOTED)
            event = events.promoted(student_id, section.class_id, section.name, section.section, contact or Contact())
            outcome = self.catalog.promote(section.class_id, student_id, event)
            if outcome in (WriteOutcome.CLASS_FULL, WriteOutcome.CLASS_GONE):
                break
            moved = self.waitlists.remove(section.class_id, student_id) or []
            if outcome is WriteOutcome.DONE:
                promoted.append(Promotion(section.class_id, student_id))
                budget -= 1
            self._announce_positions(section.class_id, moved, section)
        return promoted

    def _announce_positions(
        self, class_id: int, moved: list[WaitlistEntry], section: ClassSection | None = None
    ) -> None:
        """Queue a position-changed event for each moved student who asked for one."""
        wanted = [
            (entry, contact)
            for entry in moved
            if (contact := self.subscriptions.contact(entry.student_id, class_id, events.POSITION_CHANGED))
        ]
        if not wanted:
            return
        if section is None:
            section, _, _, _ = self.catalog.load(class_id)
            if section is None:
                return
        self.catalog.add_events(
            [
                events.position_changed(
                    entry.student_id, class_id, section.name, section.section, entry.position, contact
                )
                for entry, contact in wanted
            ]
        )

    # -- helpers --------------------------------------------------------------------

    def _require_known_student(self, identity: Identity, student_id: int) -> None:
        # A student's own token already proves the account; others need a lookup.
        if identity.role is Role.STUDENT and identity.user_id == student_id:
            return
        _require_student(self.users.get(student_id), student_id)


def _require_class(section: ClassSection | None, class_id: int) -> ClassSection:
    if section is None:
        raise NotFound(f"Class {class_id} not found", "class_not_found")
    return section


def _require_student(student, student_id: int) -> None:
    if student is None or student.role is not Role.STUDENT:
        raise NotFound(f"Student {student_id} not found", "student_not_found")


def _require_teaches(identity: Identity, section: ClassSection, instructor_id: int) -> None:
    if access.teaches(section, instructor_id):
        return
    message = f"Instructor {instructor_id} does not teach class {section.class_id}"
    if access.is_registrar(identity):
        raise NotFound(message, "class_not_taught")
    raise Forbidden(message, "class_not_taught")


def _with_count(section: ClassSection, delta: int) -> ClassSection:
    return replace(section, enrolled_count=section.enrolled_count + delta)
