"""The deterministic sample data that reproduces the original demonstration.

Class 4 is full (students 31-60, so 55 and 56 among them) with waitlist 79, 80, 1;
student 1 waits for class 8 (1st), class 4 (3rd) and class 13 (6th); class 10 is full
with a full waitlist. Students are 1-500, instructors 501-550, registrars 551-600.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.model import ClassSection, Role, User

STUDENTS = range(1, 501)
INSTRUCTORS = range(501, 551)
REGISTRARS = range(551, 601)
DEMO_PASSWORD = "titan"


@dataclass(frozen=True)
class Plan:
    department: str
    course_code: str
    section: int
    name: str
    max_enroll: int
    full: bool


# Class id -> what it is. Instructor of class N is 500 + N (so class 4 has instructor 504).
CLASSES: dict[int, Plan] = {
    1: Plan("CPSC", "121", 1, "Object-Oriented Programming", 30, False),
    2: Plan("CPSC", "131", 1, "Data Structures", 30, False),
    3: Plan("CPSC", "223P", 1, "Python Programming", 25, False),
    4: Plan("CPSC", "120", 1, "Introduction to Computer Science", 30, True),
    5: Plan("MATH", "150A", 1, "Calculus I", 35, False),
    6: Plan("MATH", "170A", 1, "Mathematical Structures I", 30, False),
    7: Plan("ENGL", "101", 1, "Beginning College Writing", 25, False),
    8: Plan("CPSC", "240", 1, "Computer Organization and Assembly Language", 25, True),
    9: Plan("PHYS", "225", 1, "Fundamental Physics: Mechanics", 30, False),
    10: Plan("CPSC", "315", 1, "Professional Ethics in Computing", 20, True),
    11: Plan("BIOL", "101", 1, "Elements of Biology", 40, False),
    12: Plan("HIST", "110A", 1, "World Civilizations to the 16th Century", 35, False),
    13: Plan("CPSC", "335", 1, "Algorithm Engineering", 25, True),
    14: Plan("CPSC", "120", 2, "Introduction to Computer Science", 30, False),
    15: Plan("MATH", "250A", 1, "Calculus III", 30, False),
    16: Plan("CPSC", "362", 1, "Foundations of Software Engineering", 20, True),
}

# Waitlists in the order the students joined them (class 8 first, so student 1's list
# reads 8, 4, 13).
WAITLISTS: list[tuple[int, list[int]]] = [
    (8, [1, 81, 82]),
    (4, [79, 80, 1]),
    (13, [83, 84, 85, 86, 87, 1]),
    (10, list(range(200, 215))),
    (16, [220, 221, 222, 223]),
]

OPEN_SEATS_LEFT = 5


def user(user_id: int) -> User:
    role = Role.STUDENT if user_id in STUDENTS else Role.INSTRUCTOR if user_id in INSTRUCTORS else Role.REGISTRAR
    return User(
        user_id=user_id,
        username=f"{role.value}{user_id}",
        role=role,
        name=f"{role.value.title()} {user_id}",
        email=f"{role.value}{user_id}@example.edu",
    )


def users() -> list[User]:
    return [user(i) for i in (*STUDENTS, *INSTRUCTORS, *REGISTRARS)]


def enrolled(class_id: int) -> list[int]:
    """Who is enrolled: class 4 holds 31-60; the others a block of students from 240 up,
    who wait on no list."""
    plan = CLASSES[class_id]
    count = plan.max_enroll if plan.full else plan.max_enroll - OPEN_SEATS_LEFT
    if class_id == 4:
        return list(range(31, 31 + count))
    start = 240 + (class_id * 17) % 200
    return list(range(start, start + count))


def sections() -> list[ClassSection]:
    return [
        ClassSection(
            class_id=class_id,
            department=plan.department,
            course_code=plan.course_code,
            section=plan.section,
            name=plan.name,
            instructor_id=500 + class_id,
            max_enroll=plan.max_enroll,
            enrolled_count=len(enrolled(class_id)),
        )
        for class_id, plan in CLASSES.items()
    ]
