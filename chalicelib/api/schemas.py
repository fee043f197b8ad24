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


class Model(BaseModel):
    # Validators and schemas are built on first use, not at import: the delivery and
    # relay functions import the app too and never validate a request body.
    model_config = ConfigDict(defer_build=True)


class Strict(Model):
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


# -- responses --------------------------------------------------------------------


class ErrorDetail(Model):
    field: str
    message: str
    type: str | None = None


class ErrorBody(Model):
    """The one error shape of the API."""

    message: str
    code: str
    details: list[ErrorDetail] = []


class UserView(Model):
    user_id: int
    username: str
    role: Literal["student", "instructor", "registrar"]
    name: str
    email: str


class TokenResponse(Model):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class ServiceCheck(Model):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class HealthResponse(Model):
    status: Literal["ok", "degraded"]
    services: dict[str, ServiceCheck]


class ClassView(Model):
    class_id: int
    department: str
    course_code: str
    section: int
    name: str
    instructor_id: int
    max_enroll: int
    enrolled: int
    open_seats: int


class ClassListing(ClassView):
    waitlist_length: int


class ClassList(Model):
    classes: list[ClassListing]


class StudentClasses(Model):
    student_id: int
    classes: list[ClassView]


class Enrolled(Model):
    class_id: int
    student_id: int
    status: Literal["enrolled"]


class Waitlisted(Model):
    class_id: int
    student_id: int
    status: Literal["waitlisted"]
    waitlist_position: int


class PromotionView(Model):
    class_id: int
    student_id: int


class Dropped(Model):
    class_id: int
    student_id: int
    status: Literal["dropped"]
    promoted: list[PromotionView]


class Position(Model):
    class_id: int
    waitlist_position: int


class Waitlists(Model):
    Waitlists: list[Position]


class LeftWaitlist(Model):
    class_id: int
    student_id: int
    status: Literal["left_waitlist"]


class StudentRef(Model):
    student_id: int


class ClassStudents(Model):
    class_id: int
    students: list[StudentRef]


class WaitlistSeat(Model):
    student_id: int
    waitlist_position: int


class ClassWaitlist(Model):
    class_id: int
    waitlist: list[WaitlistSeat]


class ClassUpdated(ClassView):
    promoted: list[PromotionView]


class ClassDeleted(Model):
    class_id: int
    status: Literal["deleted"]


class FreezeResponse(Model):
    frozen: bool
    promoted: list[PromotionView]


class SubscriptionView(Model):
    student_id: int
    class_id: int
    email: str | None
    webhook_url: str | None
    events: list[str]
    created_at: str


class NewSubscription(SubscriptionView):
    secret: str | None = Field(default=None, description="Webhook signing secret; shown only in this response")


class Subscribed(Model):
    message: Literal["Subscription successful"]
    subscription: NewSubscription


class SubscriptionList(Model):
    message: Literal["Current subscriptions"]
    subscriptions: list[SubscriptionView]


class Unsubscribed(Model):
    message: Literal["Unsubscribed"]
    student_id: int
    class_id: int


class ChannelStatus(Model):
    status: Literal["pending", "delivered", "retrying", "failed"]
    attempts: int
    last_error: str | None


class NotificationView(Model):
    event_id: str
    type: str
    class_id: int
    occurred_at: str
    message: str | None
    published: bool
    channels: dict[str, ChannelStatus]


class NotificationHistory(Model):
    student_id: int
    notifications: list[NotificationView]


class SubscribeQuery(Model):
    """The original API's query-parameter form of a subscription."""

    email: str | None = None
    webhook_url: str | None = None
    events: str | None = Field(default=None, description="Comma-separated event types")


class UserDeleted(BaseModel):
    user_id: int
    status: Literal["deleted"]
