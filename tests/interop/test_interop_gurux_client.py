"""Interoperability: the Gurux DLMS client (third party) against our simulator.

Every exchange goes over real TCP (HDLC or the IEC 62056-47 wrapper) between
Gurux's ``GXDLMSClient`` and a simulated meter served in this event loop. What
Gurux decodes is compared with what the simulated meter holds (read directly
from the ``SimulatedMeter`` with the same clock instant: the fleet's clock is
held still for the test so both sides see the same readings).

Covered: SNRM/UA, AARQ/AARE with no security (public client 16), LLS and
HLS-GMAC (suite 0, authenticated + encrypted, the reply_to_HLS_authentication
step) for the management client 1; the object list; the clock; the four energy
registers with scaler/unit; the load profile by range and by entry (blocks);
SET of a Data value, of the clock and of the disconnect control mode; the
Disconnect control methods; RLRQ/RLRE and DISC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

gurux_dlms = pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from gurux_dlms import GXDateTime, GXDLMSException  # noqa: E402
from gurux_dlms.enums import Authentication, DataType  # noqa: E402
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

from tests.interop.gurux_peer import GuruxPeer  # noqa: E402
from tests.interop.replay_peer import split_wrapper  # noqa: E402
from tests.interop.sim_values import (  # noqa: E402
    CLOCK,
    ENERGY,
    LOAD_PROFILE,
    TRANSPORTS,
    held,
    instant,
    plain,
    still_fleet,
)
from tests.support_sim import RunningFleet  # noqa: E402

ALARM_FILTER = "0.0.97.98.10.255"
DISCONNECT = "0.0.96.3.10.255"
GURUX_TITLE = b"GRX00001"


def gurux_utc(value: GXDateTime) -> datetime:
    moment = value.value
    assert isinstance(moment, datetime) and moment.tzinfo is not None, value
    return moment


def assert_rows_equal(gurux_rows: list[list[Any]], sim_rows: list[Any]) -> None:
    assert len(gurux_rows) == len(sim_rows)
    for got, want in zip(gurux_rows, sim_rows, strict=True):
        want_plain = plain(want)
        assert len(got) == len(want_plain)
        assert gurux_utc(got[0]) == instant(want_plain[0])
        assert list(got[1:]) == want_plain[1:]


async def check_clock_and_registers(
    peer: GuruxPeer, sim: RunningFleet, t0: datetime, client: int
) -> None:
    clock = GXDLMSClock(CLOCK)
    await peer.read(clock, 2)
    raw = plain(held(sim, t0, 8, CLOCK, 2, client))
    assert gurux_utc(clock.time) == instant(raw)
    deviation = int.from_bytes(raw[9:11], "big", signed=True)  # minutes local -> UTC
    assert clock.time.value.utcoffset() == timedelta(minutes=-deviation)
    assert int(clock.time.status) == raw[11]
    await peer.read(clock, 3)
    assert clock.timeZone == plain(held(sim, t0, 8, CLOCK, 3, client))
    for obis in ENERGY:
        register = GXDLMSRegister(obis)
        await peer.read(register, 3)
        await peer.read(register, 2)
        scaler, unit = plain(held(sim, t0, 3, obis, 3, client))
        assert register.value == plain(held(sim, t0, 3, obis, 2, client))
        assert register.scaler == 10.0**scaler
        assert int(register.unit) == unit


@pytest.mark.parametrize("hdlc", TRANSPORTS)
async def test_public_client_no_security(hdlc: bool) -> None:
    async with still_fleet("lls", hdlc=hdlc) as (sim, t0):
        peer = await GuruxPeer.connect(sim.ports[0], hdlc=hdlc, client_address=16)
        try:
            await peer.open()
            objects = await peer.object_list()
            listed = plain(sim.fleet.meters[0].meter.object_list(16))
            assert [(int(o.objectType), o.version, o.logicalName) for o in objects] == [
                (cls, ver, ".".join(str(b) for b in ln)) for cls, ver, ln, _rights in listed
            ]
            for obj, (_cls, _ver, _ln, (attr_rights, method_rights)) in zip(
                objects, listed, strict=True
            ):
                assert [int(obj.getAccess(a)) for a, _m, _s in attr_rights] == [
                    m for _a, m, _s in attr_rights
                ]
                assert [int(obj.getMethodAccess(m)) for m, _acc in method_rights] == [
                    int(acc) for _m, acc in method_rights
                ]
            await check_clock_and_registers(peer, sim, t0, 16)
            await peer.release()
        finally:
            await peer.close()


def management_peer_args(sim: RunningFleet, auth: str) -> dict[str, Any]:
    info = sim.info[0]
    if auth == "lls":
        return {"authentication": Authentication.LOW, "password": info["password"].encode()}
    return {
        "authentication": Authentication.HIGH_GMAC,
        "ciphering": {
            "system_title": GURUX_TITLE,
            "ek": bytes.fromhex(info["ek"]),
            "ak": bytes.fromhex(info["ak"]),
        },
    }


@pytest.mark.parametrize("hdlc", TRANSPORTS)
@pytest.mark.parametrize("auth", ["lls", "hls-gmac"])
async def test_management_client(auth: str, hdlc: bool) -> None:
    async with still_fleet(auth, hdlc=hdlc) as (sim, t0):
        meter = sim.fleet.meters[0].meter
        peer = await GuruxPeer.connect(
            sim.ports[0],
            hdlc=hdlc,
            client_address=1,
            max_pdu=512,  # the meter must answer long GETs in blocks of at most 512
            **management_peer_args(sim, auth),
        )
        try:
            await peer.open()
            await check_clock_and_registers(peer, sim, t0, 1)

            # Load profile: capture objects, then rows by range and by entry.
            profile = GXDLMSProfileGeneric(LOAD_PROFILE)
            for attr in (3, 4, 7):
                await peer.read(profile, attr)
            assert profile.capturePeriod == 900
            captured = plain(held(sim, t0, 7, LOAD_PROFILE, 3, 1))
            assert [
                (int(obj.objectType), obj.logicalName, att.attributeIndex)
                for obj, att in profile.captureObjects
            ] == [(c, ".".join(map(str, ln)), a) for c, ln, a, _d in captured]
            buffer = held(sim, t0, 7, LOAD_PROFILE, 2, 1)["value"]
            assert profile.entriesInUse == len(buffer)

            start, end = t0 - timedelta(hours=6), t0 - timedelta(hours=1)
            rows = await peer.rows_by_range(profile, start, end)
            expected = [r for r in buffer if start <= instant(plain(r)[0]) <= end]
            assert len(expected) >= 19
            assert_rows_equal(rows, expected)

            before = peer.followups
            rows = await peer.rows_by_entry(profile, 5, 40)  # 40 rows: several blocks
            assert peer.followups > before
            assert_rows_equal(rows, buffer[4:44])

            # SET: a Data value, the clock, the disconnect control mode.
            alarm_filter = GXDLMSData(ALARM_FILTER)
            alarm_filter.value = 0x0F0F0F0F
            alarm_filter.setDataType(2, DataType.UINT32)
            await peer.write(alarm_filter, 2)
            assert held(sim, t0, 1, ALARM_FILTER, 2, 1) == {
                "type": "double-long-unsigned",
                "value": 0x0F0F0F0F,
            }

            clock = GXDLMSClock(CLOCK)
            await peer.read(clock, 2)
            target = gurux_utc(clock.time) - timedelta(minutes=7)
            clock.time = GXDateTime(target)
            await peer.write(clock, 2)
            new_time = instant(plain(held(sim, t0, 8, CLOCK, 2, 1)))
            assert abs(new_time - target.replace(microsecond=0)) < timedelta(seconds=1)

            disconnect = GXDLMSDisconnectControl(DISCONNECT)
            disconnect.controlMode = 4  # Blue Book: mode 4 (remote reconnect direct)
            await peer.write(disconnect, 4)
            assert held(sim, t0, 70, DISCONNECT, 4, 1) == {"type": "enum", "value": 4}

            # ACTION: remote_disconnect, remote_reconnect (read back both ways).
            await peer.exchange(disconnect.remoteDisconnect(peer.client))
            await peer.read(disconnect, 2)
            await peer.read(disconnect, 3)
            assert (disconnect.outputState, int(disconnect.controlState)) == (False, 0)
            assert meter.disconnect.control_state == 0
            await peer.exchange(disconnect.remoteReconnect(peer.client))
            await peer.read(disconnect, 2)
            await peer.read(disconnect, 3)
            assert (disconnect.outputState, int(disconnect.controlState)) == (True, 1)
            assert meter.disconnect.output_state

            await peer.release()
        finally:
            await peer.close()


@pytest.mark.parametrize("hdlc", TRANSPORTS)
async def test_get_with_list(hdlc: bool) -> None:
    """Gurux's GET with-list (multiple references) of the registers and the clock."""
    async with still_fleet("lls", hdlc=hdlc) as (sim, t0):
        peer = await GuruxPeer.connect(
            sim.ports[0], hdlc=hdlc, client_address=1, **management_peer_args(sim, "lls")
        )
        try:
            await peer.open()
            registers = [GXDLMSRegister(obis) for obis in ENERGY]
            clock = GXDLMSClock(CLOCK)
            items = [*((r, 2) for r in registers), (clock, 2)]
            values: list[Any] = []
            for request in peer.client.readList(items):
                values.extend((await peer.exchange(request)).value)
            peer.client.updateValues(items, values)
            assert [r.value for r in registers] == [
                plain(held(sim, t0, 3, obis, 2, 1)) for obis in ENERGY
            ]
            assert gurux_utc(clock.time) == instant(plain(held(sim, t0, 8, CLOCK, 2, 1)))
            await peer.release()
        finally:
            await peer.close()


