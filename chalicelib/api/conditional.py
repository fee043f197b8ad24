"""Conditional GET (RFC 9110): strong entity tags from the body bytes, If-None-Match, 304.

The entity tag is a hash of the exact bytes sent, so it changes exactly when the body
changes, whatever changed underneath.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from chalice import Response

from chalicelib.api.http import dump, respond

# Sent on the 200 and the 304 alike (RFC 9110 §15.4.5): the answer is one student's,
# and must be revalidated before each use.
CACHE_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text (§8.8.3)
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = " \t"


@dataclass(frozen=True)
class EntityTag:
    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.opaque}"'


@dataclass(frozen=True)
class IfNoneMatch:
    """A well-formed If-None-Match field: `*`, or one or more entity tags."""

    any: bool = False
    tags: tuple[EntityTag, ...] = ()

    def matches(self, current: EntityTag) -> bool:
        """Weak comparison (§8.8.3.2), as If-None-Match requires (§13.1.2)."""
        return self.any or any(tag.opaque == current.opaque for tag in self.tags)


def parse_if_none_match(field: str | None) -> IfNoneMatch | None:
    """Parse `If-None-Match = "*" / #entity-tag`; None when absent or malformed.

    A malformed field is ignored rather than refused: answering in full is always a
    correct reply to a GET. Empty list elements are allowed, as §5.6.1 requires.
    """
    if field is None:
        return None
    value = field.strip(_OWS)
    if value == "*":
        return IfNoneMatch(any=True)
    tags: list[EntityTag] = []
    position, end = 0, len(value)
    while position < end:
        if value[position] in _OWS or value[position] == ",":
            position += 1
            continue
        found = _ENTITY_TAG.match(value, position)
        if found is None:
            return None
        tags.append(EntityTag(found.group(2), weak=found.group(1) is not None))
        position = found.end()
        # After a tag only whitespace and then a comma or the end may follow.
        while position < end and value[position] in _OWS:
            position += 1
        if position < end and value[position] != ",":
            return None
    return IfNoneMatch(tags=tuple(tags)) if tags else None


def not_modified(field: str | None, current: EntityTag) -> bool:
    """True when the If-None-Match field (a header value) matches `current`."""
    condition = parse_if_none_match(field)
    return condition is not None and condition.matches(current)


def strong_etag(body: bytes) -> EntityTag:
    return EntityTag(hashlib.blake2b(body, digest_size=16).hexdigest())


def serialize(body: Any) -> str:
    """Deterministic JSON: the same data always gives the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def conditional_json(if_none_match: str | None, body: Any) -> Response:
    """A GET answer with a strong ETag: 304 with no content when the request's
    If-None-Match field matches, else 200 with the very bytes the tag was computed from.
    `body` is JSON data or a response model."""
    text = serialize(dump(body))
    etag = strong_etag(text.encode())
    headers = {"ETag": str(etag), **CACHE_HEADERS}
    if not_modified(if_none_match, etag):
        # An empty string, not None: None would be sent as `null` (ARCHITECTURE.md).
        # No Content-Type: a 304 carries no content (§15.4.5).
        return Response(body="", status_code=304, headers=headers)
    return respond(text, headers=headers)
