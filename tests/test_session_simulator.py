"""Integration: the client session against the project's simulator over TCP
(wrapper, and HDLC over TCP), at every security level; block transfer both
ways; wrong keys; a meter that hangs mid-session."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    DataAccessError,
    LinkLost,
    MeterTimeout,
    Security,
    SecurityFailure,
    SessionSettings,
)
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport
from smmc_gateway.simulator.faults import FaultOptions

from tests.support_sim import FleetSpec, running_fleet

PASSWORD = b"pw123456"
CLOCK = (8, "0.0.1.0.0.255", 2)
ENERGY = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]
LOAD_PROFILE = "1.0.99.1.0.255"
PUSH_SETUP = "0.0.25.9.0.255"
IMAGE = "0.0.44.0.0.255"


def security(auth: str, info: dict[str, Any], **kw: Any) -> Security:
    if auth == "lls":
        return Security.lls(PASSWORD)
    if auth == "hls-gmac":
        # A fresh store per simulated meter: each test's simulator starts its
        # counters anew, as a real meter with new keys would.
        return Security.hls_gmac(
            system_title=b"SMMCTEST",
            ek=bytes.fromhex(info["ek"]),
            ak=bytes.fromhex(info["ak"]),
            ic_store=InvocationCounterStore(":memory:"),
            **kw,
        )
    return Security.none()


def transport(kind: str, port: int, **hdlc: Any) -> Transport:
    if kind == "hdlc":
        return HdlcTransport.tcp("127.0.0.1", port, HdlcSettings(client_address=1, **hdlc))
    return WrapperTransport.tcp("127.0.0.1", port, client_sap=1)


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
@pytest.mark.parametrize("auth", ["none", "lls", "hls-gmac"])
async def test_complete_read_at_every_security_level(auth: str, kind: str) -> None:
    spec = FleetSpec(auth=auth, password=PASSWORD, history_days=2)
    async with running_fleet(spec, hdlc=kind == "hdlc") as sim:
        settings = SessionSettings(client_sap=1, security=security(auth, sim.info[0]))
        session = ClientSession(transport(kind, sim.ports[0]), settings, meter_id="m0")
        async with session as s:
            assert s.ciphered == (auth == "hls-gmac")
            assert "get" in s.conformance and s.max_pdu_size > 0
            clock = await s.get(*CLOCK)
            assert clock["type"] == "octet-string" and "datetime" in clock
            registers = await s.get_many([*ENERGY, (3, "1.0.99.99.0.255", 2)])
            assert all(isinstance(r, bytes) for r in registers[:4])
            assert [_core.decode(r)["type"] for r in registers[:4]] == [  # type: ignore[arg-type]
                "double-long-unsigned"
            ] * 4
            missing = registers[4]
            assert isinstance(missing, DataAccessError)
            assert str(missing) == "3/1.0.99.99.0.255/2: object-undefined"
            now = sim.fleet.now()
            rows = await s.read_profile(LOAD_PROFILE, start=now - timedelta(days=1), end=now)
            assert 95 <= len(rows) <= 97
            stamps = [r[0] for r in rows]
            assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(stamps))
            assert now - timedelta(days=1, minutes=15) <= stamps[0] and stamps[-1] <= now
            assert s.counters.bytes_received > 96 * 20
        assert not s.associated


async def test_read_by_entry_and_selected_columns() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=1)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(PASSWORD))
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            first = await s.read_profile(LOAD_PROFILE, from_entry=1, to_entry=10)
            assert len(first) == 10
            now = sim.fleet.now()
            columns = [(8, "0.0.1.0.0.255", 2, 0), (3, "1.0.1.8.0.255", 2, 0)]
            narrow = await s.read_profile(
                LOAD_PROFILE, start=now - timedelta(hours=2), end=now, columns=columns
            )
            assert narrow and all(len(r) == 2 for r in narrow)


async def test_object_model_from_the_association_object_list() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=0)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(PASSWORD))
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            model = await s.read_object_model()
    clock = model.get("0.0.1.0.0.255")
    assert clock is not None and clock.class_id == 8
    assert clock.can_read(2)
    assert model.get(Obis.parse(LOAD_PROFILE)) is not None
    assert len(model.of_class(3)) >= 4


@pytest.mark.parametrize("auth", ["lls", "hls-gmac"])
async def test_block_transfer_both_ways(auth: str) -> None:
    spec = FleetSpec(auth=auth, password=PASSWORD, history_days=1)
    async with running_fleet(spec) as sim:
        settings = SessionSettings(
            client_sap=1,
            security=security(auth, sim.info[0]),
            max_pdu_size=160,  # the meter must answer long GETs in blocks
            max_send_pdu=64,  # and we must SET/ACTION in blocks (a value > 64 bytes)
        )
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            before = s.counters.apdus_received
            rows = await s.read_profile(LOAD_PROFILE, from_entry=1, to_entry=40)
            assert len(rows) == 40
            assert s.counters.apdus_received - before > 5  # it came in blocks
            # SET in datablocks: the push object list, reversed, then read back.
            objects = await s.get(40, PUSH_SETUP, 2)
            new = {"type": "array", "value": list(reversed(objects["value"]))}
            assert len(_core.encode(new)) > 64
            sent = s.counters.apdus_sent
            await s.set(40, PUSH_SETUP, 2, new)
            assert s.counters.apdus_sent - sent > 1
            assert await s.get(40, PUSH_SETUP, 2) == new
            # ACTION in pblocks: one 192-byte image block.
            size = await s.get(18, IMAGE, 2)
            block = bytes(range(256))[: size["value"]]
            init = {
                "type": "structure",
                "value": [
                    {"type": "octet-string", "value": b"img-1".hex()},
                    {"type": "double-long-unsigned", "value": len(block)},
                ],
            }
            assert await s.action(18, IMAGE, 1, init) is None
            sent = s.counters.apdus_sent
            params = {
                "type": "structure",
                "value": [
                    {"type": "double-long-unsigned", "value": 0},
                    {"type": "octet-string", "value": block.hex()},
                ],
            }
            await s.action(18, IMAGE, 2, params)
            assert s.counters.apdus_sent - sent > 2
            assert await s.action(18, IMAGE, 3) is None  # verify: the image is complete


async def test_set_and_action_errors_are_typed() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=0)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(PASSWORD))
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            with pytest.raises(DataAccessError, match=r"^3/1.0.1.8.0.255/2: ") as err:
                await s.set(3, "1.0.1.8.0.255", 2, {"type": "double-long-unsigned", "value": 0})
            assert err.value.result in ("read-write-denied", "scope-of-access-violated")
            with pytest.raises(DataAccessError, match=r"^18/0.0.44.0.0.255/m2: "):
                await s.action(18, IMAGE, 2, {"type": "integer", "value": 0})
            # the session is still usable after errors
            assert (await s.get(*CLOCK))["type"] == "octet-string"


async def test_dedicated_key() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        sec = security("hls-gmac", sim.info[0], dedicated_key=True)
        settings = SessionSettings(client_sap=1, security=sec)
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            assert (await s.get(*CLOCK))["type"] == "octet-string"
            await s.get_many(ENERGY)


@pytest.mark.parametrize("where", ["meter", "client"])
async def test_wrong_keys_fail_clearly(where: str) -> None:
    spec = FleetSpec(
        auth="hls-gmac", history_days=0, faults=FaultOptions(wrong_keys=where == "meter")
    )
    async with running_fleet(spec) as sim:
        info = dict(sim.info[0])
        if where == "client":
            info["ak"] = "00" * 16
        settings = SessionSettings(
            client_sap=1, security=security("hls-gmac", info), response_timeout=2.0
        )
        start = time.monotonic()
        with pytest.raises((AssociationRefused, SecurityFailure)) as err:
            await ClientSession(transport("wrapper", sim.ports[0]), settings).open()
        assert time.monotonic() - start < 5
        text = str(err.value)
        assert any(word in text for word in ("authentication", "decipher", "keys")), text


async def test_lls_wrong_password_is_refused_with_the_diagnostic() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=0)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(b"wrong!!!"))
        with pytest.raises(AssociationRefused) as err:
            await ClientSession(transport("wrapper", sim.ports[0]), settings).open()
        assert err.value.diagnostic == "authentication-failure"


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
async def test_meter_that_hangs_mid_session_ends_in_a_clear_error(kind: str) -> None:
    spec = FleetSpec(
        auth="lls", password=PASSWORD, history_days=1, faults=FaultOptions(hang_after=4)
    )
    async with running_fleet(spec, hdlc=kind == "hdlc") as sim:
        settings = SessionSettings(
            client_sap=1, security=Security.lls(PASSWORD), response_timeout=1.0, max_pdu_size=160
        )
        tr = transport(kind, sim.ports[0], response_timeout=0.3, max_retries=2)
        session = ClientSession(tr, settings)
        start = time.monotonic()
        with pytest.raises((MeterTimeout, LinkLost)) as err:
            await session.open()
            await session.read_profile(LOAD_PROFILE, from_entry=1, to_entry=40)  # many blocks
        elapsed = time.monotonic() - start
        assert elapsed < 4.0, f"took {elapsed:.1f} s"
        assert "awaiting" in str(err.value) or "no response" in str(err.value)
        await session.close()  # never raises, never hangs
        assert time.monotonic() - start < 10.0


async def test_with_list_services_including_datablocks() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=0)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(PASSWORD), max_send_pdu=100)
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            objects = await s.get(40, PUSH_SETUP, 2)
            energy = {"type": "double-long-unsigned", "value": 1}
            results = await s.set_many([(40, PUSH_SETUP, 2), ENERGY[0]], [objects, energy])
            assert results[0] is None
            assert isinstance(results[1], DataAccessError)
            assert results[1].result == "read-write-denied"
            # Two values larger than one block: SET with-list and datablocks.
            reversed_ = {"type": "array", "value": list(reversed(objects["value"]))}
            sent = s.counters.apdus_sent
            assert await s.set_many([(40, PUSH_SETUP, 2)] * 2, [objects, reversed_]) == [None, None]
            assert s.counters.apdus_sent - sent > 1
            assert await s.get(40, PUSH_SETUP, 2) == reversed_
            done = await s.action_many(
                [(40, PUSH_SETUP, 1), (18, IMAGE, 3)],
                [{"type": "integer", "value": 0}, {"type": "integer", "value": 0}],
            )
            assert done[0] is None
            assert isinstance(done[1], DataAccessError) and done[1].method


async def test_hdlc_shared_port_picks_the_meter_by_physical_address() -> None:
    spec = FleetSpec(meters=3, auth="lls", password=PASSWORD, history_days=0)
    async with running_fleet(spec, shared=True) as sim:
        serials = []
        for meter in sim.fleet.meters:
            hdlc = HdlcSettings(client_address=1, server_lower=meter.physical_address)
            tr = HdlcTransport.tcp("127.0.0.1", sim.ports[0], hdlc)
            settings = SessionSettings(client_sap=1, security=Security.lls(PASSWORD))
            async with ClientSession(tr, settings) as s:
                serials.append(await s.get(1, "0.0.96.1.0.255", 2))
        assert [bytes.fromhex(v["value"]).decode() for v in serials] == [
            m.serial for m in sim.fleet.meters
        ]


@pytest.mark.parametrize("auth", ["lls", "hls-gmac"])
async def test_general_block_transfer_when_the_meter_offers_it(auth: str) -> None:
    spec = FleetSpec(auth=auth, password=PASSWORD, history_days=1, general_block_transfer=True)
    async with running_fleet(spec) as sim:
        settings = SessionSettings(
            client_sap=1, security=security(auth, sim.info[0]), max_pdu_size=200
        )
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            assert "general-block-transfer" in s.conformance
            tags: list[int] = []
            receive = s.transport.receive_apdu

            async def recording(timeout: float) -> bytes:  # noqa: ASYNC109
                apdu = await receive(timeout)
                tags.append(apdu[0])
                return apdu

            s.transport.receive_apdu = recording  # type: ignore[method-assign]
            rows = await s.read_profile(LOAD_PROFILE, from_entry=1, to_entry=40)
            assert len(rows) == 40
            assert tags.count(0xE0) > 5  # it came in general-block-transfer APDUs
            assert (await s.get(*CLOCK))["type"] == "octet-string"


@pytest.mark.parametrize("auth", ["lls", "hls-gmac"])
async def test_long_set_and_action_go_in_gbt_when_only_gbt_is_agreed(auth: str) -> None:
    spec = FleetSpec(auth=auth, password=PASSWORD, history_days=0, general_block_transfer=True)
    proposal = tuple(
        c
        for c in SessionSettings().conformance
        if c not in ("block-transfer-with-set-or-write", "block-transfer-with-action")
    )
    async with running_fleet(spec) as sim:
        settings = SessionSettings(
            client_sap=1,
            security=security(auth, sim.info[0]),
            conformance=proposal,
            max_send_pdu=64,  # a value > 64 bytes cannot go whole
        )
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            assert "general-block-transfer" in s.conformance
            assert "block-transfer-with-set-or-write" not in s.conformance
            tags: list[int] = []
            send = s.transport.send_apdu

            async def recording(apdu: bytes) -> None:
                tags.append(apdu[0])
                await send(apdu)

            s.transport.send_apdu = recording  # type: ignore[method-assign]
            objects = await s.get(40, PUSH_SETUP, 2)
            new = {"type": "array", "value": list(reversed(objects["value"]))}
            await s.set(40, PUSH_SETUP, 2, new)
            assert tags.count(0xE0) >= 2
            assert await s.get(40, PUSH_SETUP, 2) == new
            size = await s.get(18, IMAGE, 2)
            block = bytes(range(256))[: size["value"]]
            init = {
                "type": "structure",
                "value": [
                    {"type": "octet-string", "value": b"img-2".hex()},
                    {"type": "double-long-unsigned", "value": len(block)},
                ],
            }
            await s.action(18, IMAGE, 1, init)
            tags.clear()
            params = {
                "type": "structure",
                "value": [
                    {"type": "double-long-unsigned", "value": 0},
                    {"type": "octet-string", "value": block.hex()},
                ],
            }
            await s.action(18, IMAGE, 2, params)
            assert tags.count(0xE0) >= 3
            assert await s.action(18, IMAGE, 3) is None


@pytest.mark.parametrize("multiple_references", [True, False])
async def test_several_attributes_use_with_list_only_when_agreed(
    multiple_references: bool,
) -> None:
    """get_many/get_all/set_many: one request with-list when the association
    agreed multiple-references, one request per attribute otherwise; the
    same results either way."""
    proposal = tuple(
        c
        for c in SessionSettings().conformance
        if multiple_references or c != "multiple-references"
    )
    refs = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]
    async with running_fleet(FleetSpec(auth="lls", password=PASSWORD, history_days=0)) as sim:
        settings = SessionSettings(
            client_sap=1, security=Security.lls(PASSWORD), conformance=proposal
        )
        async with ClientSession(transport("wrapper", sim.ports[0]), settings) as s:
            assert s.with_list is multiple_references
            sent = s.counters.apdus_sent
            values = await s.get_all(refs)
            assert s.counters.apdus_sent - sent == (1 if multiple_references else 4)
            assert [v["type"] for v in values] == ["double-long-unsigned"] * 4
            raws = await s.get_many([*refs[:1], (3, "1.0.99.99.0.255", 2)])
            assert raws[0] == _core.encode(values[0])
            assert isinstance(raws[1], DataAccessError) and raws[1].result == "object-undefined"
            with pytest.raises(DataAccessError, match=r"1\.0\.99\.99\.0\.255/2: object-undefined"):
                await s.get_all([refs[0], (3, "1.0.99.99.0.255", 2)])
            sent = s.counters.apdus_sent
            errors = await s.set_many(
                [(1, "0.0.97.98.10.255", 2), refs[0]],
                [
                    {"type": "double-long-unsigned", "value": 7},
                    {"type": "double-long-unsigned", "value": 0},
                ],
            )
            assert s.counters.apdus_sent - sent == (1 if multiple_references else 2)
            assert errors[0] is None and isinstance(errors[1], DataAccessError)
