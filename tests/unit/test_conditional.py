"""If-None-Match parsing and matching (RFC 9110 §8.8.3, §13.1.2), and the 200/304 responses."""

from __future__ import annotations

import json

import pytest

from chalicelib.api import schemas
from chalicelib.api.conditional import (
    CACHE_HEADERS,
    EntityTag,
    IfNoneMatch,
    conditional_json,
    not_modified,
    parse_if_none_match,
    serialize,
    strong_etag,
)

CURRENT = EntityTag("abc123")


@pytest.mark.parametrize(
    ("field", "matches"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param('"abc123"', True, id="single tag"),
        pytest.param('"other"', False, id="single other tag"),
        pytest.param('"x", "abc123", "y"', True, id="list, match in the middle"),
        pytest.param('"x","y"', False, id="list without the tag"),
        pytest.param('W/"abc123"', True, id="weak tag, weak comparison"),
        pytest.param('"x", W/"abc123"', True, id="weak tag in a list"),
        pytest.param("*", True, id="star"),
        pytest.param("  *\t", True, id="star with whitespace"),
        pytest.param("abc123", False, id="unquoted garbage"),
        pytest.param("", False, id="empty header"),
        pytest.param("   ", False, id="blank header"),
        pytest.param(" , ,", False, id="only empty elements"),
        pytest.param(', "abc123" ,, ', True, id="empty list elements are ignored"),
        pytest.param('\t"x" ,\t"abc123"\t', True, id="tabs as whitespace"),
        pytest.param('"abc123', False, id="unterminated quote"),
        pytest.param('"abc123" "x"', False, id="missing comma"),
        pytest.param('"abc123", garbage', False, id="garbage after a matching tag"),
        pytest.param('w/"abc123"', False, id="lowercase weak prefix"),
        pytest.param('W/ "abc123"', False, id="space after weak prefix"),
        pytest.param('"abc 123"', False, id="space inside a tag"),
        pytest.param('*, "abc123"', False, id="star inside a list"),
        pytest.param('"ABC123"', False, id="comparison is case-sensitive"),
        pytest.param('"abc123\u20ac"', False, id="character outside obs-text"),
    ],
)
def test_if_none_match_table(field, matches):
    assert not_modified(field, CURRENT) is matches


def test_parse_keeps_order_and_weakness():
    assert parse_if_none_match('W/"a", "b",W/""') == IfNoneMatch(
        tags=(EntityTag("a", weak=True), EntityTag("b"), EntityTag("", weak=True))
    )


def test_parse_star():
    assert parse_if_none_match("*") == IfNoneMatch(any=True)


def test_obs_text_is_a_valid_tag_character():
    assert not_modified('"caf\xe9"', EntityTag("caf\xe9"))


def test_weak_comparison_ignores_weakness_on_both_sides():
    assert IfNoneMatch(tags=(EntityTag("v"),)).matches(EntityTag("v", weak=True))


def test_entity_tag_text():
    assert str(EntityTag("v1")) == '"v1"'
    assert str(EntityTag("v1", weak=True)) == 'W/"v1"'


def test_strong_etag_is_a_valid_strong_tag_that_follows_the_bytes():
    tag = strong_etag(b'{"a":1}')
    assert not tag.weak
    assert parse_if_none_match(str(tag)) == IfNoneMatch(tags=(tag,))
    assert strong_etag(b'{"a":1}') == tag
    assert strong_etag(b'{"a":2}') != tag


def test_serialization_is_deterministic():
    assert serialize({"b": [1, {"y": 2, "x": 1}], "a": "\u00e9"}) == serialize(
        {"a": "\u00e9", "b": [1, {"x": 1, "y": 2}]}
    )
    assert serialize({"class_id": 8, "waitlist_position": 1}) == '{"class_id":8,"waitlist_position":1}'


BODY = {"Waitlists": [{"class_id": 8, "waitlist_position": 1}]}


def test_200_sends_the_hashed_bytes_and_the_cache_headers():
    response = conditional_json(None, BODY)
    assert response.status_code == 200
    assert json.loads(response.body) == BODY
    assert response.headers["ETag"] == str(strong_etag(response.body.encode()))
    assert response.headers["Content-Type"] == "application/json"
    assert {k: response.headers[k] for k in CACHE_HEADERS} == {
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization",
    }


@pytest.mark.parametrize("field", ["{etag}", '"x", {etag}', "W/{etag}", "*"])
def test_304_is_empty_with_the_same_validators(field):
    full = conditional_json(None, BODY)
    response = conditional_json(field.format(etag=full.headers["ETag"]), BODY)
    assert response.status_code == 304
    assert response.body == ""
    assert "Content-Type" not in response.headers
    assert response.headers == {k: full.headers[k] for k in ("ETag", *CACHE_HEADERS)}
    # What Chalice hands to API Gateway / chalice local: an empty body, not `null`.
    assert response.to_dict()["body"] == ""


def test_a_different_body_does_not_match_the_old_tag():
    old = conditional_json(None, BODY).headers["ETag"]
    response = conditional_json(old, {"Waitlists": []})
    assert response.status_code == 200
    assert response.headers["ETag"] != old


def test_a_response_model_gives_the_same_bytes_and_tag_as_its_data():
    model = schemas.Waitlists(Waitlists=[schemas.Position(class_id=8, waitlist_position=1)])
    from_model, from_data = conditional_json(None, model), conditional_json(None, BODY)
    assert from_model.body == from_data.body
    assert from_model.headers["ETag"] == from_data.headers["ETag"]
