"""Interoperability: our client session against a meter built on the Gurux
DLMS server (third party), over the wrapper on TCP.

What Gurux's Python server (gurux-dlms 1.0.x) can do, and so what is covered:
association without security (public client 16) and with LLS (management
client 1), a refused LLS password, GET of the object list, the clock, the
registers with scaler/unit, a Data value and the whole load profile in one
APDU, and GET with selective access by entry and by range (the rows are
chosen by our test peer per the Blue Book because Gurux's own selection code
fails; Gurux still encodes the response). See gurux_meter.py for the shims.

With the shims of gurux_meter.py (each a defect of Gurux 1.0.x, named there):
SET normal and with-list, ACTION (the disconnect control, the clock's
shift_time), GET of an undefined object, and HLS-GMAC (pass 3/4 computed by the
test peer, the server's invocation counter advanced): :func:`test_set_and_action`
and :func:`test_hls_gmac_association`. Gurux's HLS-GMAC AARE keeps its own quirk
(an ACSE field whose outer length disagrees with its inner value), which the
client must tolerate (issue 10 item 1): strict xfail while the core lacks that.

What the Gurux Python server still cannot do, so is not covered here (each fails
inside Gurux, not in our client): HDLC (SNRM is answered with an error frame:
``handleSnrmRequest`` dereferences a missing HDLC setup) and get-request-next
(block 2 carries a wrong length). Those exchanges are proven against the Gurux
*client* instead (test_interop_gurux_client.py) and the recorded traces
(test_interop_traces.py).

Gurux's RLRE is malformed (RLRE length 0x0e for 20 content bytes, user
information length 0x0f for 16): these sessions do not release
(``release=False``); :func:`test_close_after_malformed_rlre` checks that our
client's close() still ends such a session cleanly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from smmc_gateway import _core
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    DataAccessError,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import WrapperTransport

from tests.interop.gurux_meter import (
    ENERGY,
    LIMITER,
    PASSWORD,
    ROWS,
    SERIAL,
    START,
    GuruxMeter,
    serving,
)

ACSE_TOLERANT = "acse-field-length" in {q[0] for q in getattr(_core, "known_quirks", list)()}
KEYS = {"ek": bytes(range(16)), "ak": bytes(range(16, 32))}

LOAD_PROFILE = "1.0.99.1.0.255"


def settings(auth: str, *, release: bool = False, password: bytes = PASSWORD) -> SessionSettings:
    return SessionSettings(
        client_sap=16 if auth == "none" else 1,
        security=Security.none() if auth == "none" else Security.lls(password),
        response_timeout=3.0,
        operation_timeout=10.0,
        association_timeout=10.0,
        release=release,
    )


def expected_row(i: int) -> tuple[datetime, int, int]:
    return (START + timedelta(minutes=15 * i), i % 4, 100_000 + 250 * i)


@pytest.mark.parametrize("auth", ["none", "lls"])
async def test_client_reads_a_gurux_meter(auth: str) -> None:
    meter = GuruxMeter(hdlc=False, auth=auth)
    async with serving(meter) as served:
        transport = WrapperTransport.tcp(
            "127.0.0.1", served.port, client_sap=settings(auth).client_sap
        )
        async with ClientSession(transport, settings(auth)) as session:
            assert {"get", "selective-access"} <= set(session.conformance)

            model = await session.read_object_model()
            assert {(o.class_id, str(o.obis)) for o in model} >= {
                (15, "0.0.40.0.0.255"),
                (8, "0.0.1.0.0.255"),
                (7, LOAD_PROFILE),
                (70, "0.0.96.3.10.255"),
                *((3, obis) for obis in ENERGY),
            }

            clock = await session.get(8, "0.0.1.0.0.255", 2)
            assert clock["datetime"].startswith("2024-03-02T00:00:00")
            device = await session.get(1, "0.0.96.1.0.255", 2)
            assert bytes.fromhex(device["value"]) == SERIAL
            for obis, (value, scaler, unit) in ENERGY.items():
                assert (await session.get(3, obis, 2))["value"] == value
                got = await session.get(3, obis, 3)
                assert [v["value"] for v in got["value"]] == [scaler, int(unit)]

            rows = await session.read_profile(LOAD_PROFILE)
            assert rows == [expected_row(i) for i in range(ROWS)]
            rows = await session.read_profile(LOAD_PROFILE, from_entry=5, to_entry=44)
            assert rows == [expected_row(i) for i in range(4, 44)]
            start = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
            rows = await session.read_profile(
                LOAD_PROFILE, start=start, end=start + timedelta(hours=2)
            )
            assert rows == [expected_row(i) for i in range(8, 17)]
            assert meter.selections == [(2, 40), (1, 9)]
        assert "connected" in meter.events


async def test_wrong_password_is_refused_by_gurux() -> None:
    meter = GuruxMeter(hdlc=False, auth="lls")
    async with serving(meter) as served:
        transport = WrapperTransport.tcp("127.0.0.1", served.port, client_sap=1)
        session = ClientSession(transport, settings("lls", password=b"wrong-pw"))
        with pytest.raises(AssociationRefused) as refused:
            await session.open()
        assert "authentication-failure" in str(refused.value)
        assert "refused password" in meter.events


async def test_close_after_malformed_rlre() -> None:
    meter = GuruxMeter(hdlc=False, auth="none")
    async with serving(meter) as served:
        transport = WrapperTransport.tcp("127.0.0.1", served.port, client_sap=16)
        session = ClientSession(transport, settings("none", release=True))
        await session.open()
        await session.get(8, "0.0.1.0.0.255", 2)
        # Gurux answers the RLRQ with a malformed RLRE: close() still ends the
        # session without raising (it was a leaked _core.ApduError until 656c34b).
        await session.close()
        assert not session.associated


async def test_set_and_action() -> None:
    meter = GuruxMeter(hdlc=False, auth="lls")
    async with serving(meter) as served:
        transport = WrapperTransport.tcp("127.0.0.1", served.port, client_sap=1)
        async with ClientSession(transport, settings("lls")) as session:
            await session.action(70, "0.0.96.3.10.255", 1, {"type": "integer", "value": 0})
            assert (meter.disconnect.outputState, meter.disconnect.controlState) == (False, 0)
            got = await session.get_all([(70, "0.0.96.3.10.255", 2), (70, "0.0.96.3.10.255", 3)])
            assert [v["value"] for v in got] == [False, 0]
            await session.action(70, "0.0.96.3.10.255", 2, {"type": "integer", "value": 0})
            assert (meter.disconnect.outputState, meter.disconnect.controlState) == (True, 1)
            # one SET with-list (Gurux drops it unshimmed), read back
            await session.set_all(
                [(71, LIMITER, 4), (71, LIMITER, 6)],
                [
                    {"type": "double-long-unsigned", "value": 4321},
                    {"type": "double-long-unsigned", "value": 15},
                ],
            )
            assert (meter.limiter.thresholdNormal, meter.limiter.minOverThresholdDuration) == (
                4321,
                15,
            )
            assert (await session.get(71, LIMITER, 3))["value"] == 4321
            await session.action(8, "0.0.1.0.0.255", 6, {"type": "long", "value": -30})
            clock = await session.get(8, "0.0.1.0.0.255", 2)
            assert clock["datetime"].startswith("2024-03-01T23:59:30")
            assert meter.shifts == [-30]
            # a GET of an object the meter lacks answers object-undefined with our invoke id
            with pytest.raises(DataAccessError) as missing:
                await session.get(7, "0.0.99.98.1.255", 2)
            assert missing.value.result == "object-undefined"


@pytest.mark.xfail(
    not ACSE_TOLERANT,
    strict=True,
    reason="the Gurux AARE's responding-authentication-value AA 10 80 10 <16 bytes> "
    "(outer length 16, inner value 18 bytes) is refused: quirk acse-field-length not "
    "tolerated by the compiled core (issue 10 item 1)",
)
async def test_hls_gmac_association() -> None:
    meter = GuruxMeter(hdlc=False, auth="hls-gmac", keys=KEYS)
    security = Security.hls_gmac(system_title=b"SMMC0001", ek=KEYS["ek"], ak=KEYS["ak"])
    hls = SessionSettings(
        client_sap=1,
        security=security,
        response_timeout=3.0,
        operation_timeout=10.0,
        association_timeout=10.0,
        release=False,
    )
    async with serving(meter) as served:
        transport = WrapperTransport.tcp("127.0.0.1", served.port, client_sap=1)
        async with ClientSession(transport, hls) as session:
            for obis, (value, _, _) in ENERGY.items():
                assert (await session.get(3, obis, 2))["value"] == value
            await session.action(70, "0.0.96.3.10.255", 1, {"type": "integer", "value": 0})
    assert meter.disconnect.outputState is False
    assert "refused f(StoC)" not in meter.events and "connected" in meter.events


@pytest.mark.parametrize("tamper", ["tag", "counter", "short"])
def test_the_gurux_peer_checks_f_stoc(tamper: str) -> None:
    """The test peer's pass 3 (shim 7) is no rubber stamp: f(StoC) is checked."""
    from types import SimpleNamespace

    from gurux_dlms.enums import Authentication, ErrorCode
    from gurux_dlms.objects.enums import AssociationStatus

    from tests.interop.gurux_meter import SYSTEM_TITLE, gmac_value

    meter = GuruxMeter(hdlc=False, auth="hls-gmac", keys=KEYS)
    settings = meter.settings
    settings.authentication = Authentication.HIGH_GMAC  # as an AARQ for it leaves it
    settings.sourceSystemTitle = bytearray(b"SMMC0001")
    settings.stoCChallenge = bytearray(b"S" * 16)
    settings.ctoSChallenge = bytearray(b"C" * 16)
    association = meter.items[0]
    good = gmac_value(KEYS["ek"], KEYS["ak"], b"SMMC0001", 7, b"S" * 16)
    e = SimpleNamespace(index=1, parameters=bytearray(good), error=ErrorCode.OK)
    answer = association.invoke(settings, e)
    assert association.associationStatus == AssociationStatus.ASSOCIATED
    ic = int.from_bytes(bytes(answer)[1:5], "big")
    assert bytes(answer) == gmac_value(KEYS["ek"], KEYS["ak"], SYSTEM_TITLE, ic, b"C" * 16)
    bad = {
        "tag": good[:-1] + bytes([good[-1] ^ 1]),
        "counter": good[:1] + (8).to_bytes(4, "big") + good[5:],
        "short": good[:-1],
    }[tamper]
    e = SimpleNamespace(index=1, parameters=bytearray(bad), error=ErrorCode.OK)
    assert association.invoke(settings, e) is None
    assert association.associationStatus == AssociationStatus.NON_ASSOCIATED
    assert e.error == ErrorCode.OTHER_REASON and "refused f(StoC)" in meter.events
