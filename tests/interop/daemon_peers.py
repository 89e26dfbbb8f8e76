"""The two kinds of meter the daemon interop tests drive, behind one face.

:class:`GuruxPeers` serves :class:`~tests.interop.gurux_meter.GuruxMeter` s (the
Gurux DLMS server, a third-party implementation) and :class:`SimPeers` our own
simulator, each on real loopback TCP ports in the running event loop. Both say
what their meters *hold* (registers, load profile, clock, switch, limiter,
event log), read from the meter objects themselves and not through any DLMS
client, so a test compares what the gateway published on MQTT with the truth
on the meter's side.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from smmc_gateway.cosem.datetime import to_utc

from tests.interop.gurux_meter import (
    ENERGY,
    LIMITER,
    MONITORED_SCALER,
    PASSWORD,
    GuruxMeter,
    ServedMeter,
    serving,
)
from tests.support_sim import FleetSpec, RunningFleet, free_ports, running_fleet

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
ENERGY_A = "1.0.1.8.0.255"
SWITCH = "0.0.96.3.10.255"
EVENT_LOG = "0.0.99.98.0.255"
LAST_SYNC = "0.0.96.2.12.255"
GURUX_KEYS = {"ek": bytes(range(16)), "ak": bytes(range(16, 32))}


@dataclass(frozen=True)
class Held:
    """What one meter holds (values scaled to their units where they have one)."""

    registers: dict[str, float]
    """OBIS -> value x 10^scaler of the registers the gateway reads by default."""
    profile: list[tuple[datetime, float]]
    """(capture time, +A energy scaled) for every row of the load profile."""
    deviation_s: float
    """The meter's clock minus the true time now."""
    last_sync: datetime | None
    switch: tuple[bool, int]
    """(output_state, control_state)."""
    threshold_normal: int
    """The limiter's threshold_normal as the meter holds it (its own scaler)."""
    monitored_scaler: int
    """The scaler of the limiter's monitored value."""
    events: list[tuple[datetime, int]]
    """The standard event log's rows: (time, IDIS event code)."""


class Peers(Protocol):
    kind: str
    model: str
    """The device model the gateway is configured with for these meters."""
    ids: list[str]
    """The meters compared use case by use case."""
    faulty_id: str | None
    """A further meter whose clock ignores adjustments (None: the peer has none)."""

    def lab_entries(self) -> list[dict[str, Any]]: ...

    def held(self, index: int) -> Held: ...


def _utc(value: Any) -> datetime:
    moment = value.value if hasattr(value, "value") else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class GuruxPeers:
    """Gurux meters: the first with LLS, the second with HLS-GMAC, compared with the
    simulator's; a third (LLS, :attr:`faulty_id`) whose clock ignores adjustments."""

    kind = "gurux"
    model = "idis"  # an IDIS meter of no known family: the generic IDIS profile

    def __init__(self, served: list[ServedMeter]) -> None:
        self.served = served
        names = [f"GRX{i + 1:04d}" for i in range(len(served))]
        self.ids = names[:2]
        self.faulty_id: str | None = names[2]

    def lab_entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for mid, s in zip(names_of(self), self.served, strict=True):
            entry: dict[str, Any] = {"meter_id": mid, "port": s.port, "auth": s.meter.auth}
            if s.meter.auth == "lls":
                entry["password"] = PASSWORD.decode()
            else:
                entry |= {"ek": GURUX_KEYS["ek"].hex(), "ak": GURUX_KEYS["ak"].hex()}
            out.append(entry)
        return out

    def held(self, index: int) -> Held:
        m: GuruxMeter = self.served[index].meter
        registers = {
            obis: float(m.registers[obis].value) * 10.0**scaler
            for obis, (_, scaler, _) in ENERGY.items()
        }
        factor = 10.0 ** ENERGY[ENERGY_A][1]
        profile = [(_utc(row[0]), float(row[2]) * factor) for row in m.rows_of(m.profile)]
        return Held(
            registers=registers,
            profile=profile,
            deviation_s=(m.meter_now() - datetime.now(UTC)).total_seconds(),
            last_sync=_utc(m.last_sync.value),
            switch=(bool(m.disconnect.outputState), int(m.disconnect.controlState)),
            threshold_normal=int(m.limiter.thresholdNormal),
            monitored_scaler=MONITORED_SCALER,
            events=list(m.event_rows),
        )


