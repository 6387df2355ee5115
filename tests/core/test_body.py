"""Request bodies: JSON within a limit, gzip decoded without letting a bomb through, no NUL."""

from __future__ import annotations

import gzip
import json

import pytest
from django.test import RequestFactory

from core.body import BadRequest, body_bytes, body_json, has_nul


def post(raw: bytes, **headers: str):  # type: ignore[no-untyped-def]
    return RequestFactory().post(
        "/v1/track", data=raw, content_type="application/json", headers=headers
    )


def test_it_returns_the_parsed_body_and_its_size() -> None:
    raw = json.dumps({"event": "Viewed", "n": [1, 2]}).encode()
    assert body_json(post(raw), limit=100) == ({"event": "Viewed", "n": [1, 2]}, len(raw))


def test_it_takes_a_body_exactly_at_the_limit_and_refuses_one_byte_more() -> None:
    raw = json.dumps({"pad": "x" * 50}).encode()
    assert body_bytes(post(raw), limit=len(raw)) == raw
    with pytest.raises(BadRequest, match=f"^The body is larger than {len(raw) - 1} bytes.$"):
        body_bytes(post(raw), limit=len(raw) - 1)


def test_it_gunzips_a_body_that_says_so_and_counts_its_size_after_decompression() -> None:
    raw = json.dumps({"pad": "x" * 1000}).encode()
    payload, size = body_json(post(gzip.compress(raw), **{"Content-Encoding": "GZIP"}), limit=2000)
    assert payload == {"pad": "x" * 1000}
    assert size == len(raw)


def test_it_applies_the_limit_to_the_decompressed_size_of_a_gzip_bomb() -> None:
    bomb = gzip.compress(b"[" + b"0," * 5_000_000 + b"0]")  # 10 MB of JSON in ~10 KB
    assert len(bomb) < 50_000
    with pytest.raises(BadRequest, match=r"^The body is larger than 1000 bytes\.$"):
        body_json(post(bomb, **{"Content-Encoding": "gzip"}), limit=1000)


def test_it_refuses_a_body_that_claims_gzip_but_is_not() -> None:
    with pytest.raises(BadRequest, match=r"^The body is not valid gzip\.$"):
        body_json(post(b'{"a": 1}', **{"Content-Encoding": "gzip"}), limit=1000)


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": NaN}', b'{"a": "\xff"}', b"{'a': 1}"])
def test_it_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^The body is not valid JSON: "):
        body_json(post(raw), limit=1000)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"note": "a\\u0000b"}',
        b'{"a\\u0000": 1}',
        b'{"deep": [{"x": ["ok", "\\u0000"]}]}',
    ],
)
def test_it_refuses_the_nul_character_in_values_keys_and_nested_text(raw: bytes) -> None:
    with pytest.raises(BadRequest, match=r"contains the NUL character \(\\u0000\)\.$"):
        body_json(post(raw), limit=1000)


def test_it_keeps_text_that_only_spells_the_escape() -> None:
    # An escaped backslash followed by "u0000" is six ordinary characters, not NUL.
    payload, _ = body_json(post(b'{"note": "\\\\u0000"}'), limit=1000)
    assert payload == {"note": "\\u0000"}


def test_it_finds_nul_anywhere_in_a_parsed_value() -> None:
    assert has_nul({"a": [1, {"b": "x\x00"}]})
    assert has_nul({"\x00": 1})
    assert not has_nul({"a": [1, 2.5, None, True, {"b": "x"}]})


def test_it_describes_a_refusal_in_the_edges_shape() -> None:
    assert BadRequest("Bad.").as_dict() == {"code": "invalid", "message": "Bad."}
    assert BadRequest("Bad.", field="type", index=0).as_dict() == {
        "code": "invalid",
        "message": "Bad.",
        "index": 0,
        "field": "type",
    }
