"""Interoperability: Gurux's decoder (third party) reads what our client sends.

Our client session talks to our simulator through a recording TCP relay; every
APDU our client put on the wire is then decoded by Gurux's translator
(``GXDLMSTranslator.pduToXml``), an independent reading of the Green Book, and
the fields Gurux sees must be the ones the client was asked to send. This
covers the services the Gurux *server* cannot take in its Python version
(SET, ACTION, GET with-list, GET with selective access), see
test_interop_gurux_meter.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from gurux_dlms import GXByteBuffer, GXDLMSTranslator
from gurux_dlms.enums import TranslatorOutputType
from smmc_gateway.cosem.datetime import to_utc
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, WrapperTransport

from tests.interop.replay_peer import split_hdlc, split_wrapper
from tests.support_sim import FleetSpec, running_fleet


@contextlib.asynccontextmanager
async def recording_relay(target_port: int) -> AsyncIterator[tuple[int, bytearray, bytearray]]:
    """A loopback relay to ``target_port``; yields (port, client bytes, meter bytes)."""
    upstream, downstream = bytearray(), bytearray()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray
    ) -> None:
        try:
            while data := await reader.read(4096):
                log += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        meter_reader, meter_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(reader, meter_writer, upstream), pipe(meter_reader, writer, downstream)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), upstream, downstream
    finally:
        server.close()


def fields(xml: str) -> list[tuple[str, str]]:
    """(tag, Value) pairs of Gurux's simple XML, in document order."""
    return re.findall(r'<(\w+) Value="([^"]*)"', xml)


async def test_gurux_reads_our_requests() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="lls", drift_ppm=0.0)) as sim:
        password = sim.info[0]["password"].encode()
        now = sim.fleet.now()
        async with recording_relay(sim.ports[0]) as (port, upstream, downstream):
            settings = SessionSettings(client_sap=1, security=Security.lls(password))
            transport = WrapperTransport.tcp("127.0.0.1", port, client_sap=1)
            async with ClientSession(transport, settings) as session:
                await session.read_profile(
                    "1.0.99.1.0.255", start=now - timedelta(hours=2), end=now, capture_period=900
                )
                await session.read_profile(
                    "1.0.99.1.0.255", from_entry=3, to_entry=7, capture_period=900
                )
                await session.get_many([(3, "1.0.1.8.0.255", 2), (8, "0.0.1.0.0.255", 2)])
                await session.set(
                    1, "0.0.97.98.10.255", 2, {"type": "double-long-unsigned", "value": 0x0F0F0F0F}
                )
                await session.action(70, "0.0.96.3.10.255", 1, {"type": "integer", "value": 0})
        requests = [frame[8:] for frame in split_wrapper(upstream)]
        responses = [frame[8:] for frame in split_wrapper(downstream)]

    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    xml = [translator.pduToXml(GXByteBuffer(apdu)) for apdu in requests]
    for apdu in responses:  # the simulator's answers decode too
        assert translator.pduToXml(GXByteBuffer(apdu)).strip(), apdu.hex()
    assert len(xml) == 7  # AARQ, 2 profile GETs, with-list, SET, ACTION, RLRQ

    aarq = fields(xml[0])
    assert ("ApplicationContextName", "LN") in aarq
    assert ("MechanismName", "Low") in aarq
    assert ("CallingAuthentication", password.hex().upper()) in aarq
    assert ("ProposedDlmsVersionNumber", "06") in aarq

    by_range = fields(xml[1])
    assert by_range[:4] == [
        ("InvokeIdAndPriority", by_range[0][1]),
        ("ClassId", "0007"),
        ("InstanceId", "0100630100FF"),
        ("AttributeId", "02"),
    ]
    assert ("AccessSelector", "01") in by_range
    # restricting object: the clock's time (class 8, 0.0.1.0.0.255, attribute 2)
    assert ("UInt16", "0008") in by_range and ("OctetString", "0000010000FF") in by_range
    start, end = (bytes.fromhex(v) for t, v in by_range if t == "OctetString" and len(v) == 24)
    hundredths = timedelta(microseconds=now.microsecond % 10_000)
    assert to_utc(start) == now - timedelta(hours=2) - hundredths
    assert to_utc(end) == now - hundredths

    by_entry = fields(xml[2])
    assert ("AccessSelector", "02") in by_entry
    assert [v for t, v in by_entry if t == "UInt32"] == ["00000003", "00000007"]

    with_list = xml[3]
    assert "GetRequestWithList" in with_list
    assert ("InstanceId", "0100010800FF") in fields(with_list)
    assert ("InstanceId", "0000010000FF") in fields(with_list)

    set_request = fields(xml[4])
    assert "SetRequestNormal" in xml[4]
    assert ("InstanceId", "000061620AFF") in set_request
    assert ("UInt32", "0F0F0F0F") in set_request

    action = fields(xml[5])
    assert "ActionRequestNormal" in xml[5]
    assert ("ClassId", "0046") in action and ("MethodId", "01") in action
    assert ("Int8", "00") in action

    assert "ReleaseRequest" in xml[6]


async def test_gurux_reads_our_hdlc_frames() -> None:
    """Every HDLC frame of a client <-> simulator session (SNRM/UA parameters,
    I frames, segments and RR, DISC/UA) is read by Gurux's translator."""
    async with running_fleet(FleetSpec(meters=1, auth="lls"), hdlc=True) as sim:
        password = sim.info[0]["password"].encode()
        async with recording_relay(sim.ports[0]) as (port, upstream, downstream):
            transport = HdlcTransport.tcp("127.0.0.1", port, HdlcSettings(client_address=1))
            settings = SessionSettings(client_sap=1, security=Security.lls(password))
            async with ClientSession(transport, settings) as session:
                rows = await session.read_profile(
                    "1.0.99.1.0.255", from_entry=1, to_entry=20, capture_period=900
                )
        assert len(rows) == 20
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    ours = [translator.messageToXml(GXByteBuffer(f)) for f in split_hdlc(bytearray(upstream))]
    theirs = [translator.messageToXml(GXByteBuffer(f)) for f in split_hdlc(bytearray(downstream))]
    assert all("<HDLC" in x for x in ours + theirs)
    assert "<Snrm>" in ours[0] and ("MaxInfoTX", "128") in fields(ours[0])
    assert "<Ua>" in theirs[0] and ("MaxInfoTX", "128") in fields(theirs[0])
    assert "AssociationRequest" in ours[1] and "AssociationResponse" in theirs[1]
    assert "GetRequestNormal" in ours[2]
    assert sum("NextFrame" in x for x in theirs) >= 2  # the profile came in segments
    assert "DisconnectRequest" in ours[-1] and "<Ua>" in theirs[-1]
