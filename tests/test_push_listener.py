"""The push listener: ciphered and plain data-notifications from the simulator
(last gasp, power restored), and refusals (unknown sender, bad tag, replay,
plain push from a keyed meter, garbage) that are counted and never stop it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import KeyLookup, MeterKeys, PushEvent, PushListener

from tests.support_sim import FleetSpec, running_fleet

EK = bytes(range(16))
AK = bytes(range(16, 32))
TITLE = b"MMM\x00\x00\x00\x00\x07"
WAIT = 10.0


@contextlib.asynccontextmanager
async def listening(
    lookup: KeyLookup,
) -> AsyncIterator[tuple[PushListener, asyncio.Queue[PushEvent]]]:
    events: asyncio.Queue[PushEvent] = asyncio.Queue()
    listener = PushListener(
        lookup,
        events.put_nowait,
        host="127.0.0.1",
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
    )
    async with listener:
        yield listener, events


def notification(body: dict[str, Any], invoke: int = 1) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": invoke,
            "date_time": _core.encode_datetime(datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
            "body_raw": _core.encode(body),
        }
    )


def ciphered(apdu: bytes, counter: int, ak: bytes = AK) -> bytes:
    return _core.cipher_apdu(
        apdu,
        security_control=0x30,
        system_title=TITLE,
        invocation_counter=counter,
        ek=EK,
        ak=ak,
        general=True,
    )


async def send(port: int, *apdus: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for apdu in apdus:
        writer.write(_core.wrapper_encode(1, 102, apdu))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


BODY: dict[str, Any] = {
    "type": "structure",
    "value": [{"type": "double-long-unsigned", "value": 42}],
}


def keyed(title: bytes | None, peer: str) -> MeterKeys | None:
    if title == TITLE:
        return MeterKeys("meter-7", system_title=TITLE, ek=EK, ak=AK)
    return None


async def test_ciphered_push_becomes_a_typed_event() -> None:
    async with listening(keyed) as (listener, events):
        await send(listener.port, ciphered(notification(BODY), counter=5))
        event = await asyncio.wait_for(events.get(), WAIT)
    assert event.meter_id == "meter-7"
    assert event.ciphered and event.invocation_counter == 5 and event.system_title == TITLE
    assert event.body == BODY
    assert event.meter_time == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert listener.counters.accepted == 1


async def test_refusals_are_counted_and_the_listener_goes_on() -> None:
    calls = 0

    def lookup(title: bytes | None, peer: str) -> MeterKeys | None:
        nonlocal calls
        calls += 1
        if title is None:
            return MeterKeys("meter-7", ek=EK, ak=AK)  # known by IP, but it has keys
        return keyed(title, peer)

    async with listening(lookup) as (listener, events):
        good = ciphered(notification(BODY, 1), counter=10)
        stranger = _core.cipher_apdu(
            notification(BODY),
            security_control=0x30,
            system_title=b"XXX\x00\x00\x00\x00\x01",
            invocation_counter=1,
            ek=EK,
            ak=AK,
            general=True,
        )
        await send(
            listener.port,
            good,
            good,  # replayed: same invocation counter
            ciphered(notification(BODY, 2), counter=11, ak=bytes(16)),  # bad tag
            stranger,  # unknown system title
            notification(BODY, 3),  # plain, from a meter that has keys
            b"\x01\x02\x03",  # not a notification
            ciphered(notification(BODY, 4), counter=12),  # fine again
        )
        first = await asyncio.wait_for(events.get(), WAIT)
        last = await asyncio.wait_for(events.get(), WAIT)
    assert (first.long_invoke_id, last.long_invoke_id) == (1, 4)
    c = listener.counters
    assert (c.accepted, c.refused_security, c.refused_unknown, c.refused_malformed) == (2, 3, 1, 1)


async def test_garbage_connection_and_failing_callback_do_not_stop_it() -> None:
    seen: list[PushEvent] = []
    done = asyncio.Event()

    def callback(event: PushEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")
        done.set()

    listener = PushListener(keyed, callback, host="127.0.0.1", port=0)
    async with listener:
        _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"\x00\x02" + b"\xff" * 20)  # bad wrapper version
        await writer.drain()
        writer.close()
        await send(listener.port, ciphered(notification(BODY, 1), counter=100))
        await send(listener.port, ciphered(notification(BODY, 2), counter=101))
        await asyncio.wait_for(done.wait(), WAIT)
    assert listener.counters.callback_errors == 1
    assert listener.counters.refused_malformed == 1
    assert [e.long_invoke_id for e in seen] == [1, 2]


async def test_last_gasp_and_power_restored_from_the_simulator() -> None:
    events: asyncio.Queue[PushEvent] = asyncio.Queue()
    info: dict[str, str] = {}

    def lookup(title: bytes | None, peer: str) -> MeterKeys | None:
        if title is not None and title.hex() == info.get("system_title"):
            return MeterKeys(
                info["meter_id"], ek=bytes.fromhex(info["ek"]), ak=bytes.fromhex(info["ak"])
            )
        return None

    listener = PushListener(lookup, events.put_nowait, host="127.0.0.1", port=0)
    async with listener:
        spec = FleetSpec(
            auth="hls-gmac", history_days=0, push_destination=f"127.0.0.1:{listener.port}"
        )
        async with running_fleet(spec) as sim:
            info.update(sim.info[0])
            sim.fleet.power_outage(0)
            gasp = await asyncio.wait_for(events.get(), WAIT)
            sim.fleet.power_restored(0)
            restored = await asyncio.wait_for(events.get(), WAIT)
    assert gasp.meter_id == restored.meter_id == info["meter_id"]
    assert gasp.ciphered and restored.ciphered
    assert restored.invocation_counter > gasp.invocation_counter  # type: ignore[operator]
    assert gasp.body != restored.body
    assert listener.counters.refused_security == listener.counters.refused_unknown == 0
