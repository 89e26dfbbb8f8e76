"""Use case 9 against the simulator: a verified image to several meters with bounded
concurrency, resumed after dropped connections, activated now or on schedule, confirmed
by the firmware identifier; refusals end as a failed event with the reason."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.firmware.manifest import find_image, trusted_keys
from smmc_gateway.usecases.firmware_campaign import CampaignImage, run_campaign

from tests.support_sim import FaultOptions, FleetSpec, RunningFleet, running_fleet

SAMPLES = Path(__file__).resolve().parent.parent / "firmware-images"


def sample() -> CampaignImage:
    v = find_image(SAMPLES, "SMMC-SIM-2.0.0", trusted_keys([SAMPLES / "TEST-ONLY-signing-key.pub"]))
    return CampaignImage(v.manifest.identifier, v.data)


class Harness:
    def __init__(self, sim: RunningFleet) -> None:
        self.sim = sim
        self.ids = [i["meter_id"] for i in sim.info]
        self.events: list[tuple[str, str, str]] = []
        self.open_now = 0
        self.most_open = 0
        self.sessions = 0

    @contextlib.asynccontextmanager
    async def open_session(self, meter_id: str) -> AsyncIterator[ClientSession]:
        port = self.sim.ports[self.ids.index(meter_id)]
        s = ClientSession(
            WrapperTransport.tcp("127.0.0.1", port, client_sap=1),
            SessionSettings(client_sap=1, security=Security.none(), response_timeout=5.0),
            meter_id=meter_id,
        )
        self.sessions += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            async with s:
                yield s
        finally:
            self.open_now -= 1

    async def emit(self, meter: str, step: str, details: str) -> None:
        self.events.append((meter, step, details))

    def steps(self, meter: str) -> list[str]:
        return [s for m, s, _ in self.events if m == meter]


async def test_campaign_activates_now_with_bounded_concurrency() -> None:
    async with running_fleet(FleetSpec(meters=3, auth="none")) as sim:
        h = Harness(sim)
        outcomes = await run_campaign(h.open_session, h.ids, sample(), h.emit, max_parallel=2)
        assert [o.ok for o in outcomes] == [True] * 3, outcomes
        assert all(o.version == "SMMC-SIM-2.0.0" for o in outcomes)
        assert h.most_open == 2
        for m in h.ids:
            steps = h.steps(m)
            assert steps[0] == "started" and steps[-1] == "activated"
            assert "verified" in steps and steps.count("progress") >= 2
            assert any(d.startswith("100%") for mm, s, d in h.events if mm == m)
        assert all(rt.meter.firmware_version == "SMMC-SIM-2.0.0" for rt in sim.fleet.meters)


async def test_transfer_resumes_after_dropped_connections() -> None:
    # every connection is cut at its 25th frame: the image needs several sessions
    spec = FleetSpec(meters=1, auth="none", faults=FaultOptions(reset_after=25))
    async with running_fleet(spec) as sim:
        h = Harness(sim)
        (o,) = await run_campaign(
            h.open_session, h.ids, sample(), h.emit, attempts=10, retry_delay_s=0.05
        )
        assert o.ok, o
        assert o.attempts >= 2 and h.sessions >= 2
        blocks = -(-len(sample().data) // sim.fleet.meters[0].meter.image.block_size)
        # no block sent twice: each attempt resumed (the block in flight when the line
        # dropped may have reached the meter unacknowledged)
        assert blocks - 1 <= o.blocks_sent <= blocks
        verified = [d for _, s, d in h.events if s == "verified"]
        assert verified and "already held (resumed)" in verified[0]


async def test_scheduled_activation_then_confirmed() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        h = Harness(sim)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        (o,) = await run_campaign(h.open_session, h.ids, sample(), h.emit, activation=at)
        assert o.ok, o
        assert h.steps(h.ids[0])[-3:] == ["verified", "activationScheduled", "activated"]
        entry = sim.fleet.meters[0].meter.image_activation.times
        assert len(entry) == 1


async def test_a_meter_that_refuses_the_image_fails_with_the_reason() -> None:
    async with running_fleet(FleetSpec(meters=2, auth="none")) as sim:
        sim.fleet.meters[1].meter.image.verifier = lambda ident, data: False
        h = Harness(sim)
        good, bad = await run_campaign(h.open_session, h.ids, sample(), h.emit)
        assert good.ok and not bad.ok
        assert "verification" in bad.details
        (failed,) = [d for m, s, d in h.events if m == h.ids[1] and s == "failed"]
        assert "verification" in failed
        assert sim.fleet.meters[1].meter.firmware_version != "SMMC-SIM-2.0.0"


async def test_a_meter_already_on_the_image_is_not_flashed_again() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        h = Harness(sim)
        (first,) = await run_campaign(h.open_session, h.ids, sample(), h.emit)
        assert first.ok and first.blocks_sent > 0
        h.events.clear()
        (again,) = await run_campaign(h.open_session, h.ids, sample(), h.emit)
        assert again.ok and again.blocks_sent == 0 and "already active" in again.details
        assert h.steps(h.ids[0]) == ["started", "activated"]


async def test_scheduled_activation_on_a_meter_whose_clock_is_behind() -> None:
    # the meter runs 3 s late: at the activation time it has not activated yet; the
    # campaign keeps asking (within confirm_grace_s) until it has
    async with running_fleet(FleetSpec(meters=1, auth="none", time_offset_s=-3.0)) as sim:
        h = Harness(sim)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        (o,) = await run_campaign(
            h.open_session,
            h.ids,
            sample(),
            h.emit,
            activation=at,
            retry_delay_s=0.25,
            confirm_grace_s=30,
        )
        assert o.ok, o
        assert datetime.now(UTC) >= at + timedelta(seconds=2.5)
