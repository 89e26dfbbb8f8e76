"""Event-notifications pushed by a meter (IEC 62056-5-3 event-notification-request: one
attribute's value, e.g. an alarm register), plain or in general-glo-ciphering: accepted,
the attribute named, published as smmc.push.eventNotification, and an alarm register's
bits named per the meter's model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from smmc_gateway import _core
from smmc_gateway.dlms.push import MeterKeys, PushRefused
from smmc_gateway.headend.pushes import EV_PUSH_EVENT, PushRouting
from smmc_gateway.models.catalog import shipped_model
from smmc_gateway.usecases.events import decode_alarms
from test_push_listener import EK, TITLE, WAIT, ciphered, keyed, listening, send

ALARM_1 = "0.0.97.98.0.255"


def event_notification(
    obis: str, value: dict[str, object], class_id: int = 1, attr: int = 2
) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "event-notification-request",
            "time": _core.encode_datetime(datetime(2026, 12, 3, 10, 0, tzinfo=UTC)),
            "attribute": {"class_id": class_id, "obis": obis, "attribute_id": attr},
            "value_raw": _core.encode(value),
        }
    )


async def test_a_ciphered_alarm_register_event_notification_is_named() -> None:
    apdu = event_notification(ALARM_1, {"type": "double-long-unsigned", "value": 0x1})
    async with listening(keyed) as (listener, events):
        await send(listener.port, ciphered(apdu, counter=9))
        event = await asyncio.wait_for(events.get(), WAIT)
    assert event.meter_id == "meter-7" and event.ciphered and event.invocation_counter == 9
    assert event.attribute == (1, ALARM_1, 2)
    assert event.body == {"type": "double-long-unsigned", "value": 1}
    assert event.meter_time == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    published = PushRouting.event(event)
    assert published["name"] == EV_PUSH_EVENT
    assert f"attribute 1/{ALARM_1}/2" in published["reason"]
    idis = shipped_model("idis")
    names = [
        n for n, _r, _d in decode_alarms(event.body, idis, {}, event.meter_id, event.attribute)
    ]
    assert names == ["smmc.meter.clockInvalid"], names  # IDIS alarm register 1, bit 0
    # the same value as an attribute that is no alarm register names nothing
    assert decode_alarms(event.body, idis, {}, "m", (3, "1.0.1.8.0.255", 2)) == []


async def test_a_plain_event_notification_from_a_meter_without_keys() -> None:
    def plain(title: bytes | None, peer: str) -> MeterKeys | None:
        return MeterKeys("meter-9")

    apdu = event_notification("0.0.96.11.0.255", {"type": "unsigned", "value": 47})
    async with listening(plain) as (listener, events):
        await send(listener.port, apdu)
        event = await asyncio.wait_for(events.get(), WAIT)
    assert event.attribute == (1, "0.0.96.11.0.255", 2) and not event.ciphered
    assert event.body == {"type": "unsigned", "value": 47}


async def test_a_keyed_meter_s_plain_event_notification_is_refused() -> None:
    async with listening(keyed) as (listener, _events):
        try:
            listener.accept(
                event_notification(ALARM_1, {"type": "unsigned", "value": 1}), "127.0.0.1"
            )
        except PushRefused as exc:
            assert "unknown" in str(exc) or "keys" in str(exc)
        else:
            raise AssertionError("a plain push from a keyed meter was accepted")
        bad = ciphered(b"\xc8\x00", counter=3)  # a ciphered get-response is not a push
        try:
            listener.accept(bad, "127.0.0.1")
        except PushRefused as exc:
            assert "not a data-notification or an event-notification" in str(exc)
        else:
            raise AssertionError("a ciphered non-push was accepted")
    assert EK  # the keys the ciphered pushes above use
    assert TITLE