@pytest.mark.parametrize(
    ("auth", "diagnostic"),
    # acse-service-user 13: authentication-failure; 1: no-reason-given (with the
    # InitiateError ConfirmedServiceError in the user-information)
    [("lls", 13), ("hls-gmac", 1)],
)
async def test_refusals_reach_gurux(auth: str, diagnostic: int) -> None:
    """A wrong LLS password is refused in the AARE (Gurux raises with the
    diagnostic); wrong HLS keys fail the ciphered InitiateRequest (Green Book:
    the AARE then carries a ConfirmedServiceError, which Gurux reports)."""
    async with still_fleet(auth, hdlc=False) as (sim, _t0):
        args = management_peer_args(sim, auth)
        if auth == "lls":
            args["password"] = b"not-the-password"
        else:
            args["ciphering"]["ek"] = bytes(16)
        peer = await GuruxPeer.connect(sim.ports[0], hdlc=False, client_address=1, **args)
        try:
            with pytest.raises(GXDLMSException) as refused:
                await peer.open()
            assert int(refused.value.diagnostic) == diagnostic
            assert int(refused.value.result) == 1  # rejected-permanent
        finally:
            await peer.close()


async def test_hls_gmac_with_dedicated_key() -> None:
    """Gurux sends a dedicated key in its ciphered InitiateRequest, then
    general-ded-ciphering (0xDC) APDUs: the simulator must answer in kind."""
    async with still_fleet("hls-gmac", hdlc=False) as (sim, t0):
        peer = await GuruxPeer.connect(
            sim.ports[0],
            hdlc=False,
            client_address=1,
            max_pdu=512,
            **management_peer_args(sim, "hls-gmac"),
        )
        peer.client.settings.cipher.dedicatedKey = bytearray(range(0x40, 0x50))
        try:
            await peer.open()
            start = len(peer.trace)
            register = GXDLMSRegister(ENERGY[0])
            await peer.read(register, 2)
            assert register.value == plain(held(sim, t0, 3, ENERGY[0], 2, 1))
            profile = GXDLMSProfileGeneric(LOAD_PROFILE)
            await peer.read(profile, 3)
            rows = await peer.rows_by_entry(profile, 1, 30)
            assert_rows_equal(rows, held(sim, t0, 7, LOAD_PROFILE, 2, 1)["value"][:30])
            for direction in (">>", "<<"):
                stream = bytearray(b"".join(b for d, b in peer.trace[start:] if d == direction))
                assert {frame[8] for frame in split_wrapper(stream)} == {0xDC}, direction
            await peer.release()
        finally:
            await peer.close()
