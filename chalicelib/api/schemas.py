"""Request bodies, declared once: validation and (later) the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{3,32}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\r\n]*$")]
PositiveId = Annotated[StrictInt, Field(ge=1, le=10**15)]
Capacity = Annotated[StrictInt, Field(ge=0, le=1000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterRequest(Strict):
    username: Username
    password: Password
    name: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\r\n]*$")] = ""
    email: EmailStr | None = None


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class CreateUserRequest(RegisterRequest):
    role: Literal["student", "instructor", "registrar"]


class CreateClassRequest(Strict):
    class_id: PositiveId | None = None
    department: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,6}$")]
    course_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,8}$")]
    section: Annotated[StrictInt, Field(ge=1, le=99)]
    name: Name
    instructor_id: PositiveId
    max_enroll: Capacity


class UpdateClassRequest(Strict):
    max_enroll: Capacity | None = None
    name: Name | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateClassRequest:
        if self.max_enroll is None and self.name is None:
            raise ValueError("give max_enroll and/or name")
        return self


class FreezeRequest(Strict):
    frozen: StrictBool


class SubscribeRequest(Strict):
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    webhook_url: Annotated[str, StringConstraints(max_length=4096)] | None = None
    events: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=8)] | None = None
