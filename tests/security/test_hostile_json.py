"""One hostile request body must be answered (or dropped), never raise out of the parser:
an exception there ends the uplink's session, the unacknowledged message is delivered
again, and the gateway would loop on it forever."""

from __future__ import annotations

import pytest
from smmc_gateway.uplink.requests import DEFAULT_NOUNS, BadRequest, parse_request
from smmc_gateway.uplink.topics import Topics

T = Topics("gw-1")
TOPIC = T.command("MeterReadings")


@pytest.mark.parametrize(("body", "code", "words"), [
    (b"[" * 200_000 + b"]" * 200_000, "BadJson", "nests too deeply"),
    (b'{"header": {"verb": "get", "correlationId": "c1"}, "payload": {"x": '
     + b"1" * 5000 + b"}}", "BadJson", "4300"),
    (b"\xff\xfe\x00", "BadJson", "not UTF-8"),
    (b'{"header": {"verb": "get", "correlationId": "c1"}, "payload": NaN}', "BadPayload",
     "payload must be an object"),
])
def test_hostile_bodies_become_bad_requests(body: bytes, code: str, words: str) -> None:
    got = parse_request(T, TOPIC, body, DEFAULT_NOUNS, b"cid-fallback")
    assert isinstance(got, BadRequest)
    assert got.code == code and words in got.details
    assert got.correlation_id in ("cid-fallback", "c1")


@pytest.mark.parametrize("cid", ["\\ud800", "a\\u0007b", "x\\u009f"])
def test_correlation_ids_that_cannot_be_a_topic_are_refused(cid: str) -> None:
    body = b'{"header": {"verb": "get", "correlationId": "' + cid.encode() + b'"}, "payload": {}}'
    got = parse_request(T, TOPIC, body, DEFAULT_NOUNS, None)
    assert isinstance(got, BadRequest) and got.code == "BadCorrelationId"
    assert "not allowed in a topic" in got.details
    assert got.correlation_id is None  # nothing to answer on: logged and counted only
