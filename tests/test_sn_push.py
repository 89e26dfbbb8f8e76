"""InformationReport pushes (short-name meters, tag 0x18) through the push
listener: plain from a meter without keys, ciphered in general-glo-ciphering,
and a malformed report refused and counted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from smmc_gateway import _core
from smmc_gateway.dlms.push import MeterKeys, information_report

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
