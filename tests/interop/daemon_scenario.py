"""One run of the gateway daemon against the meters of one peer kind, all use cases.

:func:`run_scenario` starts a Mosquitto broker, the peer's meters (Gurux or our
simulator, :mod:`tests.interop.daemon_peers`), writes a lab configuration with
short schedules (collection every minute, the event logs polled every minute)
and runs the real daemon (:func:`~smmc_gateway.headend.daemon.run_daemon`) in
this event loop. Then, per meter, over MQTT only: the scheduled collection and
event poll are awaited; ``MeterReadings get`` on demand and from the store;
``clockSync``; ``disconnect``, ``ping``, ``connect``; ``limit``. What the
meters hold is snapshotted at each step, every MQTT message recorded, and the
whole returned as an :class:`Observed` for the tests to judge use case by use
case (a failing step is recorded, not raised, so one use case failing against
one peer does not hide the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from conftest import Broker, Collector, _write_conf, free_port
from smmc_gateway.headend.daemon import DaemonOptions, run_daemon
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.clock import FixedTimeSource

from tests.interop.daemon_peers import Held, Peers, gurux_peers, sim_peers

GW = "gw-interop"
CLOCK_OFFSET_S = 40.0
FIRST_READ_S = 4 * 3600
LIMIT_W = 5000
REGISTERS = ("1.0.1.8.0.255", "1.0.2.8.0.255")
COLLECT_WAIT_S = 20.0
"""How long the first scheduled collection and event poll may take (both are due at
start; the meter sessions take well under a second each)."""


@dataclass
class Observed:
    """Everything one run saw: MQTT messages by topic, peer snapshots, failures."""

    kind: str
    ids: list[str]
    faulty_id: str | None = None
    """The peer's meter whose clock ignores adjustments, if it has one."""
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    held: dict[tuple[str, str], Held] = field(default_factory=dict)
    """(step, meter id) -> what the meter held right after that step."""
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    """(step, meter id) -> why the step did not complete (timeout, exception)."""
    window: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Time spans of requests, e.g. the on-demand profile range."""
    metrics: str = ""
    """The daemon's Prometheus exposition at the end of the run."""

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [doc for topic, doc in self.messages if topic.endswith(suffix)]

    def reply(self, cid: str) -> dict[str, Any]:
        found = self.on(f"/reply/{cid}")
        assert len(found) == 1, f"{len(found)} replies to {cid}"
        return found[0]

    def events(self, meter: str) -> list[dict[str, Any]]:
        return [
            e for doc in self.on(f"/meter/{meter}/events") for e in doc["payload"]["EndDeviceEvent"]
        ]


def request(cid: str, noun: str, verb: str, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {"header": {"verb": verb, "noun": noun, "correlationId": cid}, "payload": payload}
    ).encode()


