"""What the registrar does to classes and to automatic enrollment."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain import access
from chalicelib.domain.enrollment import EnrollmentService
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.model import ClassSection, Identity, Promotion, Role, WriteOutcome


@dataclass(frozen=True)
class NewClass:
    department: str
    course_code: str
    section: int
    name: str
    instructor_id: int
    max_enroll: int
    class_id: int | None = None


class RegistrarService:
    def __init__(self, enrollment: EnrollmentService) -> None:
        self.enrollment = enrollment
        self.catalog = enrollment.catalog
        self.users = enrollment.users
        self.waitlists = enrollment.waitlists
        self.subscriptions = enrollment.subscriptions

    def create_class(self, identity: Identity, new: NewClass) -> ClassSection:
        access.require_registrar(identity)
        self._require_instructor(new.instructor_id)
        class_id = new.class_id if new.class_id is not None else self.catalog.next_id("class", floor=1000)
        section = ClassSection(
            class_id=class_id,
            department=new.department,
            course_code=new.course_code,
            section=new.section,
            name=new.name,
            instructor_id=new.instructor_id,
            max_enroll=new.max_enroll,
        )
        if not self.catalog.create_class(section):
            raise Conflict(f"Class {class_id} already exists", "class_exists")
        return section

    def update_class(
        self, identity: Identity, class_id: int, max_enroll: int | None, name: str | None
    ) -> tuple[ClassSection, list[Promotion]]:
        access.require_registrar(identity)
        outcome, section = self.catalog.update_class(class_id, max_enroll, name)
        if outcome is WriteOutcome.CLASS_GONE or section is None:
            raise NotFound(f"Class {class_id} not found", "class_not_found")
        if outcome is WriteOutcome.CLASS_FULL:
            raise Conflict(
                f"Capacity cannot go below the {section.enrolled_count} students enrolled",
                "capacity_below_enrolled",
            )
        promoted: list[Promotion] = []
        # Settled even when the class is full, as long as someone waits: a retried raise
        # must clear the entry of a student whose promotion was cut short after the enrollment.
        if max_enroll is not None and self.waitlists.length(class_id) > 0:
            _, _, _, frozen = self.catalog.load(class_id)
            promoted = self.enrollment.settle(section, frozen)
        # The class as it stands after the promotions, not as the capacity update left it.
        return replace(section, enrolled_count=section.enrolled_count + len(promoted)), promoted

    def set_instructor(self, identity: Identity, class_id: int, instructor_id: int) -> ClassSection:
        access.require_registrar(identity)
        self._require_instructor(instructor_id)
        section = self.catalog.set_instructor(class_id, instructor_id)
        if section is None:
            raise NotFound(f"Class {class_id} not found", "class_not_found")
        return section

    def delete_class(self, identity: Identity, class_id: int) -> None:
        access.require_registrar(identity)
        existed = self.catalog.delete_class(class_id)
        # Cleaned even when the class is already gone: a retry finishes a removal that
        # stopped between the table and Redis.
        self.waitlists.delete_class(class_id)
        self.subscriptions.delete_class(class_id)
        if not existed:
            raise NotFound(f"Class {class_id} not found", "class_not_found")

    def set_frozen(self, identity: Identity, frozen: bool) -> list[Promotion]:
        """Freeze or unfreeze automatic enrollment; unfreezing fills open seats class by class."""
        access.require_registrar(identity)
        self.catalog.set_frozen(frozen)
        if frozen:
            return []
        promoted: list[Promotion] = []
        sections = sorted(self.catalog.list_classes(), key=lambda s: s.class_id)
        lengths = self.waitlists.lengths([s.class_id for s in sections])
        for section in sections:
            # Full classes with a waitlist too, for the reason given in update_class.
            if lengths.get(section.class_id, 0) > 0:
                promoted.extend(self.enrollment.settle(section, frozen=False))
        return promoted

    def _require_instructor(self, instructor_id: int) -> None:
        user = self.users.get(instructor_id)
        if user is None or user.role is not Role.INSTRUCTOR:
            raise NotFound(f"Instructor {instructor_id} not found", "instructor_not_found")
