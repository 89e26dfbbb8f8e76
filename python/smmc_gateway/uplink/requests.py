"""Parsing and checking of inbound requests (``cmd/{noun}``), without IO.

:func:`parse_request` turns one inbound MQTT message into a :class:`Command` or a
:class:`BadRequest` naming the problem; a bad request still carries the
correlationId to answer on when one could be found (the JSON header, else the MQTT v5
Correlation Data property), else it can only be logged and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from smmc_gateway.uplink.envelope import REQUEST_VERBS
from smmc_gateway.uplink.journal import Command
from smmc_gateway.uplink.topics import TopicError, Topics, check_level

DEFAULT_NOUNS = frozenset(
    {
        "EndDeviceControls",
        "MeterReadings",
        "EndDeviceFirmware",
        "MeterConfig",
        "EndDeviceConfig",
        "MasterDataLinkageConfig",
        "PricingStructureConfig",
        "CustomerMeterDataSet",
        "ReadingsReport",
        "MeterReadSchedule",
    }
)


@dataclass(frozen=True)
class BadRequest:
    """A request that is refused: ``code`` and ``details`` go into the FAILED reply."""

    correlation_id: str | None
    noun: str
    verb: str
    code: str
    details: str


def _correlation_fallback(correlation_data: bytes | None) -> str | None:
    if not correlation_data:
        return None
    try:
        return check_level("correlationId", correlation_data.decode("utf-8"))
    except (UnicodeDecodeError, TopicError):
        return None


_HEADER_CID = re.compile(rb'"correlationId"\s*:\s*"([^"\\]{1,128})"')


def _correlation_in_head(body: bytes) -> str | None:
    """The correlationId of a body that will not be parsed, when its header comes first
    (as every client writes it): a look at the first 4 KiB only."""
    m = _HEADER_CID.search(body[:4096])
    if m is None:
        return None
    return _correlation_fallback(m.group(1))


def parse_request(
    topics: Topics,
    topic: str,
    body: bytes,
    nouns: frozenset[str],
    correlation_data: bytes | None = None,
    *,
    max_bytes: int | None = None,
) -> Command | BadRequest:
    """Check one inbound request; never raises on any input. A body over ``max_bytes``
    is refused unparsed (``RequestTooLarge``)."""
    fallback = _correlation_fallback(correlation_data)
    try:
        noun = topics.noun_of(topic)
    except TopicError as exc:
        return BadRequest(fallback, "?", "?", "BadTopic", str(exc))
    if max_bytes is not None and len(body) > max_bytes:
        return BadRequest(
            fallback or _correlation_in_head(body),
            noun,
            "?",
            "RequestTooLarge",
            f"request of {len(body)} bytes; at most {max_bytes} are taken "
            "(commands.max_request_bytes)",
        )
    try:
        data: Any = json.loads(body)
    except UnicodeDecodeError as exc:
        return BadRequest(fallback, noun, "?", "BadJson", f"payload is not UTF-8: {exc}")
    except json.JSONDecodeError as exc:
        return BadRequest(
            fallback,
            noun,
            "?",
            "BadJson",
            f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            f" (offset {exc.pos})",
        )
    except RecursionError:
        # Nesting deeper than the interpreter's stack: one hostile message must not
        # take the uplink down (and be redelivered forever).
        return BadRequest(fallback, noun, "?", "BadJson", "payload nests too deeply to parse")
    except ValueError as exc:  # e.g. an integer literal longer than 4300 digits
        return BadRequest(fallback, noun, "?", "BadJson", f"payload is not usable JSON: {exc}")
    header = data.get("header") if isinstance(data, dict) else None
    if not isinstance(header, dict):
        return BadRequest(fallback, noun, "?", "BadEnvelope", "missing object 'header'")
    verb = header.get("verb")
    verb_s = verb if isinstance(verb, str) else "?"
    cid = header.get("correlationId")
    if cid is None:
        return BadRequest(
            fallback, noun, verb_s, "MissingCorrelationId", "header.correlationId is missing"
        )
    try:
        cid = check_level("header.correlationId", cid)
    except TopicError as exc:
        return BadRequest(fallback, noun, verb_s, "BadCorrelationId", str(exc))
    if noun not in nouns:
        return BadRequest(
            cid,
            noun,
            verb_s,
            "UnknownNoun",
            f"noun {noun!r} is not served; known: {', '.join(sorted(nouns))}",
        )
    if header.get("noun", noun) != noun:
        return BadRequest(
            cid,
            noun,
            verb_s,
            "NounMismatch",
            f"header.noun {header.get('noun')!r} differs from topic noun {noun!r}",
        )
    if verb not in REQUEST_VERBS:
        return BadRequest(
            cid,
            noun,
            verb_s,
            "InvalidVerb",
            f"header.verb {verb!r} is not one of {', '.join(sorted(REQUEST_VERBS))}",
        )
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        return BadRequest(
            cid,
            noun,
            verb_s,
            "BadPayload",
            f"payload must be an object, got {type(payload).__name__}",
        )
    return Command(cid, noun, verb_s, payload)
