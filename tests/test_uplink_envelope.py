"""Topics, envelope builders and request parsing, checked against docs/schemas/."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.envelope import EnvelopeError, MessageClass
from smmc_gateway.uplink.journal import Command
from smmc_gateway.uplink.requests import DEFAULT_NOUNS, BadRequest, parse_request
from smmc_gateway.uplink.topics import MAX_ID_LENGTH, TopicError, Topics
from uplink_helpers import validate, validate_message

T = Topics("gw-0001")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_topics() -> None:
    assert T.status() == "smmc/v1/gw-0001/status"
    assert T.readings("m1") == "smmc/v1/gw-0001/meter/m1/readings"
    assert T.events("m1") == "smmc/v1/gw-0001/meter/m1/events"
    assert T.bulk_readings() == "smmc/v1/gw-0001/bulk/readings"
    assert T.commands() == "smmc/v1/gw-0001/cmd/+"
    assert T.reply("c-1") == "smmc/v1/gw-0001/reply/c-1"
    assert T.noun_of("smmc/v1/gw-0001/cmd/EndDeviceControls") == "EndDeviceControls"


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("a+b", "'+' wildcard"),
        ("#", "'#' wildcard"),
        ("a/b", "'/' level separator"),
        ("", "empty"),
        ("a\x00", "NUL"),
        ("x" * (MAX_ID_LENGTH + 1), "at most"),
    ],
)
def test_unsafe_ids_refused(bad: str, what: str) -> None:
    with pytest.raises(TopicError, match="meter") as exc:
        T.readings(bad)
    assert what in str(exc.value)
    with pytest.raises(TopicError, match="gateway"):
        Topics(bad)


def test_noun_of_other_gateway_refused() -> None:
    with pytest.raises(TopicError, match="not under"):
        T.noun_of("smmc/v1/gw-0002/cmd/X")


def _render(d: envelope.Draft, seq: int = 1) -> bytes:
    return envelope.render(
        d, message_id=str(uuid.uuid4()), seq=seq, timestamp=NOW, source="gw-0001"
    )


def test_meter_readings_validates_and_splices_raw_blocks() -> None:
    raw = (
        b'[{"ReadingType":{"ref":"0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"},'
        b'"IntervalReadings":[{"timeStamp":"2026-11-27T00:15:00Z","value":1.5}]}]'
    )
    d = envelope.meter_readings(
        T,
        "m1",
        [
            {
                "ref": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
                "obis": "1.0.1.8.0.255",
                "unit": "Wh",
                "timestamp": NOW,
                "value": 123,
                "name": "active_energy_import",
            }
        ],
        raw.replace(b'"}', b'","obis":"1.0.1.8.0.255","unit":"kWh"}', 1),
    )
    assert d.cls is MessageClass.TELEMETRY and d.topic == T.readings("m1")
    assert b'"unit":"kWh"}' in d.payload  # spliced byte for byte, not re-rendered
    doc = validate_message(_render(d))
    mr = doc["payload"]["MeterReading"][0]
    assert mr["Meter"] == {"mRID": "m1"}
    assert mr["Readings"][0]["ReadingType"] == {
        "ref": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
        "obis": "1.0.1.8.0.255",
        "unit": "Wh",
        "name": "active_energy_import",
    }
    assert mr["Readings"][0]["timeStamp"] == "2026-11-27T12:00:00Z"
    assert mr["IntervalBlocks"][0]["IntervalReadings"][0]["value"] == 1.5


def test_interval_blocks_must_be_an_array() -> None:
    with pytest.raises(EnvelopeError, match=r"MeterReading\[0\].IntervalBlocks"):
        envelope.meter_readings(T, "m1", [], b'{"not": "array"}')


def test_naive_timestamp_refused_and_offsets_converted() -> None:
    with pytest.raises(EnvelopeError, match="no time zone"):
        envelope.utc_iso(datetime(2026, 1, 1))
    t = datetime(2026, 1, 1, 9, 0, 0, 250000, tzinfo=timezone(timedelta(hours=-3)))
    assert envelope.utc_iso(t) == "2026-01-01T12:00:00.250Z"


def test_bulk_and_events_validate() -> None:
    b = envelope.bulk_readings(
        T, [{"meter": "m1", "readings": []}, {"meter": "m2", "interval_blocks": []}]
    )
    assert b.cls is MessageClass.BULK
    validate_message(_render(b))
    e = envelope.end_device_events(
        T,
        "m1",
        [
            envelope.event(
                "smmc.alarm.outage",
                mrid="ev-1",
                created=NOW,
                reason="powerDown",
                details="last gasp",
            )
        ],
    )
    assert e.cls is MessageClass.EVENT
    doc = validate_message(_render(e, seq=7))
    assert doc["header"]["seq"] == 7 and doc["header"]["source"] == "gw-0001"
    assert doc["payload"]["EndDeviceEvent"][0]["EndDeviceEventType"] == {
        "ref": "3.26.0.85",
        "name": "smmc.alarm.outage",
    }
    with pytest.raises(EnvelopeError, match=r"EndDeviceEvent\[0\]: missing key 'name'"):
        envelope.end_device_events(T, "m1", [{"mrid": "x", "created": NOW}])


def test_event_without_a_code_is_refused_naming_the_table() -> None:
    """No uncoded event is ever published: the builder and the envelope both refuse it."""
    with pytest.raises(
        EnvelopeError,
        match=r"'smmc\.han\.nothing' has no IEC 61968-9 "
        r"EndDeviceEventType code.*cim/event_types\.py",
    ):
        envelope.event("smmc.han.nothing")
    with pytest.raises(EnvelopeError, match=r"EndDeviceEvent\[1\]: event name 'x\.y'"):
        envelope.end_device_events(
            T,
            "m1",
            [envelope.event("smmc.switch.connected"), {"mrid": "x", "created": NOW, "name": "x.y"}],
        )


def test_every_event_type_validates_against_the_schemas() -> None:
    """Each table entry and family, built and rendered, passes end-device-events (its
    ref/name pair in the family schema); a wrong code for a known name does not."""
    from smmc_gateway.cim.event_types import EVENT_TYPES, FAMILIES

    names = [
        *EVENT_TYPES,
        "smmc.meter.standard.99",
        "smmc.meter.fraud.-1",
        "smmc.meter.disconnector.61",
        "smmc.meter.powerQuality.77",
        "smmc.alarm.bit9",
    ]
    assert len(names) == len(EVENT_TYPES) + len(FAMILIES)
    d = envelope.end_device_events(T, "m1", [envelope.event(n, created=NOW) for n in names])
    doc = validate_message(_render(d))
    assert [e["EndDeviceEventType"]["name"] for e in doc["payload"]["EndDeviceEvent"]] == names
    bad = doc["payload"]
    bad["EndDeviceEvent"] = bad["EndDeviceEvent"][:1]
    bad["EndDeviceEvent"][0]["EndDeviceEventType"]["ref"] = "3.26.0.216"  # powerDown's is .85
    with pytest.raises(Exception, match="is not valid"):
        validate(bad, "end-device-events")


def test_reply_validates_and_schema_rejects_reply_on_non_replies() -> None:
    r = envelope.reply(
        T,
        "EndDeviceControls",
        "c-1",
        "PARTIAL",
        [{"code": "MeterUnreachable", "details": "m2 timed out"}],
        {"EndDeviceControl": [{"EndDevices": [{"mRID": "m1"}], "result": "OK"}]},
    )
    doc = validate_message(_render(r))
    assert doc["header"]["correlationId"] == "c-1" and doc["reply"]["result"] == "PARTIAL"
    bad = json.loads(_render(envelope.meter_readings(T, "m1", [])))
    bad["reply"] = {"result": "OK", "errors": []}
    with pytest.raises(Exception, match="should not be valid"):
        validate(bad, "envelope")
    with pytest.raises(EnvelopeError, match=r"reply\.result"):
        envelope.reply(T, "X", "c", "MAYBE")


def _req(
    body: object = None,
    noun: str = "EndDeviceControls",
    raw: bytes | None = None,
    cdata: bytes | None = None,
) -> Command | BadRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return parse_request(T, T.command(noun), data, DEFAULT_NOUNS, cdata)


def test_valid_request() -> None:
    body = {
        "header": {"verb": "execute", "correlationId": "c-9"},
        "payload": {
            "EndDeviceControl": [
                {"EndDeviceControlType": {"ref": "disconnect"}, "EndDevices": [{"mRID": "m1"}]}
            ]
        },
    }
    validate(body, "request")
    validate(body["payload"], "end-device-controls-request")
    assert _req(body) == Command("c-9", "EndDeviceControls", "execute", body["payload"])


@pytest.mark.parametrize(
    ("kw", "code", "cid", "detail"),
    [
        ({"raw": b"{nope"}, "BadJson", None, "line 1 column 2"),
        ({"raw": b"{nope", "cdata": b"c-7"}, "BadJson", "c-7", "not JSON"),
        ({"body": {"header": {"verb": "get"}}}, "MissingCorrelationId", None, "correlationId"),
        (
            {"body": {"header": {"verb": "get", "correlationId": "a/b"}}},
            "BadCorrelationId",
            None,
            "'/'",
        ),
        (
            {"body": {"header": {"verb": "get", "correlationId": "c-1"}}, "noun": "Nope"},
            "UnknownNoun",
            "c-1",
            "'Nope'",
        ),
        (
            {"body": {"header": {"verb": "close", "correlationId": "c-2"}}},
            "InvalidVerb",
            "c-2",
            "'close'",
        ),
        (
            {"body": {"header": {"verb": "get", "correlationId": "c-3"}, "payload": [1]}},
            "BadPayload",
            "c-3",
            "list",
        ),
        ({"body": [1, 2]}, "BadEnvelope", None, "header"),
    ],
)
def test_bad_requests_name_the_problem(
    kw: dict[str, object], code: str, cid: str | None, detail: str
) -> None:
    res = _req(**kw)  # type: ignore[arg-type]
    assert isinstance(res, BadRequest)
    assert (res.code, res.correlation_id) == (code, cid)
    assert detail in res.details


def _utc_iso_reference(moment: datetime) -> str:
    """utc_iso as first written (astimezone, drop the zone, isoformat, "Z")."""
    utc = moment.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
    )
    | st.datetimes(
        min_value=datetime(1971, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    )
)
def test_utc_iso_is_the_utc_stamp_whatever_the_zone(moment: datetime) -> None:
    assert envelope.utc_iso(moment) == _utc_iso_reference(moment)
    assert envelope.utc_iso(moment).endswith("Z") and "+" not in envelope.utc_iso(moment)


def test_utc_iso_of_other_utc_zones_and_sub_millisecond_stamps() -> None:
    zoned = datetime(2026, 1, 1, 9, 0, 0, 999, tzinfo=timezone(timedelta(0), "UTC+0"))
    assert envelope.utc_iso(zoned) == "2026-01-01T09:00:00.000Z"
    assert envelope.utc_iso(NOW) == "2026-11-27T12:00:00Z"
    with pytest.raises(EnvelopeError, match="no time zone"):
        envelope.utc_iso(datetime(2026, 1, 1, 0, 0, 0, 5))


def test_a_reading_without_a_key_is_named_with_its_place() -> None:
    good = {"ref": "r", "obis": "1.0.1.8.0.255", "unit": "Wh", "timestamp": NOW, "value": 1}
    bad = {k: v for k, v in good.items() if k != "unit"}
    with pytest.raises(
        EnvelopeError, match=r"MeterReading\[0\]\.Readings\[1\]: missing key 'unit'"
    ):
        envelope.meter_readings(T, "m1", [good, bad])  # type: ignore[list-item]
