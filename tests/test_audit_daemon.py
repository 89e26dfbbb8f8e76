"""The daemon uplinks CLI audit records (use case 5): spool files in
``state_dir/audit-inbox/`` become schema-valid EndDeviceEvents
``smmc.audit.opticalOperation`` on the real broker, the files move to ``done/``
(``rejected/`` with a bad line, its good records still published), and a restart
after a crash between publish and move publishes nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from conftest import Broker
from smmc_gateway.ops.audit import AuditRecord, Write, write_record
from smmc_gateway.ops.config import load_config
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, running_fleet
from tests.test_daemon_e2e import GW, gateway, lab

TYPE = "smmc.audit.opticalOperation"


def _record(device: str, value: int, result: str = "success") -> dict[str, Any]:
    rec = AuditRecord(
        command="set",
        connection="optical /dev/ttyUSB0",
        client=1,
        auth="lls",
        meter={"deviceId": device, "logicalDeviceName": "SMM" + device},
        result=result,
    )
    w = Write("set", 71, "0.0.17.0.0.255", 4, {"type": "double-long-unsigned", "value": value})
    w.result = result
    rec.writes.append(w)
    return rec.as_dict()


def _audit_events(col: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for m in col.messages:
        if not str(m.topic).endswith("/events"):
            continue
        doc = validate_message(m.payload)
        for e in doc["payload"]["EndDeviceEvent"]:
            if e["EndDeviceEventType"]["name"] == TYPE:
                out.append((str(m.topic), e))
    return out


async def test_spooled_records_are_uplinked_once_and_archived(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        config = lab(sim, tmp_path, mosquitto)
        inbox = Path(load_config(config).gateway.state_dir) / "audit-inbox"
        first = _record("SMC001000009", 4321)
        refused = _record("SMC001000009", 5, result="type-unmatched")
        f1 = write_record(inbox, first)
        f2 = write_record(inbox, refused)
        bad = inbox / "by-hand.jsonl"
        bad.write_text(json.dumps(_record("SMC001000010", 7)) + "\n{not json\n")

        async with gateway(config, audit_interval_s=0.2):
            await col.wait(lambda ms: len(_audit_events(col)) >= 3, 30)
            done = inbox / "done"
            await col.wait(
                lambda ms: (
                    (done / f1.name).exists()
                    and (done / f2.name).exists()
                    and (inbox / "rejected" / bad.name).exists()
                ),
                10,
            )
        events = _audit_events(col)
        assert len(events) == 3
        by_id = {e["mRID"]: (topic, e) for topic, e in events}
        topic, ev = by_id[first["recordId"]]
        assert topic == f"smmc/v1/{GW}/meter/SMC001000009/events"
        validate(ev["EndDeviceEventType"], "gateway-event-types")
        assert ev["EndDeviceEventType"]["ref"] == "3.7.0.24"  # Configuration · NA · Changed
        assert ev["reason"] == "success" and ev["Assets"]["mRID"] == "SMC001000009"
        details = json.loads(ev["details"])
        assert details["writes"][0]["value"]["value"] == 4321 and details["auth"] == "lls"
        assert ev["createdDateTime"].startswith(first["time"][:19])
        assert by_id[refused["recordId"]][1]["reason"] == "type-unmatched"
        assert list(inbox.glob("*.jsonl")) == []

        # A crash after the outbox stored the event but before the file moved: the file
        # is back in the inbox at the next start. Nothing is published twice; a new record
        # dropped in meanwhile still goes up (and shows the scan ran).
        shutil.copy(done / f1.name, inbox / f1.name)
        fresh = _record("SMC001000009", 99)
        write_record(inbox, fresh)
        async with gateway(config, audit_interval_s=0.2):
            await col.wait(
                lambda ms: any(e["mRID"] == fresh["recordId"] for _, e in _audit_events(col)), 30
            )
            await col.wait(lambda ms: not list(inbox.glob("*.jsonl")), 10)
        ids = [e["mRID"] for _, e in _audit_events(col)]
        assert ids.count(first["recordId"]) == 1
        assert ids.count(fresh["recordId"]) == 1 and len(ids) == 4


async def test_cli_on_the_concentrator_writes_into_the_inbox_and_it_goes_up(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    """The whole row 5 path: the CLI at the meter writes into the daemon's inbox
    (SMMC_AUDIT_DIR), the running daemon uplinks it on the meter's topic."""
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        info = sim.info[0]
        config = lab(sim, tmp_path, mosquitto)
        inbox = Path(load_config(config).gateway.state_dir) / "audit-inbox"
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "XDG_STATE_HOME": str(tmp_path / "cli-state"),
            "SMMC_AUDIT_DIR": str(inbox),
            "SMMC_EK": info["ek"],
            "SMMC_AK": info["ak"],
        }
        env.pop("SMMC_PASSWORD", None)
        async with gateway(config, audit_interval_s=0.2):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "smmc_gateway.cli",
                "meter",
                "--tcp",
                f"127.0.0.1:{sim.ports[0]}",
                "--system-title",
                "534d4d4354454348",
                "limit",
                "--threshold",
                "6100",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            await col.wait(lambda ms: len(_audit_events(col)) >= 1, 30)
            await col.wait(lambda ms: not list(inbox.glob("*.jsonl")), 10)
        ((topic, ev),) = _audit_events(col)
        assert topic == f"smmc/v1/{GW}/meter/{info['meter_id']}/events"
        details = json.loads(ev["details"])
        assert details["command"] == "limit" and details["result"] == "success"
        assert details["writes"][0]["value"]["value"] == 6100
        for secret in (info["ek"], info["ak"]):
            assert secret.lower() not in ev["details"].lower()
