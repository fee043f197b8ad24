"""Reading a student's notification history."""

from __future__ import annotations

import json
from typing import Protocol

from chalicelib.domain import access


class HistoryStore(Protocol):
    def of_student(self, student_id: int, limit: int = 100) -> list[dict]: ...


class NotificationHistory:
    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def history(self, identity, student_id: int) -> list[dict]:
        """Newest first; each channel with status, attempts and last error."""
        access.require_student_self(identity, student_id)
        shown = []
        for item in self.store.of_student(student_id):
            body = json.loads(item.get("body") or "{}")
            shown.append(
                {
                    "event_id": item["event_id"],
                    "type": item.get("type"),
                    "class_id": int(item["class_id"]),
                    "occurred_at": item.get("occurred_at"),
                    "message": body.get("message"),
                    "published": "unpublished" not in item,
                    "channels": {
                        channel: {
                            "status": state.get("status"),
                            "attempts": int(state.get("attempts", 0)),
                            "last_error": state.get("last_error"),
                        }
                        for channel, state in sorted((item.get("deliveries") or {}).items())
                    },
                }
            )
        return shown
