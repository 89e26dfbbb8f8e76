"""Short-name (SN) referencing end to end: the client session against the
simulator serving SN (``simulate --referencing sn``) over TCP (wrapper) and
HDLC, the object list resolving ``CLASS/OBIS/ATTR``, reads in blocks,
writes, methods, ``auto`` falling back from LN to SN, and an LN-only client
refused by the SN meter with the context diagnostic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms import sn
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    DataAccessError,
    ProtocolError,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport

from tests.support_sim import FleetSpec, running_fleet

PASSWORD = b"pw123456"
ENERGY = (3, "1.0.1.8.0.255", 2)
CLOCK = (8, "0.0.1.0.0.255", 2)
LOAD_PROFILE = "1.0.99.1.0.255"


@pytest.fixture(autouse=True)
def _forget_short_names() -> Iterator[None]:
    """Short names and learnt referencing are kept per meter id in the process:
    none leaks into other tests (the simulator's meter ids repeat)."""
    sn.forget_short_names()
    yield
    sn.forget_short_names()


def transport(kind: str, port: int) -> Transport:
    if kind == "hdlc":
        return HdlcTransport.tcp("127.0.0.1", port, HdlcSettings(client_address=1))
    return WrapperTransport.tcp("127.0.0.1", port, client_sap=1)


def settings(referencing: Any, **kw: Any) -> SessionSettings:
    return SessionSettings(
        client_sap=1, security=Security.lls(PASSWORD), referencing=referencing, **kw
    )


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
async def test_sn_session_reads_writes_and_invokes(kind: str) -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=1, referencing="sn")
    async with running_fleet(spec, hdlc=kind == "hdlc") as sim:
        meter = sim.fleet.meters[0].meter
        async with ClientSession(transport(kind, sim.ports[0]), settings("sn"), meter_id="m0") as s:
            assert s.referencing == "sn"
            assert "read" in s.conformance and "get" not in s.conformance
            energy = _core.decode(await s.get_raw(*ENERGY))
            assert energy["type"] == "double-long-unsigned"
            clock = await s.get(*CLOCK)
            assert clock["type"] == "octet-string"
            many = await s.get_many([ENERGY, (3, "1.0.99.99.0.255", 2)])
            assert isinstance(many[0], bytes)
            assert isinstance(many[1], DataAccessError)
            assert str(many[1]) == "3/1.0.99.99.0.255/2: object-undefined"
            # Write: the limiter threshold, read back.
            await s.set(71, "0.0.17.0.0.255", 4, {"type": "double-long-unsigned", "value": 7777})
            assert _core.decode(await s.get_raw(71, "0.0.17.0.0.255", 4))["value"] == 7777
            # Method (Write to the method's short name): disconnect, then reconnect.
            await s.action(70, "0.0.96.3.10.255", 1, {"type": "integer", "value": 0})
            assert meter.disconnect.output_state is False
            await s.action(70, "0.0.96.3.10.255", 2, {"type": "integer", "value": 0})
            assert meter.disconnect.control_state == 2, "mode 5: ready for reconnection"
            assert _core.decode(await s.get_raw(70, "0.0.96.3.10.255", 3))["value"] == 2
            # Selective access (parameterized-access) on the load profile.
            now = sim.fleet.now()
            rows = await s.read_profile(LOAD_PROFILE, start=now - timedelta(hours=6), end=now)
            assert 23 <= len(rows) <= 25


async def test_sn_read_in_blocks() -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=1, referencing="sn")
    async with running_fleet(spec) as sim:
        session = ClientSession(
            transport("wrapper", sim.ports[0]), settings("sn", max_pdu_size=128)
        )
        async with session as s:
            before = s.counters.apdus_received
            rows = await s.read_profile(LOAD_PROFILE, from_entry=1, to_entry=40)
            assert len(rows) == 40
            assert s.counters.apdus_received - before > 10, "the answer came in data-block-results"


async def test_auto_falls_back_to_sn_and_ln_only_is_refused() -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with running_fleet(spec) as sim:
        port = sim.ports[0]
        with pytest.raises(AssociationRefused) as refused:
            await ClientSession(transport("wrapper", port), settings("ln")).open()
        assert refused.value.diagnostic == "application-context-name-not-supported"
        async with ClientSession(transport("wrapper", port), settings("auto"), meter_id="m1") as s:
            assert s.referencing == "sn"
            assert _core.decode(await s.get_raw(*ENERGY))["type"] == "double-long-unsigned"
    # An LN meter with auto stays LN.
    ln_meter = FleetSpec(auth="lls", password=PASSWORD, history_days=0)
    async with (
        running_fleet(ln_meter) as sim,
        ClientSession(transport("wrapper", sim.ports[0]), settings("auto")) as s,
    ):
        assert s.referencing == "ln"
        assert "get" in s.conformance


