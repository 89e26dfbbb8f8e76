"""The daemon reads a meter configured ``connection.mode_e = true`` behind a TCP converter.

The simulated meters serve IEC 62056-21 mode E over TCP (``simulate --tcp --hdlc
--optical``): a port that answers HDLC only after the sign-on (a plain HDLC client
gets no UA there, see test_mode_e_tcp). The gateway, configured from a meters CSV
with ``framing = hdlc`` and ``mode_e = true``, collects on its schedule and answers
an on-demand MeterReadings get over MQTT, both through the sign-on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from conftest import Broker
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import load_config
from smmc_gateway.simulator.fleet import SimulatedFleet
from smmc_gateway.simulator.serve import close_servers, start_tcp_per_meter
from uplink_helpers import validate

from tests.support_sim import FleetSpec, free_ports
from tests.test_daemon_e2e import GW, gateway, iso, on, online, reply, request, send


@contextlib.asynccontextmanager
async def mode_e_meters(spec: FleetSpec) -> AsyncIterator[tuple[list[dict[str, Any]], list[int]]]:
    fleet = SimulatedFleet(spec)
    ports = free_ports(len(fleet.meters))
    servers = await start_tcp_per_meter(fleet, ports[0], hdlc=True, optical=True)
    ticker = asyncio.get_running_loop().create_task(fleet.run())
    try:
        real = [int(s.sockets[0].getsockname()[1]) for s in servers]
        yield [m.describe() for m in fleet.meters], real
    finally:
        await fleet.stop()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await close_servers(servers)


def mode_e_lab(info: list[dict[str, Any]], ports: list[int], tmp: Path, broker: Broker) -> Path:
    meters = [{**i, "port": p} for i, p in zip(info, ports, strict=True)]
    path = write_lab_config(
        tmp / "gw",
        meters,
        broker=(broker.host, broker.port),
        gateway_id=GW,
        schedules='load_profile_every = "60s"\nload_profile_jitter = "1s"\n'
        'clock_drift_threshold = "0s"',
    )
    csv = tmp / "gw" / "meters.csv"
    header, *rows = csv.read_text().splitlines()
    rows = [r.replace(",wrapper,", ",hdlc,") + ",true" for r in rows]
    csv.write_text("\n".join([header + ",mode_e", *rows]) + "\n")
    return path


async def test_daemon_collects_and_reads_on_demand_through_mode_e_over_tcp(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with mode_e_meters(FleetSpec(meters=1, auth="hls-gmac")) as (info, ports):
        path = mode_e_lab(info, ports, tmp_path, mosquitto)
        [meter] = load_config(path).meters
        assert meter.connection.kind == "tcp" and meter.connection.mode_e
        assert meter.connection.framing == "hdlc"
        mid = info[0]["meter_id"]
        async with gateway(path):
            # the scheduled collection (first read at start)
            await col.wait(
                lambda ms: any(str(m.topic) == f"smmc/v1/{GW}/meter/{mid}/readings" for m in ms), 60
            )
            await online(col)
            get = {
                "EndDevices": [{"mRID": mid}],
                "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
                "timeSchedule": {"start": iso(-3600), "end": iso(0)},
            }
            await send(
                mosquitto,
                "MeterReadings",
                request("mode-e-get", get, verb="get", noun="MeterReadings"),
            )
            got = await reply(col, "mode-e-get")
    assert got["reply"]["result"] == "OK", json.dumps(got["reply"])
    (mr,) = got["payload"]["MeterReading"]
    assert [r["ReadingType"]["obis"] for r in mr["Readings"]] == ["1.0.1.8.0.255"]
    validate(got["payload"], "meter-readings")
    [readings] = on(col, f"meter/{mid}/readings")[:1]
    assert readings["payload"]["MeterReading"]
