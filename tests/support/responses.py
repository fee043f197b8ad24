"""Reading the API's answers in tests: the body of a success, the code of an error."""

from __future__ import annotations

import httpx


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def error_code(response: httpx.Response, status: int) -> str:
    """The `code` of an error answer, after checking the API's one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code", "details"}, body
    assert body["message"]
    return body["code"]


def enrolled(api, class_id: int) -> list[int]:
    """The students enrolled in a sample class (instructor 500 + class id), as the registrar sees them."""
    body = ok(api("registrar551", "GET", f"/instructors/{500 + class_id}/classes/{class_id}/enrollment"))
    return [entry["student_id"] for entry in body["students"]]


def waitlist(api, class_id: int) -> list[dict]:
    """A sample class's waitlist entries in order, as the registrar sees them."""
    return ok(api("registrar551", "GET", f"/instructors/{500 + class_id}/classes/{class_id}/waitlist"))["waitlist"]
