"""Interoperability: our client session against a meter built on the Gurux
DLMS server (third party), over the wrapper on TCP.

What Gurux's Python server (gurux-dlms 1.0.x) can do, and so what is covered:
association without security (public client 16) and with LLS (management
client 1), a refused LLS password, GET of the object list, the clock, the
registers with scaler/unit, a Data value and the whole load profile in one
APDU, and GET with selective access by entry and by range (the rows are
chosen by our test peer per the Blue Book because Gurux's own selection code
fails; Gurux still encodes the response). See gurux_meter.py for the shims.

What the Gurux Python server cannot do in this version, so is not covered
here (each fails inside Gurux, not in our client): HDLC (SNRM is answered
with an error frame: ``handleSnrmRequest`` dereferences a missing HDLC setup),
HLS-GMAC (``GXByteBuffer.setUInt8`` called without its argument), SET and
ACTION (``list(ValueEventArgs)``), get-request-next (block 2 carries a wrong
length). Those exchanges are proven against the Gurux *client* instead
(test_interop_gurux_client.py) and the recorded traces (test_interop_traces.py).

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

from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import WrapperTransport

from tests.interop.gurux_meter import (
    ENERGY,
    PASSWORD,
    ROWS,
    SERIAL,
    START,
    GuruxMeter,
    serving,
)

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
