"""Timestamps as the API and the events show them: UTC, ISO 8601, with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso(precise: bool = False) -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ")
