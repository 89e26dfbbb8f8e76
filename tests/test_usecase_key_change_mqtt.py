"""Use case 10, key change over MQTT (MeterConfig ``keyChange``) against the simulator and a
real Mosquitto: the gateway makes the new keys, transfers them wrapped by the meter's
master key, reads the meter with them afterwards and after a restart (the key journal
persists); a refused change leaves the old keys working and replies FAILED with the reason;
a journal left pending with keys the meter never took falls back to the old keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from conftest import Broker
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.key_change import KeyJournal, KeySet
from test_daemon_e2e import GW, gateway, lab, online, reply, request, send

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

ENERGY = "1.0.1.8.0.255"
ENABLE = ("MeterConfig", "keyChange")  # both off by default


def with_master_key(sim: RunningFleet, config: Path, kek: bytes) -> Path:
    """Add ``master_key`` to every meter's key section of the lab's key file."""
    keys = config.parent / "meter-keys.toml"
    text = keys.read_text()
    for info in sim.info:
        section = f'["k-{info["meter_id"]}"]\n'
        text = text.replace(section, f'{section}master_key = "{kek.hex()}"\n')
    keys.write_text(text)
    return config


def change(cid: str, meter: str, keys: list[str] | None = None) -> bytes:
    item: dict[str, Any] = {"EndDevices": [{"mRID": meter}]}
    if keys is not None:
        item["keys"] = keys
    return request(cid, {"keyChange": item}, verb="change", noun="MeterConfig")


async def read_energy(broker: Broker, col: Any, cid: str, meter: str) -> dict[str, Any]:
    await send(
        broker,
        "MeterReadings",
        request(
            cid,
            {"EndDevices": [{"mRID": meter}], "ReadingTypes": [{"obis": ENERGY}]},
            verb="get",
            noun="MeterReadings",
        ),
    )
    return await reply(col, cid)


async def test_key_change_over_mqtt_then_reads_and_restart(
    mosquitto: Broker, collector: Any, tmp_path: Path, capfd: Any
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.info[0]["meter_id"]
        creds = sim.fleet.meters[0].meter.credentials
        before = KeySet(creds.guek, creds.gak)
        config = with_master_key(sim, lab(sim, tmp_path, mosquitto, enable=ENABLE), creds.kek)
        async with gateway(config):
            await online(col)
            await send(mosquitto, "MeterConfig", change("kc-1", meter))
            doc = await reply(col, "kc-1")
            assert doc["reply"]["result"] == "OK", doc
            (entry,) = doc["payload"]["KeyChange"]
            assert entry["result"] == "OK" and entry["keys"] == ["ek", "ak"]
            assert entry["outcome"] == "changed" and entry["confirmedAt"].endswith("Z")
            creds = sim.fleet.meters[0].meter.credentials
            after = KeySet(creds.guek, creds.gak)
            assert after.ek != before.ek and after.ak != before.ak
            got = await read_energy(mosquitto, col, "get-1", meter)
            assert got["reply"]["result"] == "OK", got
            # only the EK this time: the AK stays
            await send(mosquitto, "MeterConfig", change("kc-2", meter, ["ek"]))
            doc = await reply(col, "kc-2")
            assert doc["reply"]["result"] == "OK", doc
            assert doc["payload"]["KeyChange"][0]["keys"] == ["ek"]
            creds = sim.fleet.meters[0].meter.credentials
            assert creds.guek != after.ek and creds.gak == after.ak
            after = KeySet(creds.guek, creds.gak)
        journal = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json")
        assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
        e = journal.entry(meter)
        assert e is not None and e.state == "confirmed" and e.new == after
        async with gateway(config):  # restarted: the key file still holds the old keys
            await online(col)
            got = await read_energy(mosquitto, col, "get-2", meter)
            assert got["reply"]["result"] == "OK", got
            (mr,) = got["payload"]["MeterReading"]
            assert [r["ReadingType"]["obis"] for r in mr["Readings"]] == [ENERGY]
    out, err = capfd.readouterr()
    seen = out + err + "".join(m.payload.decode() for m in col.messages)
    assert "key_change_confirmed" in seen  # the gateway's log lines are in what is checked
    for k in (after.ek, after.ak, before.ek, before.ak, creds.kek):
        assert k.hex() not in seen.lower()


async def test_a_refused_key_change_leaves_the_old_keys(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.info[0]["meter_id"]
        creds = sim.fleet.meters[0].meter.credentials
        before = KeySet(creds.guek, creds.gak)
        config = with_master_key(
            sim, lab(sim, tmp_path, mosquitto, enable=ENABLE), bytes(16)
        )  # wrong KEK
        async with gateway(config):
            await online(col)
            await send(mosquitto, "MeterConfig", change("kc-bad", meter))
            doc = await reply(col, "kc-bad")
            assert doc["reply"]["result"] == "FAILED", doc
            (entry,) = doc["payload"]["KeyChange"]
            assert entry["outcome"] == "unchanged"
            assert "the meter refused: other-reason" in entry["details"], entry
            assert any("other-reason" in e["details"] for e in doc["reply"]["errors"])
            creds = sim.fleet.meters[0].meter.credentials
            assert KeySet(creds.guek, creds.gak) == before
            got = await read_energy(mosquitto, col, "get-bad", meter)
            assert got["reply"]["result"] == "OK", got
            # invalid requests name the problem and touch nothing
            await send(
                mosquitto,
                "MeterConfig",
                request(
                    "kc-inv",
                    {
                        "keyChange": {
                            "keys": ["gak"],
                            "EndDevices": [{"mRID": meter}],
                            "ek": "00112233445566778899aabbccddeeff",
                        }
                    },
                    verb="change",
                    noun="MeterConfig",
                ),
            )
            doc = await reply(col, "kc-inv")
            details = "\n".join(e["details"] for e in doc["reply"]["errors"])
            assert doc["reply"]["result"] == "FAILED"
            assert "payload.keyChange.keys: ['gak']" in details
            assert "payload.keyChange: unknown field(s) ['ek']" in details
        e = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json").entry(meter)
        assert e is not None and e.state == "confirmed" and e.new == before


async def test_a_pending_journal_falls_back_to_the_old_keys(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    """A crash between journaling and the transfer: the meter never saw the new keys. The
    scheduled and on-demand sessions try the new keys, fall back to the old ones and settle
    the journal (abandon), so the next session goes straight to the old keys."""
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.info[0]["meter_id"]
        creds = sim.fleet.meters[0].meter.credentials
        old = KeySet(creds.guek, creds.gak)
        config = lab(sim, tmp_path, mosquitto)
        journal = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json")
        never_sent = KeySet(bytes(range(16)), bytes(range(16, 32)))
        journal.begin(meter, old, never_sent)
        async with gateway(config):
            await online(col)
            got = await read_energy(mosquitto, col, "get-fb", meter)
            assert got["reply"]["result"] == "OK", got
            e = journal.entry(meter)
            assert e is not None and e.state == "confirmed" and e.new == old
            assert journal.current(meter, never_sent) == [old]
    logged = [json.loads(m.payload) for m in col.messages if "/reply/get-fb" in str(m.topic)]
    assert len(logged) == 1


async def test_sessions_during_a_key_change_do_not_settle_the_journal(
    mosquitto: Broker, tmp_path: Path
) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.info[0]["meter_id"]
        creds = sim.fleet.meters[0].meter.credentials
        old = KeySet(creds.guek, creds.gak)
        cfg = load_config(lab(sim, tmp_path, mosquitto))
        state = tmp_path / "gw" / "state"
        store = InvocationCounterStore(state / "ic.sqlite")
        factory = SessionFactory(system_title=b"SMMCTEST", ic_store=store, response_timeout=2.0)
        assert factory.key_journal is not None
        assert factory.key_journal.path == state / "key-journal.json"
        journal = factory.key_journal
        journal.begin(meter, old, KeySet(bytes(16), bytes(16)))
        factory.changing.add(meter)  # the key change settles itself: a read must not
        async with factory.session(cfg.meters[0]) as s:
            await s.get(8, "0.0.1.0.0.255", 2)
        e = journal.entry(meter)
        assert e is not None and e.state == "pending"
        factory.changing.discard(meter)
        async with factory.session(cfg.meters[0]) as s:
            await s.get(8, "0.0.1.0.0.255", 2)
        e = journal.entry(meter)
        assert e is not None and e.state == "confirmed" and e.new == old
        store.close()
