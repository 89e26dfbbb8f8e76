"""Interoperability of short-name referencing: the Gurux DLMS client (third
party) in SN mode against our simulator serving SN (``--referencing sn``),
over the wrapper and HDLC on TCP.

Covered: AARQ/AARE with the short-name context (LLS, management client 1);
the Association SN object list (0xFA08) and the base names Gurux takes from
it; Read of a register's value and scaler/unit (compared with what the
simulated meter holds); the load profile read in data-block-results (a small
client PDU size, so Gurux asks block by block with block-number-access);
Write of a Data value; the disconnect control's remote_disconnect invoked
as a Write to its method short name (base + 0x20).

Shims for the Gurux Python client's own bugs (tests only): its reply object
lacks ``setTotalCount``/``getMoreData`` that its SN block code calls, and its
next-block request loses the ReadRequest tag (it takes ``settings.command``,
which it reset): the peer sets it before asking for the next block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from gurux_dlms import GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, Command, DataType, InterfaceType, ObjectType
from smmc_gateway.simulator.sn import short_names

from tests.interop.gurux_peer import GuruxPeer
from tests.interop.sim_values import TRANSPORTS, held, plain
from tests.support_sim import FleetSpec, RunningFleet, running_fleet

PASSWORD = b"pw123456"
REGISTER = "1.0.1.8.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
DISCONNECT = "0.0.96.3.10.255"
ALARM_FILTER = "0.0.97.98.10.255"

if not hasattr(GXReplyData, "setTotalCount"):
    GXReplyData.setTotalCount = lambda self, v: setattr(self, "totalCount", v)
if not hasattr(GXReplyData, "getMoreData"):
    GXReplyData.getMoreData = lambda self: self.moreData


def obis_bytes(text: str) -> bytes:
    return bytes(int(g) for g in text.split("."))


class SnPeer(GuruxPeer):
    """GuruxPeer with the SN next-block shim (see the module docstring)."""

    async def exchange(self, data: Any, reply: GXReplyData | None = None) -> GXReplyData:
        reply = reply if reply is not None else GXReplyData()
        for frame in data if isinstance(data, list) else [data]:
            reply.clear()
            await self._one(frame, reply)
            while reply.isMoreData():
                self.followups += 1
                self.client.settings.command = Command.READ_REQUEST
                await self._one(self.client.receiverReady(reply), reply)
        return reply


@contextlib.asynccontextmanager
async def sn_meter(hdlc: bool) -> AsyncIterator[tuple[RunningFleet, datetime]]:
    spec = FleetSpec(
        meters=1, auth="lls", password=PASSWORD, drift_ppm=0.0, referencing="sn", history_days=1
    )
    async with running_fleet(spec, hdlc=hdlc) as sim:
        t0 = sim.fleet.now()
        sim.fleet.clock.now = lambda: t0  # type: ignore[method-assign]
        yield sim, t0


async def connect(sim: RunningFleet, hdlc: bool, max_pdu: int) -> SnPeer:
    client = GXDLMSClient(
        False,
        1,
        1,
        Authentication.LOW,
        PASSWORD,
        InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER,
    )
    client.setMaxReceivePDUSize(max_pdu)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports[0])
    peer = SnPeer(client, reader, writer)
    await peer.open()
    return peer


@pytest.mark.parametrize("hdlc", TRANSPORTS)
async def test_gurux_sn_client_reads_our_sn_meter(hdlc: bool) -> None:
    async with sn_meter(hdlc) as (sim, t0):
        peer = await connect(sim, hdlc, 256)
        try:
            objects = await peer.object_list()
            served = {(c, ln): b for b, c, _v, ln in short_names(sim.fleet.meters[0].meter, 1)}
            got = {(int(o.objectType), obis_bytes(o.logicalName)): o.shortName for o in objects}
            assert got == served, "Gurux reads every base name the meter serves"
            register = objects.findByLN(ObjectType.REGISTER, REGISTER)
            assert register is not None and register.shortName % 8 == 0
            assert await peer.read(register, 2) == plain(held(sim, t0, 3, REGISTER, 2, 1))
            scaler, unit = await peer.read(register, 3)
            want = plain(held(sim, t0, 3, REGISTER, 3, 1))
            assert (scaler, int(unit)) == (10.0 ** want[0], want[1])
            profile = objects.findByLN(ObjectType.PROFILE_GENERIC, LOAD_PROFILE)
            await peer.read(profile, 3)
            before = peer.followups
            rows = await peer.read(profile, 2)
            assert len(rows) == len(plain(held(sim, t0, 7, LOAD_PROFILE, 2, 1)))
            assert peer.followups - before > 3, "the buffer came in data-block-results"
        finally:
            await peer.close()


@pytest.mark.parametrize("hdlc", TRANSPORTS)
async def test_gurux_sn_client_writes_and_invokes(hdlc: bool) -> None:
    async with sn_meter(hdlc) as (sim, t0):
        meter = sim.fleet.meters[0].meter
        peer = await connect(sim, hdlc, 0xFFFF)
        try:
            objects = await peer.object_list()
            alarm = objects.findByLN(ObjectType.DATA, ALARM_FILTER)
            alarm.value = 0x1234
            alarm.setDataType(2, DataType.UINT32)
            await peer.write(alarm, 2)
            assert plain(held(sim, t0, 1, ALARM_FILTER, 2, 1)) == 0x1234
            disconnect = objects.findByLN(ObjectType.DISCONNECT_CONTROL, DISCONNECT)
            assert meter.disconnect.output_state
            await peer.exchange(peer.client.method(disconnect, 1, 0, DataType.INT8))
            assert not meter.disconnect.output_state
        finally:
            await peer.close()
