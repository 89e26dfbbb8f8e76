"""The scenarios behind the profiles: broker + simulated fleet + gateway, one run, observed.

Each :class:`Scenario` is a trigger (an MQTT command, a scheduled job run now, or a
meter losing power) and the messages that mark its end; :func:`run_all` starts
everything in this event loop, waits until the gateway's start-up work (first
collections, event polls, discovery) is over, then runs the scenarios one after the
other and returns what each observed. Nothing here is a mock: a real Mosquitto, the
simulator's meters on TCP (DLMS wrapper, HLS-GMAC), the gateway daemon's own classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from smmc_gateway.headend.daemon import DaemonOptions, Gateway
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import GatewayConfig, load_config
from smmc_gateway.profiles.broker import LocalBroker, free_port, free_ports
from smmc_gateway.profiles.observe import Recorder, Step, Timing
from smmc_gateway.simulator.fleet import FleetSpec, SimulatedFleet
from smmc_gateway.simulator.serve import close_servers, start_tcp_per_meter

GW = "gw-profile"


class LabClock:
    """The gateway's time source in the lab: the host clock, with a synchronised flag a
    scenario can turn off (the gateway's own NTP lost)."""

    def __init__(self) -> None:
        self.synced = True

    def now(self) -> datetime:
        return datetime.now(UTC)

    def synchronised(self) -> bool:
        return self.synced


METERS = 2
STEP_TIMEOUT_S = 20.0


@dataclass
class Context:
    """What a scenario may touch while it runs."""

    gateway: Gateway
    fleet: SimulatedFleet
    client: aiomqtt.Client
    recorder: Recorder
    ids: list[str]
    tmp: Path
    gateway_time: LabClock
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def command(
        self, noun: str, verb: str, cid: str, payload: dict[str, Any], what: str
    ) -> None:
        self.recorder.command(noun, verb, cid, what)
        body = {"header": {"verb": verb, "noun": noun, "correlationId": cid}, "payload": payload}
        await self.client.publish(f"smmc/v1/{GW}/cmd/{noun}", json.dumps(body).encode(), qos=1)

    async def wait_for(self, suffix: str, within_s: float = STEP_TIMEOUT_S) -> bytes:
        """The first message (since the scenario began) whose topic ends with ``suffix``."""
        async with asyncio.timeout(within_s):
            while True:
                for topic, payload in self.seen:
                    if topic.endswith(suffix):
                        return payload
                self.arrived.clear()
                await self.arrived.wait()


@dataclass(frozen=True)
class Scenario:
    aspect: int
    name: str
    title: str
    run: Callable[[Context], Awaitable[None]]
    exception: bool = False
    """An exception scenario: the request is refused or fails on purpose (KPIs count it
    as handled when it is answered FAILED or PARTIAL, naming the problem)."""


def _control(ref: str, meters: list[str], **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "EndDeviceControlType": {"ref": ref},
        "EndDevices": [{"mRID": m} for m in meters],
        **extra,
    }
    return {"EndDeviceControl": [item]}


async def _collection(c: Context) -> None:
    c.recorder.add(Step("Scheduler", "Gateway", "collection due for meter A", "internal"))
    await c.gateway.headend.collect(c.ids[0])
    await c.wait_for(f"meter/{c.ids[0]}/readings")


async def _on_demand_read(c: Context) -> None:
    await c.command(
        "MeterReadings", "get", "read-1", {"EndDevices": [{"mRID": c.ids[0]}]}, "meter A registers"
    )
    await c.wait_for("reply/read-1")


def _stored_window() -> dict[str, str]:
    """A window around now wide enough for everything the start-up collections stored."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "start": (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def _customer_data(c: Context) -> None:
    await c.command(
        "CustomerMeterDataSet",
        "get",
        "cust-1",
        {"EndDevices": [{"mRID": c.ids[0]}], "timeSchedule": _stored_window()},
        "meter A, last days (from the data store)",
    )
    await c.wait_for("reply/cust-1")
    c.seen.clear()
    await c.command(
        "MeterReadings",
        "get",
        "cust-2",
        {"EndDevices": [{"mRID": c.ids[0]}], "timeSchedule": _stored_window(), "fromStore": True},
        "meter A, fromStore true",
    )
    await c.wait_for("reply/cust-2")


async def _readings_report(c: Context) -> None:
    await c.command(
        "ReadingsReport",
        "get",
        "rep-1",
        {"EndDeviceGroups": [{"mRID": "feeder"}], "timeSchedule": _stored_window()},
        "group feeder, last days",
    )
    await c.wait_for("reply/rep-1")


async def _disconnect_connect(c: Context) -> None:
    await c.command(
        "EndDeviceControls",
        "create",
        "dc-1",
        _control("disconnect", [c.ids[0]]),
        "disconnect meter A",
    )
    await c.wait_for("reply/dc-1")
    await c.wait_for(f"meter/{c.ids[0]}/events")
    c.seen.clear()
    await c.command(
        "EndDeviceControls", "create", "rc-1", _control("connect", [c.ids[0]]), "connect meter A"
    )
    await c.wait_for("reply/rc-1")
    await c.wait_for(f"meter/{c.ids[0]}/events")
    press_button(c)


def press_button(c: Context) -> None:
    """Control mode 1 (the lab meters'): remote reconnect only makes the meter ready for
    reconnection; the supply returns when the customer presses the meter's button."""
    meter = c.fleet.meters[0].meter
    c.recorder.add(
        Step(
            "Customer",
            "Meter A",
            "presses the meter's button (manual reconnect: ready_for_reconnection -> connected)",
            "local",
        )
    )
    if meter.press_button(c.fleet.now()) is None or not meter.supplied:
        raise RuntimeError("meter A did not reconnect when its button was pressed")


async def _unknown_meter(c: Context) -> None:
    await c.command(
        "EndDeviceControls",
        "create",
        "dc-bad",
        _control("disconnect", ["no-such-meter"]),
        "disconnect an unknown meter",
    )
    await c.wait_for("reply/dc-bad")


async def _oms(c: Context) -> None:
    await c.command(
        "EndDeviceControls",
        "create",
        "ping-1",
        _control("ping", c.ids, EndDeviceGroups=[{"mRID": "feeder"}]),
        "ping meters A and B (group feeder)",
    )
    await c.wait_for("reply/ping-1")


async def _outage(c: Context) -> None:
    c.recorder.add(Step("Meter A", "Meter A", "supply lost", "local"))
    c.fleet.power_outage(0)
    await c.wait_for(f"meter/{c.ids[0]}/events")
    c.seen.clear()
    c.recorder.add(Step("Meter A", "Meter A", "supply restored", "local"))
    c.fleet.power_restored(0)
    await c.wait_for(f"meter/{c.ids[0]}/events")


async def _clock(c: Context) -> None:
    await c.command(
        "EndDeviceControls",
        "create",
        "clock-1",
        _control("clockSync", [c.ids[0]]),
        "clockSync meter A",
    )
    await c.wait_for("reply/clock-1")


async def _limit(c: Context) -> None:
    await c.command(
        "EndDeviceControls",
        "create",
        "limit-1",
        _control("limit", [c.ids[0]], demandLimit={"value": 10, "unit": "kW"}),
        "limit meter A to 10 kW",
    )
    await c.wait_for("reply/limit-1")


async def _unreachable(c: Context) -> None:
    """Meter B is unpowered (since the OMS poll exception): a disconnect order fails."""
    await c.command(
        "EndDeviceControls",
        "create",
        "dc-down",
        _control("disconnect", [c.ids[1]]),
        "disconnect meter B (unpowered)",
    )
    await c.wait_for("reply/dc-down", 60.0)
    c.seen.clear()
    c.recorder.add(Step("Meter B", "Meter B", "supply restored", "local"))
    c.fleet.power_restored(1)
    await c.wait_for(f"meter/{c.ids[1]}/events")


async def _discovery(c: Context) -> None:
    c.recorder.add(Step("Scheduler", "Gateway", "meter A registered (discovery)", "internal"))
    await c.gateway.headend.discover(c.ids[0])
    await c.wait_for(f"meter/{c.ids[0]}/config")


async def _programming(c: Context) -> None:
    setting = {
        "EndDevices": [{"mRID": c.ids[0]}],
        "class_id": 1,
        "obis": "0.0.97.98.10.255",
        "attribute": 2,
        "value": {"type": "double-long-unsigned", "value": 0xFFFFFFFF},
    }
    await c.command(
        "MeterConfig", "change", "mc-1", {"Settings": [setting]}, "set the alarm filter of meter A"
    )
    await c.wait_for("reply/mc-1")


async def _account_move(c: Context) -> None:
    for cid, reason in (("move-out", "moveOut"), ("move-in", "moveIn")):
        c.seen.clear()
        await c.command(
            "MasterDataLinkageConfig",
            "create",
            cid,
            {
                "ConfigurationEvent": {"reason": reason},
                "Meter": [{"mRID": c.ids[0]}],
                "CustomerAccount": {"mRID": "account-1"},
            },
            f"{reason} meter A",
        )
        await c.wait_for(f"reply/{cid}")
        await c.wait_for(f"meter/{c.ids[0]}/events")
        await c.wait_for(f"meter/{c.ids[0]}/readings")
    press_button(c)


FIRMWARE_IMAGE = "smmc-sim-2.0.0.img"


def firmware_samples() -> Path:
    """The signed sample image of the source tree (firmware-images/, TEST-ONLY key)."""
    here = Path(__file__).resolve().parents[3] / "firmware-images"
    if not (here / FIRMWARE_IMAGE).exists():
        raise RuntimeError(
            f"{here / FIRMWARE_IMAGE}: missing; the firmware scenario needs "
            "the source tree's firmware-images/ (run from a checkout)"
        )
    return here


async def _firmware(c: Context) -> None:
    body = {
        "EndDeviceFirmware": {"imageIdentifier": "SMMC-SIM-2.0.0"},
        "EndDevices": [{"mRID": c.ids[0]}],
    }
    await c.command("EndDeviceFirmware", "create", "fw-1", body, "image SMMC-SIM-2.0.0 to meter A")
    await c.wait_for("reply/fw-1", 60.0)
    # after activation the meter pushes a notification (reason "firmware"), which the
    # gateway publishes as an event: both belong to this scenario
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not (
            any(b"smmc.firmware.activated" in p for _, p in c.seen)
            and any(b"smmc.push.dataNotification" in p for _, p in c.seen)
        ):
            c.arrived.clear()
            await c.arrived.wait()


async def _quiet(gw: Gateway, within_s: float = 60.0) -> None:
    """Start-up work done: every meter discovered, no job running or due soon."""
    async with asyncio.timeout(within_s):
        # the scheduler offers no event for "idle"; its state is polled (as the daemon's
        # own discovery does)
        while (  # noqa: ASYNC110
            await gw.fleet.undiscovered()
            or gw.scheduler.active_jobs
            or gw.scheduler.due_count(horizon_s=120.0)
        ):
            await asyncio.sleep(0.2)


async def _settle(
    gw: Gateway, recorder: Recorder, quiet_s: float = 0.4, within_s: float = 20.0
) -> None:
    """What a scenario set off has ended: no job running and nothing observed for
    ``quiet_s`` (a push can make the gateway re-read a meter after the scenario's last
    awaited message; that belongs to the scenario, not to the next one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    seen, since = len(recorder.steps), loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        if len(recorder.steps) != seen or gw.scheduler.active_jobs:
            seen, since = len(recorder.steps), loop.time()
        elif loop.time() - since >= quiet_s:
            return


@dataclass(frozen=True)
class Run:
    """What one scenario observed."""

    aspect: int
    title: str
    steps: list[Step]
    timing: Timing
    exception: bool


@dataclass(frozen=True)
class Observation:
    """Every scenario's run (``{"NN-name": Run}`` in run order) and the lab's configuration
    (aspect 1 is drawn from a configuration)."""

    runs: dict[str, Run]
    config: GatewayConfig


LAB_ENABLE = ("MeterConfig", "EndDeviceFirmware", "hanKeys")
"""The [commands.enabled] switches the lab turns on (all default-off nouns the scenarios
use: remote programming, firmware, HAN device keys)."""


async def run_all(scenarios: tuple[Scenario, ...] | None = None) -> Observation:
    """Run every scenario once (default: the whole catalogue, in its order)."""
    if scenarios is None:
        from smmc_gateway.profiles.catalog import SCENARIOS

        scenarios = SCENARIOS
    with (
        tempfile.TemporaryDirectory(prefix="smmc-profiles-") as tmp,
        LocalBroker(Path(tmp) / "broker") as broker,
    ):
        return await _run(Path(tmp), broker, scenarios)


def _lab(
    tmp: Path,
    fleet: SimulatedFleet,
    info: list[dict[str, Any]],
    broker: LocalBroker,
    push_port: int,
) -> Path:
    ids = [str(m["meter_id"]) for m in info]
    # the daily jobs (clock sync, bulk export) are put half a day away so they never run
    # inside a scenario (the bulk export scenario runs its job itself)
    away = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    cfg = write_lab_config(
        tmp / "gw",
        info,
        broker=(broker.host, broker.port),
        gateway_id=GW,
        groups={m: "feeder" for m in ids},
        push_port=push_port,
        enable=LAB_ENABLE,
        schedules='load_profile_every = "6h"\nload_profile_jitter = "1s"\n'
        'events_every = "6h"\nregisters_every = "6h"\n'
        f'clock_sync_at = "{away}"\nbulk_export_at = "{away}"',
    )
    from smmc_gateway.profiles.scenarios_han import with_master_keys

    with_master_keys(cfg.parent / "meter-keys.toml", fleet)
    fw = cfg.parent / "state" / "firmware"
    (fw / "trusted-keys").mkdir(parents=True)
    samples = firmware_samples()
    for name in (FIRMWARE_IMAGE, FIRMWARE_IMAGE + ".manifest.json"):
        shutil.copy(samples / name, fw / name)
    shutil.copy(samples / "TEST-ONLY-signing-key.pub", fw / "trusted-keys" / "test.pub")
    return cfg


async def _run(tmp: Path, broker: LocalBroker, scenarios: tuple[Scenario, ...]) -> Observation:
    push_port = free_port()
    fleet = SimulatedFleet(
        FleetSpec(
            meters=METERS, seed=7, time_offset_s=40.0, push_destination=f"127.0.0.1:{push_port}"
        )
    )
    base = free_ports(METERS)
    servers = await start_tcp_per_meter(fleet, base)
    ports = [base + i for i in range(METERS)]
    ticker = asyncio.get_running_loop().create_task(fleet.run())
    info = [{**m.describe(), "port": p} for m, p in zip(fleet.meters, ports, strict=True)]
    ids = [str(m["meter_id"]) for m in info]
    recorder = Recorder(names={mid: f"meter {chr(65 + i)}" for i, mid in enumerate(ids)})
    for rt in fleet.meters:
        recorder.tap_meter(rt.meter_id, rt.meter)
    config = load_config(_lab(tmp, fleet, info, broker, push_port))
    clock = LabClock()
    gw = Gateway(
        config, DaemonOptions(time_source=clock, first_read_s=2 * 3600, audit_interval_s=0.5)
    )
    results: dict[str, Run] = {}
    try:
        await gw.start()
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.subscribe(f"smmc/v1/{GW}/#", qos=1)
            ctx = Context(gw, fleet, client, recorder, ids, tmp, clock)

            async def listen() -> None:
                async for msg in client.messages:
                    payload = msg.payload if isinstance(msg.payload, bytes) else b""
                    topic = str(msg.topic)
                    recorder.mqtt_out(topic, payload)
                    ctx.seen.append((topic, payload))
                    ctx.arrived.set()

            listener = asyncio.get_running_loop().create_task(listen())
            try:
                await _quiet(gw)
                for sc in scenarios:
                    ctx.seen.clear()
                    recorder.begin()
                    try:
                        await sc.run(ctx)
                    except TimeoutError:
                        steps, _ = recorder.end()
                        last = "; ".join(
                            f"{x.source} -> {x.target}: {x.message}" for x in steps[-6:]
                        )
                        raise RuntimeError(
                            f"scenario {sc.aspect:02d}-{sc.name}: the message "
                            "it waits for did not come in time (observed "
                            f"last: {last or 'nothing'})"
                        ) from None
                    await _settle(gw, recorder)
                    steps, timing = recorder.end()
                    results[f"{sc.aspect:02d}-{sc.name}"] = Run(
                        sc.aspect, sc.title, steps, timing, sc.exception
                    )
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    finally:
        with contextlib.suppress(Exception):
            await gw.stop()
        await fleet.stop()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await close_servers(servers)
    return Observation(results, config)
