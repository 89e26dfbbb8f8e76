"""Issue 11 items 3, 4, 7, 8, 9 against the real daemon, Mosquitto and simulated meters:
every message and reply validated against docs/schemas.

* MeterReadSchedule over MQTT: created, read in its window after a restart, a deleted
  one never reads;
* effective dates: a disconnect runs at its time, a cancelled connect never runs, a move
  due while the gateway was down runs at start, one later than the grace expires;
* the bulk export in parts no larger than part_max_bytes (the MQTT payload as received),
  reassembled by exportId, and its CSV file;
* a collection that sees drift syncs the clock and reports last_clock_sync;
* ``smmc-gateway export`` while the daemon runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway.cli import main
from smmc_gateway.headend.daemon import DaemonOptions, Gateway, run_daemon
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.clock import FixedTimeSource
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, RunningFleet, running_fleet
from tests.test_daemon_e2e import GW, on, online, reply, request, send

A_PLUS = "1.0.1.8.0.255"


def lab(
    sim: RunningFleet, tmp: Path, broker: Broker, *, schedules: str = "", extra: str = ""
) -> Path:
    meters = [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]
    return write_lab_config(
        tmp / "gw",
        meters,
        broker=(broker.host, broker.port),
        gateway_id=GW,
        groups={m["meter_id"]: "all" for m in meters},
        schedules=schedules or 'load_profile_every = "4h"\nclock_drift_threshold = "0s"',
        extra=extra,
    )


@contextlib.asynccontextmanager
async def gateway(config_path: Path, **kw: Any) -> AsyncIterator[asyncio.Task[int]]:
    stop = asyncio.Event()
    opts = DaemonOptions(
        time_source=FixedTimeSource(synced=True), stop_event=stop, first_read_s=4 * 3600, **kw
    )
    task = asyncio.get_running_loop().create_task(run_daemon(load_config(config_path), opts))
    try:
        yield task
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


def hms(epoch: float) -> str:
    t = datetime.fromtimestamp(epoch, UTC)
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )


def events(col: Collector, meter: str, name: str) -> list[dict[str, Any]]:
    out = []
    for doc in on(col, f"/meter/{meter}/events"):
        validate_message(json.dumps(doc).encode())
        out += [
            e for e in doc["payload"]["EndDeviceEvent"] if e["EndDeviceEventType"]["name"] == name
        ]
    return out


async def answered(
    col: Collector, broker: Broker, noun: str, verb: str, cid: str, payload: dict[str, Any]
) -> dict[str, Any]:
    await send(broker, noun, request(cid, payload, verb=verb, noun=noun))
    doc = await reply(col, cid)
    validate_message(json.dumps(doc).encode())
    return doc


def scheduled_reads(col: Collector, meter: str) -> list[dict[str, Any]]:
    """The readings of ``meter`` that only a schedule naming A+ alone publishes."""
    out = []
    for doc in on(col, f"/meter/{meter}/readings"):
        validate_message(json.dumps(doc).encode())
        (mr,) = doc["payload"]["MeterReading"]
        if [r["ReadingType"]["obis"] for r in mr["Readings"]] == [
            A_PLUS
        ] and "IntervalBlocks" not in mr:
            out.append(mr)
    return out


async def test_a_read_schedule_reads_in_its_window_after_a_restart_and_a_deleted_one_never(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        a, b = (i["meter_id"] for i in sim.info)
        cfg = lab(sim, tmp_path, mosquitto, extra='[commands]\nmin_read_interval = "1m"\n')
        t0 = time.time()
        window = {"start": hms(t0 + 15), "end": hms(t0 + 19)}

        def doc(mrid: str, meter: str) -> dict[str, Any]:
            d = {
                "mRID": mrid,
                "EndDevices": [{"mRID": meter}],
                "ReadingTypes": [{"obis": A_PLUS}],
                "TimeSchedule": {"recurrencePeriod": 3600, "window": window},
            }
            validate(d, "meter-read-schedule-request")
            return d

        async with gateway(cfg):
            await online(col)
            made = await answered(
                col, mosquitto, "MeterReadSchedule", "create", "rs-1", doc("s1", a)
            )
            assert made["reply"]["result"] == "OK", made["reply"]
            validate(made["payload"], "meter-read-schedule")
            for cid, verb, payload in (
                ("rs-2", "create", doc("s2", b)),
                ("rs-3", "delete", {"mRID": "s2"}),
            ):
                got = await answered(col, mosquitto, "MeterReadSchedule", verb, cid, payload)
                assert got["reply"]["result"] == "OK", got["reply"]
        assert time.time() < t0 + 13, "too slow to test the window after the restart"
        async with gateway(cfg):  # a restart before the window
            await online(col)
            listed = await answered(col, mosquitto, "MeterReadSchedule", "get", "rs-4", {})
            validate(listed["payload"], "meter-read-schedule")
            assert [s["mRID"] for s in listed["payload"]["MeterReadSchedule"]] == ["s1"]
            await col.wait(lambda ms: bool(scheduled_reads(col, a)), 40)
            await asyncio.sleep(max(0.0, t0 + 21 - time.time()))
    (read,) = scheduled_reads(col, a)
    stamp = datetime.fromisoformat(read["Readings"][0]["timeStamp"].replace("Z", "+00:00"))
    assert int(t0) + 15 - 1 <= stamp.timestamp() < int(t0) + 19 + 1
    assert scheduled_reads(col, b) == []  # its schedule was deleted before its window


async def test_effective_dated_orders_run_at_their_time_and_can_be_cancelled(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=3)) as sim:
        a, b, c = (i["meter_id"] for i in sim.info)
        cfg = lab(sim, tmp_path, mosquitto)
        async with gateway(cfg):
            await online(col)
            t0 = time.time()
            off = await answered(
                col,
                mosquitto,
                "EndDeviceControls",
                "create",
                "eff-1",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "disconnect"},
                            "EndDevices": [{"mRID": a}],
                            "effectiveDateTime": iso(t0 + 4),
                        }
                    ]
                },
            )
            (entry,) = off["payload"]["EndDeviceControl"]
            assert entry["status"] == "scheduled" and entry["effectiveDateTime"] == iso(t0 + 4)
            on_b = await answered(
                col,
                mosquitto,
                "EndDeviceControls",
                "create",
                "eff-2",
                {
                    "EndDeviceControl": [
                        {
                            "mRID": "reconnect-b",
                            "EndDeviceControlType": {"ref": "connect"},
                            "EndDevices": [{"mRID": b}],
                            "effectiveDateTime": iso(t0 + 60),
                        }
                    ]
                },
            )
            assert on_b["payload"]["EndDeviceControl"][0]["status"] == "scheduled"
            cancel = await answered(
                col,
                mosquitto,
                "EndDeviceControls",
                "cancel",
                "eff-3",
                {"EndDeviceControl": [{"mRID": "reconnect-b"}]},
            )
            assert cancel["reply"]["result"] == "OK"
            assert cancel["payload"]["EndDeviceControl"][0]["status"] == "cancelled"
            move = await answered(
                col,
                mosquitto,
                "MasterDataLinkageConfig",
                "create",
                "eff-4",
                {
                    "ConfigurationEvent": {"reason": "moveOut", "effectiveDateTime": iso(t0 + 12)},
                    "Meter": [{"mRID": c}],
                },
            )
            validate(move["payload"], "master-data-linkage-config-move")
            (mv,) = move["payload"]["MasterDataLinkageConfig"]
            assert mv["status"] == "scheduled"
            await col.wait(lambda ms: bool(events(col, a, "smmc.order.executed")), 30)
            assert events(col, c, "smmc.order.executed") == []
        # the move came due while the gateway was down: it runs at the next start
        await asyncio.sleep(max(0.0, t0 + 13 - time.time()))
        async with gateway(cfg):
            await col.wait(lambda ms: bool(events(col, c, "smmc.order.executed")), 40)
            await col.wait(lambda ms: bool(events(col, c, "smmc.account.finalRead")), 10)
    (done,) = events(col, a, "smmc.order.executed")
    assert done["mRID"] == entry["orderId"] and done["reason"] == "disconnect"
    assert (
        datetime.fromisoformat(done["createdDateTime"].replace("Z", "+00:00")).timestamp()
        >= t0 + 4 - 1
    )
    assert events(col, a, "smmc.switch.disconnected")
    (cancelled,) = events(col, b, "smmc.order.cancelled")
    assert cancelled["mRID"] == on_b["payload"]["EndDeviceControl"][0]["orderId"]
    assert events(col, b, "smmc.switch.connected") == []
    (moved,) = events(col, c, "smmc.order.executed")
    assert moved["mRID"] == mv["orderId"] and moved["reason"] == "moveOut"
    assert sim.fleet.meters[2].meter.disconnect.output_state is False


async def test_an_order_later_than_the_grace_expires(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        (a,) = (i["meter_id"] for i in sim.info)
        cfg = lab(sim, tmp_path, mosquitto, extra='[commands]\norder_grace = "2s"\n')
        async with gateway(cfg):
            await online(col)
            t0 = time.time()
            off = await answered(
                col,
                mosquitto,
                "EndDeviceControls",
                "create",
                "late-1",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "disconnect"},
                            "EndDevices": [{"mRID": a}],
                            "effectiveDateTime": iso(t0 + 3),
                        }
                    ]
                },
            )
            order = off["payload"]["EndDeviceControl"][0]["orderId"]
        await asyncio.sleep(max(0.0, t0 + 7 - time.time()))
        async with gateway(cfg):
            await col.wait(lambda ms: bool(events(col, a, "smmc.order.expired")), 40)
    (expired,) = events(col, a, "smmc.order.expired")
    assert expired["mRID"] == order and "commands.order_grace = 2s" in expired["details"]
    assert events(col, a, "smmc.switch.disconnected") == []
    assert sim.fleet.meters[0].meter.disconnect.output_state is True


async def test_the_bulk_export_arrives_in_bounded_parts_and_as_a_file(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spool = tmp_path / "spool"
    async with running_fleet(FleetSpec(meters=3)) as sim:
        cfg = load_config(
            lab(
                sim,
                tmp_path,
                mosquitto,
                extra=(
                    f'[export]\npart_max_bytes = "16KiB"\ndirectory = "{spool}"\n'
                    '[datastore]\nretention = "30d"\n'
                ),
            )
        )
        gw = Gateway(cfg, DaemonOptions(time_source=FixedTimeSource(), first_read_s=12 * 3600))
        await gw.start()
        try:
            assert gw.headend.datastore.retention_s == 30 * 86400  # [datastore] wired in
            ids = {i["meter_id"] for i in sim.info}
            await col.wait(
                lambda ms: (
                    len({str(m.topic) for m in ms if str(m.topic).endswith("/readings")}) == 3
                ),
                30,
            )
            assert await gw.headend.bulk_export() == 3
            await col.wait(lambda ms: _bulk_complete(col), 30)
            # while the daemon runs, the data warehouse export reads the same store
            out = tmp_path / "dw"
            today = datetime.now(UTC).date().isoformat()
            assert (
                await asyncio.to_thread(
                    main, ["export", "--config", str(cfg.source), "--day", today, "--out", str(out)]
                )
                == 0
            )
        finally:
            await gw.stop()
    raw = [m for m in col.messages if str(m.topic).endswith("/bulk/readings")]
    assert len(raw) >= 3
    docs = []
    for m in raw:
        assert isinstance(m.payload, bytes) and len(m.payload) <= 16 << 10
        docs.append(validate_message(m.payload))
    infos = sorted((d["payload"]["BulkExport"] for d in docs), key=lambda i: i["part"])
    assert [i["part"] for i in infos] == list(range(1, infos[0]["parts"] + 1))
    meters: dict[str, int] = {}
    for d in docs:
        for e in d["payload"]["MeterReading"]:
            meters[e["Meter"]["mRID"]] = meters.get(e["Meter"]["mRID"], 0) + sum(
                len(b["IntervalReadings"]) for b in e["IntervalBlocks"]
            )
    assert set(meters) == ids and all(n >= 4 * 48 for n in meters.values())
    (path,) = spool.iterdir()
    assert path.name.endswith(f"_{infos[0]['exportId']}_readings.csv")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert sum(1 for r in rows if r[1] == "interval") == sum(meters.values())
    dw = sorted(p.name for p in out.iterdir())
    assert dw == sorted(f"{GW}_{today}_{k}.csv" for k in ("events", "readings", "reads"))
    with (out / f"{GW}_{today}_reads.csv").open(newline="") as f:
        reads = list(csv.reader(f))[1:]
    assert {r[0] for r in reads if r[2] == "collect" and r[3] == "ok"} == ids


def _bulk_complete(col: Collector) -> bool:
    docs = [
        json.loads(m.payload)
        for m in col.messages  # type: ignore[arg-type]
        if str(m.topic).endswith("/bulk/readings")
    ]
    if not docs:
        return False
    return (
        len({d["payload"]["BulkExport"]["part"] for d in docs})
        == docs[0]["payload"]["BulkExport"]["parts"]
    )


async def test_drift_seen_by_a_collection_syncs_the_clock(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1, time_offset_s=-60)) as sim:
        (a,) = (i["meter_id"] for i in sim.info)
        cfg = lab(
            sim,
            tmp_path,
            mosquitto,
            schedules='load_profile_every = "4h"\nclock_drift_threshold = "30s"',
        )
        async with gateway(cfg):
            await col.wait(lambda ms: bool(events(col, a, "smmc.clock.adjusted")), 40)
    (drift,) = events(col, a, "smmc.clock.driftDetected")
    assert drift["EndDeviceEventType"]["ref"] == "3.36.117.139"
    assert drift["details"].startswith("deviation -6") or drift["details"].startswith(
        "deviation -5"
    ), drift["details"]
    (adjusted,) = events(col, a, "smmc.clock.adjusted")
    assert "last_clock_sync 20" in adjusted["details"], adjusted["details"]
    after = re.search(r"after ([-+][\d.]+)s", adjusted["details"])
    assert after is not None and abs(float(after[1])) < 1.5, adjusted["details"]
