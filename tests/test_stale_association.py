"""Issue 10 item 8: a meter that keeps a stale association is recovered (release,
disconnect, reconnect, retry once), counted and logged; against a scripted meter
(every cause, what is sent in what order) and against the simulator's fault
``stale_association`` (our client over TCP, wrapper and HDLC)."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms import observe
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    Security,
    ServiceNotAllowed,
    SessionSettings,
)
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport
from smmc_gateway.ops.metrics import GatewayMetrics
from smmc_gateway.simulator.faults import FaultOptions, StaleAssociations

from tests.scripted_meter import (
    AARE_ACCEPTED,
    CLOCK_DATA,
    RLRE,
    SERVICE_NOT_ALLOWED,
    ScriptedMeter,
    get_response,
)
from tests.support_sim import FleetSpec, running_fleet

CLOCK = (8, "0.0.1.0.0.255", 2)
AARQ, RLRQ, GET = 0x60, 0x62, 0xC0
AARE_BUSY = bytes.fromhex("6117A109060760857405080101A203020101A305A103020101")
AARE_AUTH_FAILURE = bytes.fromhex("6117A109060760857405080101A203020101A305A10302010D")
SETTINGS = SessionSettings(client_sap=16, response_timeout=0.5, association_timeout=5.0)


class Recorder:
    def __init__(self) -> None:
        self.quirks: list[tuple[str, str]] = []
        self.recoveries: list[tuple[str, str]] = []

    def protocol_quirk(self, meter: str, quirk: str) -> None:
        self.quirks.append((meter, quirk))

    def association_recovery(self, meter: str, cause: str) -> None:
        self.recoveries.append((meter, cause))


def stale_meter(refusal: bytes, *, times: int = 1, at_request: bool = False) -> ScriptedMeter:
    """Refuses the AARQ (or, ``at_request``, the first request) of its first ``times``
    connections with ``refusal``; an RLRQ is answered with an RLRE."""

    def answer(apdu: bytes, connection: int) -> list[bytes]:
        stale = connection <= times
        if apdu[0] == AARQ:
            return [refusal] if stale and not at_request else [AARE_ACCEPTED]
        if apdu[0] == RLRQ:
            return [RLRE]
        return [refusal] if stale and at_request else [get_response(apdu)]

    return ScriptedMeter(answer)


@pytest.mark.parametrize(
    ("refusal", "cause"),
    [(SERVICE_NOT_ALLOWED, "service-not-allowed"), (AARE_BUSY, "aare-rejected")],
)
async def test_a_refused_aarq_is_released_reconnected_and_retried(
    refusal: bytes, cause: str
) -> None:
    meter, seen = stale_meter(refusal), Recorder()
    async with ClientSession(meter, SETTINGS, meter_id="m1", observer=seen) as s:
        assert await s.get_raw(*CLOCK) == CLOCK_DATA
    assert meter.tags()[:3] == [(1, AARQ), (1, RLRQ), (2, AARQ)]
    assert meter.tags()[3] == (2, GET)
    assert meter.events[:3] == ["open", "close", "open"]
    assert seen.recoveries == [("m1", cause)]


async def test_a_first_request_refused_service_not_allowed_is_retried_after_recovery() -> None:
    meter, seen = stale_meter(SERVICE_NOT_ALLOWED, at_request=True), Recorder()
    async with ClientSession(meter, SETTINGS, meter_id="m2", observer=seen) as s:
        assert await s.get_raw(*CLOCK) == CLOCK_DATA
        assert s.associated
    assert meter.tags()[:5] == [(1, AARQ), (1, GET), (1, RLRQ), (2, AARQ), (2, GET)]
    assert meter.events[:3] == ["open", "close", "open"]
    assert seen.recoveries == [("m2", "service-not-allowed")]


async def test_recovery_is_tried_once() -> None:
    meter, seen = stale_meter(SERVICE_NOT_ALLOWED, times=5), Recorder()
    with pytest.raises(ServiceNotAllowed, match="service-not-allowed"):
        await ClientSession(meter, SETTINGS, meter_id="m3", observer=seen).open()
    assert [t for t in meter.tags() if t[1] == AARQ] == [(1, AARQ), (2, AARQ)]
    assert seen.recoveries == [("m3", "service-not-allowed")]


async def test_a_later_request_refused_is_not_a_stale_association() -> None:
    def answer(apdu: bytes, connection: int) -> list[bytes]:
        if apdu[0] == AARQ:
            return [AARE_ACCEPTED]
        return [RLRE] if apdu[0] == RLRQ else [SERVICE_NOT_ALLOWED]

    meter, seen = ScriptedMeter(answer), Recorder()
    session = ClientSession(meter, SETTINGS, meter_id="m4", observer=seen)
    await session.open()
    session._fresh = False  # as after a first request that succeeded
    with pytest.raises(ServiceNotAllowed):
        await session.get_raw(*CLOCK)
    await session.close()
    assert seen.recoveries == [] and meter.connection == 1


async def test_refusals_a_new_association_cannot_cure_are_not_retried() -> None:
    def answer(apdu: bytes, connection: int) -> list[bytes]:
        return [AARE_AUTH_FAILURE] if apdu[0] == AARQ else [RLRE]

    meter, seen = ScriptedMeter(answer), Recorder()
    settings = SessionSettings(client_sap=16, security=Security.lls(b"wrong"))
    with pytest.raises(AssociationRefused, match="authentication-failure"):
        await ClientSession(meter, settings, meter_id="m5", observer=seen).open()
    assert meter.tags() == [(1, AARQ)] and seen.recoveries == []


async def test_recoveries_are_counted_per_meter_and_logged_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    observe.forget_logged()
    metrics = GatewayMetrics()
    for _ in range(2):
        async with ClientSession(
            stale_meter(AARE_BUSY), SETTINGS, meter_id="m6", observer=metrics
        ) as s:
            await s.get_raw(*CLOCK)
    text = metrics.exposition().decode()
    assert 'smmc_association_recoveries_total{cause="aare-rejected",meter="m6"} 2.0' in text
    assert capsys.readouterr().out.count("stale_association_recovery") == 1


# ---------------------------------------------------------------- the simulator's fault
def transport(kind: str, port: int) -> Transport:
    if kind == "hdlc":
        return HdlcTransport.tcp("127.0.0.1", port, HdlcSettings(client_address=16))
    return WrapperTransport.tcp("127.0.0.1", port, client_sap=16)


async def held(stale: StaleAssociations, client: int) -> None:
    """Until the meter has noticed the dropped connection (its side closes after ours)."""
    for _ in range(500):
        if client in stale.held:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the meter never kept the dropped association")


@pytest.mark.parametrize(
    ("mode", "kind", "cause"),
    [
        ("aare-rejected", "wrapper", "aare-rejected"),
        ("exception", "wrapper", "service-not-allowed"),
        ("first-request", "wrapper", "service-not-allowed"),
        ("aare-rejected", "hdlc", "aare-rejected"),
        ("first-request", "hdlc", "service-not-allowed"),
    ],
)
async def test_the_simulated_meter_with_a_stale_association_is_recovered(
    mode: str, kind: str, cause: str
) -> None:
    spec = FleetSpec(faults=FaultOptions(stale_association=mode))  # type: ignore[arg-type]
    async with running_fleet(spec, hdlc=kind == "hdlc") as sim:
        stale = sim.fleet.meters[0].faults.stale
        # A client that drops its association without releasing it.
        no_release = SessionSettings(client_sap=16, release=False)
        async with ClientSession(transport(kind, sim.ports[0]), no_release) as s:
            await s.get_raw(*CLOCK)
        await held(stale, 16)
        seen = Recorder()
        session = ClientSession(
            transport(kind, sim.ports[0]),
            SessionSettings(client_sap=16),
            meter_id="m0",
            observer=seen,
        )
        async with session as s:
            value = _core.decode(await s.get_raw(*CLOCK))
        assert value["type"] == "octet-string"
        assert seen.recoveries == [("m0", cause)]
        assert stale.refusals == 1 and 16 not in stale.held


async def test_the_simulated_meter_without_the_fault_needs_no_recovery() -> None:
    async with running_fleet(FleetSpec()) as sim:
        async with ClientSession(
            transport("wrapper", sim.ports[0]), SessionSettings(client_sap=16, release=False)
        ) as s:
            await s.get_raw(*CLOCK)
        seen = Recorder()
        async with ClientSession(
            transport("wrapper", sim.ports[0]),
            SessionSettings(client_sap=16),
            meter_id="m0",
            observer=seen,
        ) as s:
            await s.get_raw(*CLOCK)
        assert seen.recoveries == [] and sim.fleet.meters[0].faults.stale.held == set()


def test_the_fault_names_its_modes() -> None:
    with pytest.raises(ValueError, match="stale_association 'sometimes': one of aare-rejected"):
        FaultOptions(stale_association="sometimes").validate()  # type: ignore[arg-type]
