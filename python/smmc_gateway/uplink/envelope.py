"""The IEC 61968-100-style message envelope and the payload builders per noun.

A message is built in two steps. A builder (:func:`meter_readings`,
:func:`end_device_events`, :func:`reply`) makes a :class:`Draft`: topic, class,
verb, noun and the payload body already rendered as JSON bytes. The outbox then
assigns the ``messageId`` (uuid4) and ``seq`` when it stores the draft and calls
:func:`render` once, so a re-send carries exactly the stored bytes.

A caller may choose the ``messageId`` itself (``Draft.message_id``): the head-end does
so for scheduled readings, with :func:`reading_message_id` (a uuid5-style name hash of
gateway, meter, kind and the data's time range, in the version-4 form the envelope
schema requires), so re-reading the same interval after a crash (the
reading stored, the meter's progress not yet saved) yields the same id. The outbox
stores a caller-chosen id at most once while it is pending: adding it again stores
nothing and returns the id; once delivered, a repeat is sent again under the same id
and consumers de-duplicate it. The rule (head-end): a profile collection's id names its
intervals (saved progress, newest interval, row count), a register read's its capture
time. Different interval data (e.g. more rows, so a later newest interval) gives a
different id, so one id never carries two interval sets; the register snapshot sent with
a profile collection is not part of its id (a repeat's fresher snapshot may be dropped
by de-duplication; the next register read refreshes it). Pre-rendered
JSON from the Rust core (``IntervalBlocks``) is spliced in as bytes, never parsed.

The standard's codes (IEC 61968-9, :mod:`smmc_gateway.cim`): a reading's
``ReadingType.ref`` is its 18-part ReadingType code (``obis``, ``unit`` and, when known,
the register's ``name`` beside). An event is built from its readable name only
(:func:`event`); the envelope publishes ``EndDeviceEventType: {"ref": <61968-9 code>,
"name": <name>}`` and refuses a name without a code (:class:`EnvelopeError` naming it and
the table to add it to), so no uncoded event is ever published.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Literal, TypedDict

from smmc_gateway.cim.event_types import UnknownEventName, event_type
from smmc_gateway.cim.reading_types import Reading as Reading  # the payload's element
from smmc_gateway.uplink.topics import Topics

# IEC 61968-9 request verbs; delete (MeterReadSchedule, EndDeviceConfig) and cancel (a
# scheduled EndDeviceControls or MasterDataLinkageConfig order) as the standard names them
REQUEST_VERBS = frozenset({"create", "change", "execute", "get", "delete", "cancel"})
ReplyResult = Literal["OK", "PARTIAL", "FAILED"]
REPLY_RESULTS: frozenset[str] = frozenset({"OK", "PARTIAL", "FAILED"})


class MessageClass(IntEnum):
    """Priority class of an outbound message; a lower value is sent first."""

    REPLY = 0
    EVENT = 1
    TELEMETRY = 2
    BULK = 3


class EnvelopeError(ValueError):
    """A message cannot be built from what was given (names the field)."""


@dataclass(frozen=True)
class Draft:
    """An outbound message before the outbox gives it a messageId and seq."""

    cls: MessageClass
    topic: str
    verb: str
    noun: str
    payload: bytes
    correlation_id: str | None = None
    reply: Mapping[str, Any] | None = None
    retain: bool = False
    message_id: str | None = None
    """Caller-chosen messageId (deterministic, for de-duplication); None = uuid4."""


class MeterReadingPart(TypedDict, total=False):
    """Readings of one meter; ``interval_blocks`` may be pre-rendered JSON bytes."""

    meter: str
    readings: Sequence[Reading]
    interval_blocks: bytes | Sequence[Mapping[str, Any]]


class Event(TypedDict, total=False):
    """One meter event; ``mrid`` identifies the event, ``name`` its type (a name of
    :data:`smmc_gateway.cim.event_types.EVENT_TYPES`; the code is looked up). Build it with
    :func:`event`."""

    mrid: str
    created: datetime
    name: str
    reason: str
    details: str


def event(
    name: str,
    *,
    reason: str | None = None,
    details: str | None = None,
    created: datetime | None = None,
    mrid: str | None = None,
) -> Event:
    """An event of type ``name`` (refused with :class:`EnvelopeError` when the name has no
    IEC 61968-9 code); ``created`` defaults to now, ``mrid`` to a fresh uuid4."""
    try:
        event_type(name)
    except UnknownEventName as exc:
        raise EnvelopeError(str(exc)) from None
    ev = Event(mrid=mrid or str(uuid.uuid4()), created=created or datetime.now(UTC), name=name)
    if reason is not None:
        ev["reason"] = reason
    if details is not None:
        ev["details"] = details
    return ev


class ReplyError(TypedDict):
    code: str
    details: str


def utc_iso(moment: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` (milliseconds only when present); naive datetimes are refused."""
    if moment.tzinfo is not UTC:  # (every stamp of the readings path is already in UTC)
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise EnvelopeError(
                f"timestamp: {moment.isoformat()} has no time zone; give an aware UTC datetime"
            )
        moment = moment.astimezone(UTC)
    # isoformat() of a UTC datetime ends with "+00:00"
    return moment.isoformat("T", "milliseconds" if moment.microsecond else "seconds")[:-6] + "Z"


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def render(draft: Draft, *, message_id: str, seq: int, timestamp: datetime, source: str) -> bytes:
    """The final UTF-8 JSON bytes of a message (header, payload, reply on replies)."""
    header: dict[str, Any] = {"verb": draft.verb, "noun": draft.noun, "messageId": message_id}
    if draft.correlation_id is not None:
        header["correlationId"] = draft.correlation_id
    header.update(timestamp=utc_iso(timestamp), source=source, seq=seq)
    parts = [b'{"header":', _dumps(header), b',"payload":', draft.payload]
    if draft.reply is not None:
        parts += [b',"reply":', _dumps(draft.reply)]
    parts.append(b"}")
    return b"".join(parts)