def control(ref: str, meter: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndDeviceControl": [
            {"EndDeviceControlType": {"ref": ref}, "EndDevices": [{"mRID": meter}], **extra}
        ]
    }


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def _broker(tmp: Path) -> AsyncIterator[Broker]:
    d = tmp / "broker"
    d.mkdir()
    port = free_port()
    broker = Broker(d, port, _write_conf(d, port, "allow_anonymous true\n"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(signal.SIGKILL)


class _Run:
    def __init__(self, obs: Observed, peers: Peers, col: Collector) -> None:
        self.obs, self.peers, self.col = obs, peers, col
        self.n = 0

    def snap(self, step: str) -> None:
        for i, mid in enumerate(self.peers.ids):
            self.obs.held[(step, mid)] = self.peers.held(i)

    async def send(self, cid: str, noun: str, verb: str, payload: dict[str, Any]) -> None:
        async with aiomqtt.Client(
            self.col.broker.host, self.col.broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as c:
            await c.publish(f"smmc/v1/{GW}/cmd/{noun}", request(cid, noun, verb, payload), qos=1)

    async def ask(self, cid: str, noun: str, verb: str, payload: dict[str, Any]) -> None:
        await self.send(cid, noun, verb, payload)
        await self.col.wait(lambda ms: any(str(m.topic).endswith(f"/reply/{cid}") for m in ms), 30)

    async def step(self, name: str, mid: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one step for one meter; a failure is recorded, the run goes on."""
        try:
            await body()
        except (AssertionError, TimeoutError, OSError, aiomqtt.MqttError) as exc:
            self.obs.failures[(name, mid)] = f"{type(exc).__name__}: {exc}"

    async def online(self) -> None:
        """Until the gateway answers a request it refuses at once (it subscribes just
        after saying online; the first commands could be lost otherwise)."""
        await self.col.wait(
            lambda ms: any(
                str(m.topic).endswith("/status") and b'"online"' in m.payload  # type: ignore[operator]
                for m in ms
            ),
            30,
        )
        for n in range(60):
            cid = f"probe-{n}"
            await self.send(cid, "MeterReadings", "create", {})
            try:
                await self.col.wait(
                    lambda ms, c=cid: any(  # type: ignore[misc]
                        str(m.topic).endswith(f"/reply/{c}") for m in ms
                    ),
                    0.5,
                )
                return
            except AssertionError:
                continue
        raise AssertionError("the gateway never answered a probe request")


async def run_scenario(kind: str, tmp: Path) -> Observed:
    peers_of = gurux_peers if kind == "gurux" else sim_peers
    async with _broker(tmp) as broker, peers_of(CLOCK_OFFSET_S) as peers:
        obs = Observed(kind, list(peers.ids), peers.faulty_id)
        col = Collector(broker, f"smmc/v1/{GW}/#", f"interop-{kind}")
        await col.start()
        run = _Run(obs, peers, col)
        run.snap("start")
        metrics_port = free_port()
        config = write_lab_config(
            tmp / "gw",
            peers.lab_entries(),
            broker=(broker.host, broker.port),
            gateway_id=GW,
            schedules='load_profile_every = "60s"\nload_profile_jitter = "1s"\n'
            'events_every = "60s"\nclock_drift_threshold = "0s"',
            response_timeout="3s",
            metrics_port=metrics_port,
        )
        _set_model(config.parent / "meters.csv", peers.model)
        stop = asyncio.Event()
        opts = DaemonOptions(
            time_source=FixedTimeSource(synced=True), stop_event=stop, first_read_s=FIRST_READ_S
        )
        task = asyncio.get_running_loop().create_task(run_daemon(load_config(config), opts))
        try:
            await _use_cases(run)
            obs.metrics = await asyncio.to_thread(_scrape, metrics_port)
        finally:
            stop.set()
            code = await asyncio.wait_for(task, 30)
            obs.messages = [
                (str(m.topic), json.loads(m.payload))  # type: ignore[arg-type]
                for m in col.messages
            ]
            await col.close()
        assert code == 0, f"the daemon exited with {code}"
        return obs


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def _set_model(csv: Path, model: str) -> None:
    """Every meter of the lab's CSV gets ``model`` (write_lab_config writes ``default``)."""
    rows = csv.read_text().splitlines()
    header = rows[0].split(",")
    at = header.index("model")
    out = [rows[0]]
    for row in rows[1:]:
        cells = row.split(",")
        cells[at] = model
        out.append(",".join(cells))
    csv.write_text("\n".join(out) + "\n")


async def _use_cases(run: _Run) -> None:
    obs, col = run.obs, run.col
    await run.step("online", "*", run.online)

    async def collected(m: str) -> None:
        """The scheduled collection's readings and the event poll's meter events."""
        await col.wait(
            lambda ms: any(str(x.topic).endswith(f"/meter/{m}/readings") for x in ms),
            COLLECT_WAIT_S,
        )
        await col.wait(
            lambda ms: any(
                str(x.topic).endswith(f"/meter/{m}/events") and b'"smmc.meter.' in x.payload  # type: ignore[operator]
                for x in ms
            ),
            COLLECT_WAIT_S,
        )

    # the meters in parallel: one that never answers costs the wait once
    await asyncio.gather(*(run.step("collect", m, lambda m=m: collected(m)) for m in obs.ids))
    run.snap("collected")
    now = datetime.now(UTC)
    obs.window["get"] = (now - timedelta(hours=2), now)
    for mid in obs.ids:
        get = {
            "EndDevices": [{"mRID": mid}],
            "ReadingTypes": [{"obis": o} for o in REGISTERS],
            "timeSchedule": {"start": iso(now - timedelta(hours=2)), "end": iso(now)},
        }
        await run.step(
            "get", mid, lambda g=get, m=mid: run.ask(f"get-{m}", "MeterReadings", "get", g)
        )
    run.snap("read")
    for mid in obs.ids:
        await run.step(
            "clock",
            mid,
            lambda m=mid: run.ask(
                f"clk-{m}", "EndDeviceControls", "create", control("clockSync", m)
            ),
        )
    run.snap("clock")
    if run.peers.faulty_id is not None:
        m = run.peers.faulty_id
        await run.step(
            "clock",
            m,
            lambda: run.ask(f"clk-{m}", "EndDeviceControls", "create", control("clockSync", m)),
        )
    for mid in obs.ids:
        await run.step(
            "disconnect",
            mid,
            lambda m=mid: run.ask(
                f"off-{m}", "EndDeviceControls", "create", control("disconnect", m)
            ),
        )
    run.snap("disconnect")
    for mid in obs.ids:
        await run.step(
            "ping",
            mid,
            lambda m=mid: run.ask(f"ping-{m}", "EndDeviceControls", "create", control("ping", m)),
        )
        await run.step(
            "connect",
            mid,
            lambda m=mid: run.ask(f"on-{m}", "EndDeviceControls", "create", control("connect", m)),
        )
    run.snap("connect")
    for mid in obs.ids:
        await run.step(
            "limit",
            mid,
            lambda m=mid: run.ask(
                f"lim-{m}",
                "EndDeviceControls",
                "create",
                control(
                    "limit",
                    m,
                    demandLimit={"value": LIMIT_W, "unit": "W"},
                    minOverThresholdDuration=10,
                ),
            ),
        )
    run.snap("limit")
    # last, so the store has long taken the collection (it is written after publishing);
    # the range ends after now (an ISO end in whole seconds would cut the last reads)
    now = datetime.now(UTC)
    for mid in obs.ids:
        stored = {
            "EndDevices": [{"mRID": mid}],
            "fromStore": True,
            "timeSchedule": {
                "start": iso(now - timedelta(hours=5)),
                "end": iso(now + timedelta(minutes=1)),
            },
        }
        await run.step(
            "stored", mid, lambda g=stored, m=mid: run.ask(f"stored-{m}", "MeterReadings", "get", g)
        )