@contextlib.asynccontextmanager
async def gurux_peers(clock_offset_s: float) -> AsyncIterator[GuruxPeers]:
    """Live Gurux meters (LLS, HLS-GMAC, and LLS with a stuck clock) whose clocks are
    ``clock_offset_s`` off."""
    meters = [
        GuruxMeter(
            hdlc=False,
            auth=auth,
            keys=GURUX_KEYS,
            live=True,
            clock_offset_s=clock_offset_s,
            stuck_clock=stuck,
        )
        for auth, stuck in (("lls", False), ("hls-gmac", False), ("lls", True))
    ]
    async with serving(meters[0]) as a, serving(meters[1]) as b, serving(meters[2]) as c:
        yield GuruxPeers([a, b, c])


def names_of(peers: GuruxPeers) -> list[str]:
    """Every meter of ``peers``: the compared ones, then the faulty one."""
    return [*peers.ids, *([peers.faulty_id] if peers.faulty_id else [])]


class SimPeers:
    """Our simulator's meters (HLS-GMAC, the fleet's clock off by the offset)."""

    kind = "simulator"
    model = "smmc-sim"
    faulty_id: str | None = None

    def __init__(self, sim: RunningFleet) -> None:
        self.sim = sim
        self.ids = [str(i["meter_id"]) for i in sim.info]

    def lab_entries(self) -> list[dict[str, Any]]:
        return [
            {**info, "port": port} for info, port in zip(self.sim.info, self.sim.ports, strict=True)
        ]

    def _get(self, index: int, class_id: int, obis: str, attr: int) -> Any:
        meter = self.sim.fleet.meters[index].meter
        got = meter.get(class_id, obis, attr, now=self.sim.fleet.now(), client=1)
        assert not isinstance(got, str), f"simulator {class_id}/{obis}/{attr}: {got}"
        return got

    def _scaled(self, index: int, obis: str, value: Any) -> float:
        scaler = self._get(index, 3, obis, 3)["value"][0]["value"]
        return float(value) * 10.0 ** int(scaler)

    def held(self, index: int) -> Held:
        registers = {
            obis: self._scaled(index, obis, self._get(index, 3, obis, 2)["value"])
            for obis in ENERGY
        }
        columns = self._get(index, 7, LOAD_PROFILE, 3)["value"]
        lns = [bytes.fromhex(c["value"][1]["value"]) for c in columns]
        at = lns.index(bytes([1, 0, 1, 8, 0, 255]))
        profile = []
        for row in self._get(index, 7, LOAD_PROFILE, 2)["value"]:
            cells = row["value"]
            stamp = to_utc(bytes.fromhex(cells[0]["value"]))
            assert stamp is not None
            profile.append((stamp, self._scaled(index, ENERGY_A, cells[at]["value"])))
        clock = to_utc(bytes.fromhex(self._get(index, 8, CLOCK, 2)["value"]))
        assert clock is not None
        last = self._get(index, 1, LAST_SYNC, 2)["value"]
        switch = [self._get(index, 70, SWITCH, a)["value"] for a in (2, 3)]
        monitored = self._get(index, 71, LIMITER, 2)["value"]
        mon_ln = ".".join(str(b) for b in bytes.fromhex(monitored[1]["value"]))
        scaler = self._get(index, int(monitored[0]["value"]), mon_ln, 3)["value"][0]["value"]
        events = []
        for row in self._get(index, 7, EVENT_LOG, 2)["value"]:
            stamp = to_utc(bytes.fromhex(row["value"][0]["value"]))
            assert stamp is not None
            events.append((stamp, int(row["value"][1]["value"])))
        return Held(
            registers=registers,
            profile=profile,
            deviation_s=(clock - datetime.now(UTC)).total_seconds(),
            last_sync=to_utc(bytes.fromhex(last)) if isinstance(last, str) else None,
            switch=(bool(switch[0]), int(switch[1])),
            threshold_normal=int(self._get(index, 71, LIMITER, 4)["value"]),
            monitored_scaler=int(scaler),
            events=events,
        )


@contextlib.asynccontextmanager
async def sim_peers(clock_offset_s: float) -> AsyncIterator[SimPeers]:
    """Two simulated meters (HLS-GMAC) whose clocks are ``clock_offset_s`` off, each with
    a power failure in its standard event log (codes 1 and 2; their alarm pushes go
    to a port nobody listens on)."""
    spec = FleetSpec(
        meters=2,
        time_offset_s=clock_offset_s,
        drift_ppm=0.0,
        push_destination=f"127.0.0.1:{free_ports(1)[0]}",
    )
    async with running_fleet(spec) as sim:
        for i in range(spec.meters):
            sim.fleet.power_outage(i)
            sim.fleet.power_restored(i)
        yield SimPeers(sim)