def _reading(r: Reading, i: int, j: int) -> dict[str, Any]:
    try:
        rt: dict[str, Any] = {"ref": r["ref"], "obis": r["obis"], "unit": r["unit"]}
        if r.get("name"):
            rt["name"] = r["name"]
        return {"ReadingType": rt, "timeStamp": utc_iso(r["timestamp"]), "value": r["value"]}
    except KeyError as exc:
        where = f"MeterReading[{i}].Readings[{j}]"
        raise EnvelopeError(f"{where}: missing key {exc.args[0]!r}") from None


def _interval_blocks(raw: bytes | Sequence[Mapping[str, Any]], i: int) -> bytes:
    if isinstance(raw, bytes | bytearray | memoryview):
        body = bytes(raw).strip()
        if not (body.startswith(b"[") and body.endswith(b"]")):
            raise EnvelopeError(
                f"MeterReading[{i}].IntervalBlocks: pre-rendered JSON must be an array "
                f"(starts with {body[:1]!r}, ends with {body[-1:]!r})"
            )
        return body
    return _dumps(list(raw))


def meter_readings_payload(parts: Sequence[MeterReadingPart]) -> bytes:
    """The MeterReadings payload body for one or many meters."""
    items: list[bytes] = []
    for i, part in enumerate(parts):
        if "meter" not in part:
            raise EnvelopeError(f"MeterReading[{i}]: missing key 'meter'")
        head: dict[str, Any] = {
            "Meter": {"mRID": part["meter"]},
            "Readings": [_reading(r, i, j) for j, r in enumerate(part.get("readings", ()))],
        }
        rendered = _dumps(head)
        blocks = part.get("interval_blocks")
        if blocks is not None:
            spliced = _interval_blocks(blocks, i)
            rendered = rendered[:-1] + b',"IntervalBlocks":' + spliced + b"}"
        items.append(rendered)
    return b'{"MeterReading":[' + b",".join(items) + b"]}"


