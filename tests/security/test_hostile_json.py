"""One hostile request body must be answered (or dropped), never raise out of the parser:
an exception there ends the uplink's session, the unacknowledged message is delivered
again, and the gateway would loop on it forever."""

from __future__ import annotations

import pytest
from smmc_gateway.uplink.requests import DEFAULT_NOUNS, BadRequest, parse_request
from smmc_gateway.uplink.topics import Topics

T = Topics("gw-1")
TOPIC = T.command("MeterReadings")


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "BadJson", "nests too deeply"),
        (
            b'{"header": {"verb": "get", "correlationId": "c1"}, "payload": {"x": '
            + b"1" * 5000
            + b"}}",
            "BadJson",
            "4300",
        ),
        (b"\xff\xfe\x00", "BadJson", "not UTF-8"),
        (
            b'{"header": {"verb": "get", "correlationId": "c1"}, "payload": NaN}',
            "BadPayload",
            "payload must be an object",
        ),
    ],
)
def test_hostile_bodies_become_bad_requests(body: bytes, code: str, words: str) -> None:
    got = parse_request(T, TOPIC, body, DEFAULT_NOUNS, b"cid-fallback")
    assert isinstance(got, BadRequest)
    assert got.code == code and words in got.details
    assert got.correlation_id in ("cid-fallback", "c1")


def test_an_oversized_request_is_refused_unparsed_and_answered_on_its_header() -> None:
    body = (
        b'{"header": {"verb": "get", "noun": "MeterReadings", "correlationId": "big-1"},'
        b' "payload": {"EndDevices": [' + b'{"mRID": "m"},' * 200_000 + b'{"mRID": "m"}]}}'
    )
    got = parse_request(T, TOPIC, body, DEFAULT_NOUNS, None, max_bytes=1 << 20)
    assert isinstance(got, BadRequest) and got.code == "RequestTooLarge"
    assert got.correlation_id == "big-1"
    assert f"request of {len(body)} bytes; at most 1048576" in got.details
    assert "commands.max_request_bytes" in got.details
    # the Correlation Data property wins; a body with no readable header cannot be answered
    got = parse_request(T, TOPIC, b"x" * 5000, DEFAULT_NOUNS, b"cd-1", max_bytes=4096)
    assert isinstance(got, BadRequest) and got.correlation_id == "cd-1"
    got = parse_request(T, TOPIC, b"x" * 5000, DEFAULT_NOUNS, None, max_bytes=4096)
    assert isinstance(got, BadRequest) and got.correlation_id is None


def test_the_broker_is_told_the_bounds() -> None:
    from pathlib import Path

    from smmc_gateway.uplink.config import UplinkConfig

    cfg = UplinkConfig(
        "gw-1", Path("/nonexistent"), max_concurrent=2, max_queued=30, max_request_bytes=64 << 20
    )
    assert cfg.max_packet_size() == 128 << 20 and cfg.receive_maximum() == 32
    assert UplinkConfig("gw-1", Path("/x")).max_packet_size() == 16 << 20


@pytest.mark.parametrize("cid", ["\\ud800", "a\\u0007b", "x\\u009f"])
def test_correlation_ids_that_cannot_be_a_topic_are_refused(cid: str) -> None:
    body = b'{"header": {"verb": "get", "correlationId": "' + cid.encode() + b'"}, "payload": {}}'
    got = parse_request(T, TOPIC, body, DEFAULT_NOUNS, None)
    assert isinstance(got, BadRequest) and got.code == "BadCorrelationId"
    assert "not allowed in a topic" in got.details
    assert got.correlation_id is None  # nothing to answer on: logged and counted only