async def test_object_list_is_kept_per_meter() -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with running_fleet(spec) as sim:
        for expected_reads in (1, 0):
            session = ClientSession(
                transport("wrapper", sim.ports[0]), settings("sn"), meter_id="k"
            )
            async with session as s:
                sent = s.counters.apdus_sent
                await s.get_raw(*ENERGY)
                assert s.counters.apdus_sent - sent == 1
                # AARQ + object list reads (if any) + our read.
                assert sent == 1 + expected_reads


def test_settings_refuse_unknown_referencing() -> None:
    with pytest.raises(ValueError, match="referencing 'xn'"):
        SessionSettings(referencing="xn")  # type: ignore[arg-type]


async def test_auto_with_hls_gmac_names_why_there_is_no_sn_fallback() -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with running_fleet(spec) as sim:
        security = Security.hls_gmac(system_title=b"SMMCTEST", ek=bytes(16), ak=bytes(16))
        session = ClientSession(
            transport("wrapper", sim.ports[0]),
            SessionSettings(client_sap=1, security=security, referencing="auto"),
        )
        with pytest.raises(AssociationRefused) as refused:
            await session.open()
    assert refused.value.diagnostic == "application-context-name-not-supported"
    assert "no SN fallback" in str(refused.value) and "HLS-GMAC" in str(refused.value)


async def test_object_model_from_the_sn_object_list_and_access_rights() -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with (
        running_fleet(spec) as sim,
        ClientSession(transport("wrapper", sim.ports[0]), settings("sn")) as s,
    ):
        model = await s.read_object_model()
    clock = model.get("0.0.1.0.0.255")
    assert clock is not None and clock.class_id == 8
    assert clock.can_read(2) and clock.can_write(2)
    limiter = model.get("0.0.17.0.0.255")
    assert limiter is not None and limiter.can_write(4)
    association = model.get("0.0.40.0.0.255")
    assert association is not None and association.class_id == 12
    assert not association.attributes, "the meter gives no rights for its own association"
    assert len(model.of_class(3)) >= 4


async def test_unconfirmed_write_takes_and_is_refused_with_ln() -> None:
    value = {"type": "double-long-unsigned", "value": 5150}
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with (
        running_fleet(spec) as sim,
        ClientSession(transport("wrapper", sim.ports[0]), settings("sn")) as s,
    ):
        sent = s.counters.apdus_sent
        await sn.write_unconfirmed(s, 71, "0.0.17.0.0.255", 4, value)
        assert s.counters.apdus_sent == sent + 1
        assert _core.decode(await s.get_raw(71, "0.0.17.0.0.255", 4))["value"] == 5150
    ln_meter = FleetSpec(auth="lls", password=PASSWORD, history_days=0)
    async with (
        running_fleet(ln_meter) as sim,
        ClientSession(transport("wrapper", sim.ports[0]), settings("ln")) as s,
    ):
        with pytest.raises(ProtocolError, match="needs an open short-name association"):
            await sn.write_unconfirmed(s, 71, "0.0.17.0.0.255", 4, value)


async def test_auto_remembers_an_sn_meter_and_a_replaced_one() -> None:
    def session(port: int) -> ClientSession:
        return ClientSession(transport("wrapper", port), settings("auto"), meter_id="learn")

    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, referencing="sn")
    async with running_fleet(spec) as sim:
        for sent_at_open in (3, 1):  # LN AARQ + SN AARQ + object list; then SN AARQ only
            async with session(sim.ports[0]) as s:
                assert s.referencing == "sn"
                assert s.counters.apdus_sent == sent_at_open
    # The meter was replaced by an LN one: the learnt SN is refused, LN taken and kept.
    ln_meter = FleetSpec(auth="lls", password=PASSWORD, history_days=0)
    async with running_fleet(ln_meter) as sim:
        for sent_at_open in (2, 1):
            async with session(sim.ports[0]) as s:
                assert s.referencing == "ln"
                assert s.counters.apdus_sent == sent_at_open