READING_ID_NAMESPACE = uuid.UUID("5f0c6a52-8a3e-5b1e-9d6c-3c2f7e1b9a40")
"""uuid5 namespace of deterministic readings messageIds (fixed: changing it changes ids)."""
_NAMESPACE_BYTES = READING_ID_NAMESPACE.bytes


def reading_message_id(
    gateway: str,
    meter: str,
    kind: str,
    first: datetime | None,
    last: datetime | None,
    extra: str = "",
) -> str:
    """The deterministic messageId of a readings message: uuid5 over gateway, meter, kind
    (e.g. "profile", "registers"), the first and last timestamps of the data (UTC ISO)
    and ``extra`` (e.g. a row count). Same inputs, same id, on every run."""
    stamps = [utc_iso(t) if t is not None else "-" for t in (first, last)]
    name = "\x1f".join([gateway, meter, kind, *stamps, extra])
    # uuid5's name hash (SHA-1 of namespace and name), stamped version 4:
    # docs/schemas/envelope.schema.json requires the version-4 pattern of header.messageId,
    # and the hash bits are as unique as random ones.
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def meter_readings(
    topics: Topics,
    meter: str,
    readings: Sequence[Reading] = (),
    interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
    message_id: str | None = None,
) -> Draft:
    """Readings of one meter, to ``meter/{meter}/readings`` (class TELEMETRY)."""
    part: MeterReadingPart = {"meter": meter, "readings": readings}
    if interval_blocks is not None:
        part["interval_blocks"] = interval_blocks
    return Draft(
        MessageClass.TELEMETRY,
        topics.readings(meter),
        "created",
        "MeterReadings",
        meter_readings_payload([part]),
        message_id=message_id,
    )


def bulk_readings(topics: Topics, parts: Sequence[MeterReadingPart]) -> Draft:
    """The daily bulk of many meters, to ``bulk/readings`` (class BULK)."""
    return Draft(
        MessageClass.BULK,
        topics.bulk_readings(),
        "created",
        "MeterReadings",
        meter_readings_payload(parts),
    )


def end_device_events(topics: Topics, meter: str, events: Sequence[Event]) -> Draft:
    """Events of one meter, to ``meter/{meter}/events`` (class EVENT: never dropped)."""
    out = []
    for i, ev in enumerate(events):
        where = f"EndDeviceEvent[{i}]"
        for key in ("mrid", "created", "name"):
            if key not in ev:
                raise EnvelopeError(f"{where}: missing key {key!r}")
        try:
            code = event_type(ev["name"]).code
        except UnknownEventName as exc:
            raise EnvelopeError(f"{where}: {exc}") from None
        item: dict[str, Any] = {
            "mRID": ev["mrid"],
            "createdDateTime": utc_iso(ev["created"]),
            "EndDeviceEventType": {"ref": code, "name": ev["name"]},
            "Assets": {"mRID": meter},
        }
        if "reason" in ev:
            item["reason"] = ev["reason"]
        if "details" in ev:
            item["details"] = ev["details"]
        out.append(item)
    return Draft(
        MessageClass.EVENT,
        topics.events(meter),
        "created",
        "EndDeviceEvents",
        _dumps({"EndDeviceEvent": out}),
    )


def reply(
    topics: Topics,
    noun: str,
    correlation_id: str,
    result: str,
    errors: Sequence[ReplyError] = (),
    payload: Mapping[str, Any] | None = None,
) -> Draft:
    """The one reply to a request, to ``reply/{correlationId}`` (class REPLY)."""
    if result not in REPLY_RESULTS:
        raise EnvelopeError(f"reply.result: {result!r} is not one of {sorted(REPLY_RESULTS)}")
    return Draft(
        MessageClass.REPLY,
        topics.reply(correlation_id),
        "reply",
        noun,
        _dumps(dict(payload or {})),
        correlation_id=correlation_id,
        reply={"result": result, "errors": [dict(e) for e in errors]},
    )
