"""SIGHUP re-reads the configuration files and applies the difference live (issue 11 item
5): meters added, changed and removed in the CSV, a key file changed; an invalid
configuration changes nothing and says every problem; a section that needs a restart is
named. Reported in the logs, the systemd status and the retained registry."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import structlog
from conftest import Broker
from provisioning_helpers import item, lab_with_keks, registry_where, served
from test_daemon_e2e import GW, gateway, online
from test_provisioning_daemon import ask

from tests.support_sim import FleetSpec, running_fleet


def hup() -> None:
    os.kill(os.getpid(), signal.SIGHUP)  # the daemon's handler runs on this event loop


async def test_sighup_applies_the_difference_or_nothing(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=4)) as sim:
        m0, m1, m2, m3 = (i["meter_id"] for i in sim.info)
        config = lab_with_keks(sim, tmp_path, mosquitto, GW, [0, 1])
        csv = config.parent / "meters.csv"
        with structlog.testing.capture_logs() as logs:
            async with gateway(config):
                await online(col)
                await registry_where(col, GW, lambda r: r["meterCount"] == 2)
                doc = await ask(
                    mosquitto, col, "r-create", "create", {"EndDevices": [item(sim, 3)]}
                )
                assert doc["reply"]["result"] == "OK", doc

                # the operator edits the files: m1 removed, m2 added, m0's port changed,
                # and a schedule (which needs a restart)
                lines = csv.read_text().splitlines()
                header, rows = lines[0], {r.split(",")[0]: r for r in lines[1:]}
                new_m2 = rows[m1].replace(m1, m2).replace(f",{sim.ports[1]},", f",{sim.ports[2]},")
                keys = config.parent / "meter-keys.toml"
                keys.write_text(
                    keys.read_text() + f'["k-{m2}"]\nek = "{sim.info[2]["ek"]}"\n'
                    f'ak = "{sim.info[2]["ak"]}"\n'
                )
                new_m0 = rows[m0].replace(f",{sim.ports[0]},", ",1,")
                csv.write_text("\n".join([header, new_m0, new_m2]) + "\n")
                text = config.read_text()
                config.write_text(
                    text.replace('load_profile_every = "60s"', 'load_profile_every = "120s"')
                )
                hup()
                reg = await registry_where(
                    col, GW, lambda r: r.get("lastChange", {}).get("by") == "reload"
                )
                change = reg["lastChange"]
                assert change["result"] == "OK", change
                assert change["added"] == [m2] and change["removed"] == [m1]
                assert change["changed"] == [m0]
                assert change["restartNeeded"] == ["schedules"]
                assert served(reg) == {m0: "file", m2: "file", m3: "mqtt"}
                await col.wait(
                    lambda ms: any(str(m.topic).endswith(f"/meter/{m2}/readings") for m in ms), 60
                )
                doc = await ask(
                    mosquitto,
                    col,
                    "r-m0",
                    "get",
                    {"EndDevices": [{"mRID": m0}], "ReadingTypes": [{"obis": "1.0.1.8.0.255"}]},
                    noun="MeterReadings",
                )  # port 1 now: nobody there
                assert doc["reply"]["result"] == "FAILED", doc

                # an invalid configuration: nothing changes, every problem is said
                csv.write_text(
                    "\n".join(
                        [
                            header,
                            new_m0.replace(",default,", ",nope,"),
                            new_m2,
                            f"{m3}" + new_m2[len(m2) :],
                        ]
                    )
                    + "\n"
                )
                hup()
                reg = await registry_where(
                    col, GW, lambda r: r.get("lastChange", {}).get("result") == "FAILED"
                )
                problems = " | ".join(reg["lastChange"]["problems"])
                assert "nope" in problems and "meters.csv:2" in problems
                assert served(reg) == {m0: "file", m2: "file", m3: "mqtt"}
                doc = await ask(
                    mosquitto,
                    col,
                    "r-m2",
                    "get",
                    {"EndDevices": [{"mRID": m2}], "ReadingTypes": [{"obis": "1.0.1.8.0.255"}]},
                    noun="MeterReadings",
                )
                assert doc["reply"]["result"] == "OK", doc

                # the files now define the provisioned meter's id: the files win
                csv.write_text(
                    "\n".join(
                        [
                            header,
                            rows[m0],
                            new_m2,
                            rows[m1]
                            .replace(m1, m3)
                            .replace(f",{sim.ports[1]},", f",{sim.ports[3]},"),
                        ]
                    )
                    + "\n"
                )
                keys.write_text(
                    keys.read_text() + f'["k-{m3}"]\nek = "{sim.info[3]["ek"]}"\n'
                    f'ak = "{sim.info[3]["ak"]}"\n'
                )
                hup()
                reg = await registry_where(
                    col,
                    GW,
                    lambda r: (
                        r.get("lastChange", {}).get("by") == "reload"
                        and r["meterCount"] == 3
                        and served(r).get(m3) == "file"
                    ),
                )
                assert reg["lastChange"]["result"] == "OK"
    failed = [e for e in logs if e["event"] == "config_reload_failed"]
    assert failed and any("nope" in p for p in failed[0]["problems"])
    assert any(e["event"] == "config_reload_restart_needed" for e in logs)
    assert any(e["event"] == "provisioned_meter_shadowed" and e["meter_id"] == m3 for e in logs)
