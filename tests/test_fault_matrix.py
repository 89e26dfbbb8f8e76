"""Fault matrix (issue 3): the real ``ClientSession`` against every simulator
fault, over HDLC/TCP, the wrapper over TCP and (cheapest faults) HDLC on a
socat pty at 9600 baud.

Every case ends either in a full read that succeeds after real retries
(asserted through the simulator's fault counters and the transport's
retransmission counters) or in a clear error: the exception type, a message
that names what failed and the meter's link, within a generous bound
(timeout * (retries + 1) + slack: a loaded 2-core machine, never a tight
timing assertion). After every failure the session closes without hanging
and a fresh session to a healthy meter in the same process still works
(no poisoned state such as invocation counter stores).

Run with ``-s`` to see one ``MATRIX`` line per case (transport, fault,
outcome, seconds to outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.serial import SerialHdlcTransport
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    Security,
    SecurityFailure,
    SessionError,
    SessionSettings,
    TransportError,
)
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport
from smmc_gateway.simulator.faults import FaultOptions
from smmc_gateway.simulator.fleet import FleetSpec

from tests.support_sim import PushListener, RunningFleet, running_fleet, running_serial_fleet

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

CLOCK = (8, "0.0.1.0.0.255", 2)
REGISTERS = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]
LOAD_PROFILE = "1.0.99.1.0.255"

# Client-side timeouts of the matrix (short, so that failures come quickly).
HDLC_T1 = 0.4  # HDLC response timeout (retransmission timer)
HDLC_RETRIES = 3
RESPONSE_TIMEOUT = 2.0  # per APDU, in the session
SLACK = 2.0  # scheduling slack on a loaded machine
# A silent meter ends in an error within this bound (HDLC: the link gives up
# after T1 * (retries + 1); the session's response timeout caps the wait).
BOUND = RESPONSE_TIMEOUT * (HDLC_RETRIES + 1) + SLACK
CLOSE_BOUND = 3.0 + 1.0 + SLACK  # close(): RLRE wait + DISC wait, bounded

TCP_KINDS = ["hdlc", "wrapper"]


@dataclass
class Case:
    """What one case did: for the MATRIX line."""

    kind: str
    fault: str
    outcome: str = "?"
    seconds: float = 0.0

    def report(self) -> None:
        print(f"\nMATRIX {self.kind:8s} {self.fault:22s} {self.seconds:6.2f} s  {self.outcome}")


def settings_for(
    info: dict[str, Any], store: InvocationCounterStore, scope: str
) -> SessionSettings:
    return SessionSettings(
        client_sap=1,
        security=Security.hls_gmac(
            system_title=b"SMMCMTRX",
            ek=bytes.fromhex(info["ek"]),
            ak=bytes.fromhex(info["ak"]),
            ic_store=store,
            ic_scope=scope,
        ),
        response_timeout=RESPONSE_TIMEOUT,
        operation_timeout=60.0,
        association_timeout=30.0,
        keep_alive_interval=30.0,  # a background task close() must not leak
    )


def hdlc_settings(address: int | None = None) -> HdlcSettings:
    return HdlcSettings(
        client_address=1,
        server_lower=address,
        response_timeout=HDLC_T1,
        max_retries=HDLC_RETRIES,
    )


def tcp_transport(kind: str, sim: RunningFleet) -> Transport:
    if kind == "hdlc":
        return HdlcTransport.tcp("127.0.0.1", sim.ports[0], hdlc_settings())
    return WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1)


async def full_read(session: ClientSession, *, profile: bool = True) -> None:
    """Association is done by the caller; clock, 4 registers, a 1-day profile."""
    clock = await session.get(*CLOCK)
    assert clock["type"] == "octet-string"
    registers = await session.get_many(REGISTERS)
    assert all(isinstance(r, bytes) for r in registers), registers
    if profile:
        rows = await session.read_profile(LOAD_PROFILE, from_entry=1, to_entry=96)
        assert len(rows) >= 24, f"{len(rows)} profile rows for one day"


@contextlib.asynccontextmanager
async def fleet(
    kind: str, faults: FaultOptions, history_days: int = 1, push_to: int | None = None
) -> AsyncIterator[Any]:
    spec = FleetSpec(auth="hls-gmac", history_days=history_days, faults=faults)
    if push_to is not None:
        spec.push_destination = f"127.0.0.1:{push_to}"
    if kind == "serial":
        spec.baud = 9600
        async with running_serial_fleet(spec) as sim:
            yield sim
    else:
        async with running_fleet(spec, hdlc=kind == "hdlc") as sim:
            yield sim


def make_transport(kind: str, sim: Any) -> Transport:
    if kind == "serial":
        return SerialHdlcTransport(
            sim.device, hdlc_settings(sim.info[0]["hdlc_address"]), baudrate=9600
        )
    return tcp_transport(kind, sim)


async def closes_cleanly(session: ClientSession) -> None:
    """close() never raises, never hangs, and leaves no task of ours behind."""
    start = time.monotonic()
    await asyncio.wait_for(session.close(), CLOSE_BOUND + 5.0)
    assert time.monotonic() - start < CLOSE_BOUND, "close() took too long"
    assert not session.associated
    await asyncio.sleep(0)
    assert not dlms_tasks(), dlms_tasks()


def dlms_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks running code of the client package (e.g. the keep-alive)."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "smmc_gateway/dlms/" in code.co_filename:
            found.append(task)
    return found


async def healthy_read_still_works(kind: str, store: InvocationCounterStore) -> None:
    """A fresh session to a healthy meter, same process, same counter store."""
    async with fleet(kind, FaultOptions(), history_days=1) as sim:
        settings = settings_for(sim.info[0], store, scope=f"healthy-{kind}")
        async with ClientSession(make_transport(kind, sim), settings, meter_id="healthy") as s:
            await full_read(s, profile=kind != "serial")


def assert_clear(error: BaseException, *words: str) -> str:
    """The message is not empty and names at least one of ``words``."""
    text = str(error)
    assert text, f"{type(error).__name__} without a message"
    assert any(w.lower() in text.lower() for w in words), f"{type(error).__name__}: {text}"
    return text


def names_the_link(text: str, kind: str) -> None:
    """The message says which meter link failed (``tcp 127.0.0.1:PORT ...`` or
    ``serial /dev/...``)."""
    assert ("serial " if kind == "serial" else "tcp 127.0.0.1:") in text, text


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InvocationCounterStore]:
    s = InvocationCounterStore(tmp_path / "ic.sqlite")
    yield s
    s.close()


# ---------------------------------------------------------------------- dropped frames
@pytest.mark.parametrize("kind", ["hdlc", "serial"])
async def test_dropped_frames_are_recovered_by_hdlc_retransmission(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "drop 20%")
    faults = FaultOptions(drop_percent=20, seed=3)
    async with fleet(kind, faults) as sim:
        settings = settings_for(sim.info[0], store, "m0")
        session = ClientSession(
            make_transport(kind, sim), settings, meter_id=sim.info[0]["meter_id"]
        )
        start = time.monotonic()
        async with session as s:
            await full_read(s, profile=kind != "serial")
        case.seconds = time.monotonic() - start
        dropped = sim.fleet.meters[0].faults.dropped
        assert dropped > 0, "no frame was dropped: the case tested nothing"
        assert session.counters.retransmissions > 0, "recovered without a retransmission?"
        case.outcome = f"success; {dropped} dropped, {session.counters.retransmissions} retransm."
    case.report()
    await healthy_read_still_works(kind, store)


async def test_wrapper_lost_response_is_a_meter_timeout(store: InvocationCounterStore) -> None:
    """TCP loses nothing; a wrapper frame the meter never sends is a lost
    response: MeterTimeout naming what was awaited, within the response timeout."""
    case = Case("wrapper", "drop 100% (lost resp.)")
    async with fleet("wrapper", FaultOptions(drop_percent=100)) as sim:
        session = ClientSession(
            tcp_transport("wrapper", sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        with pytest.raises(MeterTimeout) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < RESPONSE_TIMEOUT + SLACK
        assert err.value.awaited
        case.outcome = "MeterTimeout: " + assert_clear(err.value, "awaiting AARE")
        names_the_link(case.outcome, "wrapper")
        assert sim.fleet.meters[0].faults.dropped > 0
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works("wrapper", store)


# ---------------------------------------------------------------------- corrupted frames
@pytest.mark.parametrize("kind", ["hdlc", "serial"])
async def test_corrupted_frames_are_caught_by_the_fcs_and_retransmitted(
    kind: str, store: InvocationCounterStore
) -> None:
    """A corrupted frame fails its HCS/FCS, the client re-polls, the meter
    sends it again, and the whole read succeeds. (A flipped bit that raises the
    length field is caught by the HCS at once: see
    test_core_framer_resyncs_after_a_corrupted_length_field.)"""
    case = Case(kind, "corrupt 15%")
    async with fleet(kind, FaultOptions(corrupt_percent=15, seed=5)) as sim:
        settings = settings_for(sim.info[0], store, "m0")
        session = ClientSession(make_transport(kind, sim), settings, meter_id="m0")
        start = time.monotonic()
        async with session as s:
            await full_read(s, profile=kind != "serial")
        case.seconds = time.monotonic() - start
        case.outcome = (
            f"success; {sim.fleet.meters[0].faults.corrupted} corrupted, "
            f"{session.counters.frame_errors} frame errors, "
            f"{session.counters.retransmissions} retransm."
        )
        assert session.counters.retransmissions > 0
        assert sim.fleet.meters[0].faults.corrupted > 0, "no frame was corrupted"
    case.report()
    await healthy_read_still_works(kind, store)


@pytest.mark.parametrize(("byte", "bit"), [(1, 0), (1, 1), (1, 2), (2, 7)])
def test_core_framer_resyncs_after_a_corrupted_length_field(byte: int, bit: int) -> None:
    """A frame whose length field got a bit raised by line noise must not
    swallow the valid frames after it: its HCS (after the header) already
    proves it bad. Today the framer waits for the claimed length first."""
    frame = _core.hdlc_encode(
        "I", dest_upper=1, src_upper=1, src_lower=16, info=b"\xe6\xe7\x00" + bytes(100)
    )
    bad = bytearray(frame)
    bad[byte] ^= 1 << bit
    framer = _core.HdlcFramer()
    framer.feed(bytes(bad))
    good = _core.hdlc_encode("RR", dest_upper=1, src_upper=1, src_lower=16, recv_seq=1)
    received = 0
    for _ in range(3):  # three re-polls answered
        framer.feed(good)
        while framer.next_frame() is not None:
            received += 1
    assert received == 3, f"{received} of 3 good frames after the corrupted one"


@pytest.mark.parametrize("kind", ["hdlc", "serial"])
async def test_every_frame_corrupted_ends_in_a_clear_error(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "corrupt 100%")
    async with fleet(kind, FaultOptions(corrupt_percent=100), history_days=0) as sim:
        session = ClientSession(
            make_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        with pytest.raises((LinkLost, MeterTimeout)) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < HDLC_T1 * (HDLC_RETRIES + 1) + SLACK
        text = assert_clear(err.value, "awaiting UA for SNRM")
        names_the_link(text, kind)
        assert sim.fleet.meters[0].faults.corrupted > 0
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works(kind, store)


@pytest.mark.parametrize("seed", [11, 4, 8])  # the GCM tag, a lied length, the decoder
async def test_wrapper_corrupted_frame_is_a_clear_error(
    seed: int, store: InvocationCounterStore
) -> None:
    """No FCS in the wrapper: a flipped byte is caught by the wrapper header
    check, the GCM tag or the APDU decoder, or leaves the framer waiting
    (a lied length): every one a clear SessionError within the bound."""
    case = Case("wrapper", f"corrupt 100% seed {seed}")
    faults = FaultOptions(corrupt_percent=100, seed=seed)
    async with fleet("wrapper", faults, history_days=0) as sim:
        session = ClientSession(
            tcp_transport("wrapper", sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        with pytest.raises(SessionError) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        assert isinstance(
            err.value, (LinkLost, MeterTimeout, ProtocolError, SecurityFailure, AssociationRefused)
        )
        text = assert_clear(err.value, "AARE", "awaiting", "AARQ", "tag")
        if not isinstance(err.value, AssociationRefused):
            names_the_link(text, "wrapper")
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works("wrapper", store)


# ---------------------------------------------------------------------- delays
@pytest.mark.parametrize("kind", [*TCP_KINDS, "serial"])
async def test_delay_below_the_response_timeout_succeeds(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "delay 0.15 s")
    async with fleet(kind, FaultOptions(delay_s=0.15)) as sim:
        session = ClientSession(
            make_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        async with session as s:
            await full_read(s, profile=kind != "serial")
        case.seconds = time.monotonic() - start
        case.outcome = f"success; {session.counters.retransmissions} retransm."
    case.report()


@pytest.mark.parametrize("kind", TCP_KINDS)
async def test_delay_above_the_response_timeout_is_a_meter_timeout(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "delay 3 s (> timeouts)")
    async with fleet(kind, FaultOptions(delay_s=3.0), history_days=0) as sim:
        session = ClientSession(
            tcp_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        with pytest.raises((MeterTimeout, LinkLost)) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        if kind == "wrapper":
            assert isinstance(err.value, MeterTimeout)
            assert err.value.awaited == "AARE" or "AARE" in err.value.awaited
        text = assert_clear(err.value, "awaiting AARE", "awaiting UA for SNRM")
        names_the_link(text, kind)
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works(kind, store)


# ---------------------------------------------------------------------- hang after N frames
@pytest.mark.parametrize("kind", [*TCP_KINDS, "serial"])
async def test_meter_that_hangs_after_n_frames(kind: str, store: InvocationCounterStore) -> None:
    case = Case(kind, "hang after 6 frames")
    async with fleet(kind, FaultOptions(hang_after=6)) as sim:
        session = ClientSession(
            make_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        await session.open()
        start = time.monotonic()
        with pytest.raises((MeterTimeout, LinkLost)) as err:
            for _ in range(20):
                await session.get(*CLOCK)
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        assert sim.fleet.meters[0].faults.hung
        text = assert_clear(err.value, "awaiting GET 8/0.0.1.0.0.255/2")
        names_the_link(text, kind)
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works(kind, store)


# ---------------------------------------------------------------------- connection reset
@pytest.mark.parametrize("kind", TCP_KINDS)
async def test_connection_reset_mid_transfer(kind: str, store: InvocationCounterStore) -> None:
    frames = 8 if kind == "hdlc" else 4  # after the association, during the read
    case = Case(kind, f"reset after {frames} frames")
    async with fleet(kind, FaultOptions(reset_after=frames)) as sim:
        session = ClientSession(
            tcp_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        await session.open()
        start = time.monotonic()
        with pytest.raises((LinkLost, TransportError)) as err:
            await full_read(session)
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        text = assert_clear(err.value, "closed by the peer")
        assert "awaiting" in text, text  # what the read was doing
        assert f"127.0.0.1:{sim.ports[0]}" in text, text  # names the link
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works(kind, store)


# ---------------------------------------------------------------------- power outage
@pytest.mark.parametrize("kind", TCP_KINDS)
async def test_power_outage_mid_read_then_restored(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "power outage mid-read")
    async with PushListener() as pushes, fleet(kind, FaultOptions(), push_to=pushes.port) as sim:
        info = sim.info[0]
        session = ClientSession(
            tcp_transport(kind, sim), settings_for(info, store, "m0"), meter_id=info["meter_id"]
        )
        await session.open()
        await session.get(*CLOCK)
        sim.fleet.power_outage(0)
        await pushes.next()  # the last gasp: the outage really happened
        start = time.monotonic()
        with pytest.raises((LinkLost, MeterTimeout)) as err:
            await full_read(session)
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        text = assert_clear(err.value, "closed by the peer", "awaiting")
        names_the_link(text, kind)
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
        sim.fleet.power_restored(0)
        # Same meter, same store and scope: a new session reads it all.
        async with ClientSession(
            tcp_transport(kind, sim), settings_for(info, store, "m0"), meter_id=info["meter_id"]
        ) as s:
            await full_read(s)
    case.report()
    await healthy_read_still_works(kind, store)


# ---------------------------------------------------------------------- wrong keys
@pytest.mark.parametrize("kind", TCP_KINDS)
async def test_wrong_keys_are_refused_naming_the_cause(
    kind: str, store: InvocationCounterStore
) -> None:
    case = Case(kind, "wrong keys")
    async with fleet(kind, FaultOptions(wrong_keys=True), history_days=0) as sim:
        session = ClientSession(
            tcp_transport(kind, sim), settings_for(sim.info[0], store, "m0"), meter_id="m0"
        )
        start = time.monotonic()
        with pytest.raises((SecurityFailure, AssociationRefused)) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < BOUND
        text = assert_clear(err.value, "authentication", "decipher", "keys", "tag")
        case.outcome = f"{type(err.value).__name__}: {text}"
        await closes_cleanly(session)
    case.report()
    await healthy_read_still_works(kind, store)


# ---------------------------------------------------------------------- link alive, meter busy
async def test_link_alive_but_application_silent_is_a_meter_timeout(
    store: InvocationCounterStore,
) -> None:
    """A meter whose HDLC layer answers every poll (RNR) but whose application
    never answers: the response timeout still applies (HDLC progress that is
    only RNR is no progress), MeterTimeout naming what was awaited."""
    case = Case("hdlc", "RNR forever (app hung)")

    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _core.HdlcLink("server", client_address=1, server_upper=1)
        while data := await reader.read(4096):
            link.receive_data(data, time.monotonic())
            while link.next_event() is not None:
                pass  # the AARQ arrives and is never answered
            writer.write(link.data_to_send())
        writer.close()

    server = await asyncio.start_server(meter, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        settings = SessionSettings(client_sap=1, response_timeout=RESPONSE_TIMEOUT)
        transport = HdlcTransport.tcp("127.0.0.1", port, hdlc_settings())
        session = ClientSession(transport, settings, meter_id="busy")
        start = time.monotonic()
        with pytest.raises(MeterTimeout) as err:
            await session.open()
        case.seconds = time.monotonic() - start
        assert case.seconds < RESPONSE_TIMEOUT + SLACK
        assert transport.counters.bytes_received > 0  # the link did answer
        case.outcome = "MeterTimeout: " + assert_clear(err.value, "awaiting AARE")
        names_the_link(case.outcome, "hdlc")
        await closes_cleanly(session)
    finally:
        server.close()
        await server.wait_closed()
    case.report()
