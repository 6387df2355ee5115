"""The browser edge's answers: Segment's error shape, the write key's 401, CORS for any origin."""

from __future__ import annotations

import json

from django.http import HttpResponse

from core.body import BadRequest
from core.edge import edge_bad_request, edge_error, edge_unauthorized, with_cors


def test_it_answers_errors_in_segments_shape() -> None:
    response = edge_error(404, "not_found", "No such thing.", field="endpoint")
    assert response.status_code == 404
    assert json.loads(response.content) == {
        "success": False,
        "code": "not_found",
        "message": "No such thing.",
        "field": "endpoint",
    }


def test_it_names_the_message_and_field_of_a_refused_batch() -> None:
    response = edge_bad_request(BadRequest("track needs an event name.", field="event", index=3))
    assert response.status_code == 400
    assert json.loads(response.content) == {
        "success": False,
        "code": "invalid",
        "message": "track needs an event name.",
        "index": 3,
        "field": "event",
    }


def test_it_asks_for_the_write_key_as_http_basic() -> None:
    response = edge_unauthorized("Unknown API key.")
    assert response.status_code == 401
    assert json.loads(response.content)["code"] == "unauthorized"
    assert response["WWW-Authenticate"] == 'Basic realm="ingest"'


def test_it_lets_any_origin_call_with_the_headers_sdks_send() -> None:
    response = with_cors(HttpResponse(status=204), methods="GET")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    allowed = response["Access-Control-Allow-Headers"]
    assert {"Authorization", "Content-Type", "Content-Encoding"} <= set(allowed.split(", "))
    assert with_cors(HttpResponse())["Access-Control-Allow-Methods"] == "POST, OPTIONS"
