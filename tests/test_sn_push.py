"""InformationReport pushes (short-name meters, tag 0x18) through the push
listener: plain from a meter without keys, ciphered in general-glo-ciphering,
and a malformed report refused and counted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import MeterKeys, PushEvent, PushListener, information_report
from smmc_gateway.simulator.sn import short_names

from tests.support_sim import FleetSpec, running_fleet
from tests.test_push_listener import WAIT, ciphered, keyed, listening, send

STAMP = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


def report(current_time: bool = True) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "information-report-request",
            "current_time": _core.encode_datetime(STAMP) if current_time else None,
            "variables": [
                {"access": "variable-name", "name": 0x3008},
                {"access": "variable-name", "name": 0x3108},
            ],
            "data_raw": [
                _core.encode({"type": "double-long-unsigned", "value": 1234}),
                _core.encode({"type": "unsigned", "value": 7}),
            ],
        }
    )


def test_information_report_bytes() -> None:
    raw = report(current_time=False)
    assert raw[:9] == bytes.fromhex("18 00 02 02 3008 02 3108")
    stamp, body, names = information_report(raw)
    assert stamp == b"" and names == (0x3008, 0x3108)
    assert body["value"][0] == {"type": "double-long-unsigned", "value": 1234}


async def test_plain_and_ciphered_information_reports() -> None:
    def lookup(title: bytes | None, peer: str) -> MeterKeys | None:
        return keyed(title, peer) or (MeterKeys("sn-meter") if title is None else None)

    async with listening(lookup) as (listener, events):
        await send(listener.port, report())
        plain = await asyncio.wait_for(events.get(), WAIT)
        await send(listener.port, ciphered(report(), counter=9))
        cipher = await asyncio.wait_for(events.get(), WAIT)
        bad = report()[:-1]  # the last value (unsigned) lost its byte
        await send(listener.port, bad)
        await asyncio.sleep(0.2)
    assert plain.meter_id == "sn-meter" and not plain.ciphered
    assert plain.short_names == (0x3008, 0x3108) and plain.long_invoke_id == 0
    assert plain.meter_time == STAMP
    assert plain.body == {
        "type": "structure",
        "value": [
            {"type": "double-long-unsigned", "value": 1234},
            {"type": "unsigned", "value": 7},
        ],
    }
    assert cipher.meter_id == "meter-7" and cipher.ciphered and cipher.invocation_counter == 9
    assert cipher.short_names == (0x3008, 0x3108)
    assert listener.counters.accepted == 2
    assert listener.counters.refused_malformed == 1


async def test_sn_simulator_pushes_information_reports() -> None:
    events: asyncio.Queue[PushEvent] = asyncio.Queue()
    listener = PushListener(
        lambda title, peer: MeterKeys("sn-sim") if title is None else None,
        events.put_nowait,
        host="127.0.0.1",
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
    )
    async with listener:
        spec = FleetSpec(
            auth="lls",
            password=b"pw123456",
            history_days=0,
            referencing="sn",
            push_destination=f"127.0.0.1:{listener.port}",
        )
        async with running_fleet(spec) as sim:
            sim.fleet.power_outage(0)
            gasp = await asyncio.wait_for(events.get(), WAIT)
            meter = sim.fleet.meters[0].meter
    assert gasp.meter_id == "sn-sim" and not gasp.ciphered
    assert gasp.long_invoke_id == 0 and gasp.meter_time is not None
    bases = {(c, ln): b for b, c, _v, ln in short_names(meter, 1)}
    expected = [
        tuple(bases[(o.class_id, o.obis.to_bytes())] + 8 * (o.attribute - 1) for o in setup.objects)
        for setup in meter.objects.values()
        if setup.class_id == 40
    ]
    assert gasp.short_names in expected, "the short names of a push setup's objects"
    assert len(gasp.short_names) == len(gasp.body["value"]) > 0
