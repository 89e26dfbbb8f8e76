"""Issue 11 items 5-6 below the daemon: the KEK configuration, validating a provisioned
meter like a TOML one, the fleet and scheduler learning meters while running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from provisioning_helpers import GW_KEK, private
from smmc_gateway.headend.fleet import Fleet, UnknownMeter
from smmc_gateway.headend.provisioning import Context, build, merged
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.ops.config_values import Problems
from smmc_gateway.usecases.key_bundle import ClearKeys, wrap_bundle

BASE = """
[gateway]
id = "gw-1"
state_dir = "state"
client_system_title = "534d4d4300000009"
{gateway}
[broker]
host = "localhost"
{extra}
"""


def load(tmp: Path, gateway: str = "", extra: str = "") -> Any:
    path = tmp / "gateway.toml"
    path.write_text(BASE.format(gateway=gateway, extra=extra))
    return load_config(path)


def problems(tmp: Path, gateway: str = "", extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp, gateway, extra)
    return [str(p) for p in info.value.problems]


def test_kek_files_are_checked_like_the_key_file(tmp_path: Path) -> None:
    private(tmp_path / "gw.hex", GW_KEK.hex())
    private(tmp_path / "central.hex", "# central\n" + "ab" * 32 + "\n")
    cfg = load(
        tmp_path,
        'key_encryption_key_file = "gw.hex"',
        '[escrow]\nkek_file = "central.hex"\nkek_id = "c-1"\n',
    )
    assert cfg.gateway.key_encryption_key.reveal() == GW_KEK
    assert cfg.escrow.kek.reveal() == bytes([0xAB] * 32) and cfg.escrow.kek_id == "c-1"
    assert GW_KEK.hex() not in repr(cfg) and "ab" * 32 not in repr(cfg)
    (tmp_path / "gw.hex").chmod(0o644)
    found = problems(tmp_path, 'key_encryption_key_file = "gw.hex"')
    assert any("gateway.key_encryption_key_file" in p and "chmod 600" in p for p in found)
    private(tmp_path / "short.hex", "0011")
    found = problems(tmp_path, 'key_encryption_key_file = "short.hex"')
    assert any("holds 2 bytes" in p and "0011" not in p for p in found)
    found = problems(tmp_path, extra='[escrow]\nkek_file = "central.hex"\n')
    assert any("escrow.kek_id" in p and "required" in p for p in found)
    found = problems(tmp_path, extra="[commands.enabled]\nprovisoning = true\n")
    assert any("provisioning" in p for p in found)  # the suggestion names the right key
    cfg = load(tmp_path)
    assert not cfg.commands.serves("provisioning") and not cfg.commands.serves("keyEscrow")


CTX = Context(Path("/etc/smmc"), frozenset({"default"}), frozenset({"rs485-1"}), GW_KEK)


def item(**over: Any) -> dict[str, Any]:
    keys = wrap_bundle(ClearKeys(ek=bytes(16), ak=bytes(range(16))), GW_KEK, "gw")
    out: dict[str, Any] = {
        "mRID": "m-1",
        "connection": {"kind": "tcp", "host": "10.0.0.7"},
        "security": {"level": "hls-gmac", "keys": keys},
    }
    out.update(over)
    return out


def test_a_provisioned_meter_is_validated_like_a_toml_one() -> None:
    probs = Problems()
    meter = build(item(groups=["g1"]), "payload.EndDevices[0]", CTX, probs)
    assert not probs.items and meter is not None
    assert meter.keys is not None and meter.keys.ak is not None
    assert meter.keys.ak.reveal() == bytes(range(16)) and meter.groups == ("g1",)
    assert meter.connection.port == 4059  # type: ignore[union-attr]

    probs = Problems()
    bad = item(
        mRID="a/b",
        model="nope",
        colour="red",
        connection={"kind": "serial", "bus": "rs485-9"},
        addresses={"client": 1, "server_logical": 1, "size": 3},
    )
    assert build(bad, "payload.EndDevices[3]", CTX, probs) is None
    text = [str(p) for p in probs.items]
    joined = " | ".join(text)
    for where in (
        "payload.EndDevices[3].mRID",
        "payload.EndDevices[3].model",
        "payload.EndDevices[3].colour",
        "payload.EndDevices[3].connection.bus",
        "payload.EndDevices[3].addresses.size",
    ):
        assert where in joined, (where, text)

    probs = Problems()
    assert build(item(security={"level": "hls-gmac"}), "p", CTX, probs) is None
    assert "p.security.keys: is required with level hls-gmac" in str(probs.items[0])
    probs = Problems()
    no_kek = Context(CTX.base, CTX.models, CTX.buses, None)
    assert build(item(), "p", no_kek, probs) is None
    assert "key_encryption_key_file" in str(probs.items[0])


def test_a_change_keeps_what_it_does_not_give() -> None:
    old = item(groups=["a"])
    new = merged(old, {"mRID": "m-1", "security": {"level": "hls-gmac"}, "groups": ["b"]})
    assert new["security"]["keys"] == old["security"]["keys"] and new["groups"] == ["b"]
    assert new["connection"] == old["connection"]


async def test_fleet_and_scheduler_learn_and_forget_meters(tmp_path: Path) -> None:
    probs = Problems()
    m1 = build(item(mRID="m-1", groups=["g"]), "p", CTX, probs)
    m2 = build(item(mRID="m-2", groups=["g"]), "p", CTX, probs)
    assert m1 is not None and m2 is not None
    fleet = await Fleet.open([m1], tmp_path / "fleet.sqlite")
    now = [1000.0]
    sched = Scheduler(fleet, SessionFactory(), clock=lambda: now[0])
    ran: list[str] = []

    async def job(meter_id: str) -> None:
        ran.append(meter_id)

    sched.every("collect", 3600, job)
    state = fleet.state("m-1")
    state.reads_ok = 7
    await fleet.save(state)
    assert await fleet.put(m2) == "added" and fleet.group("g") == ["m-1", "m-2"]
    sched.add_meter("m-2")
    assert sched.due_count() == 2
    assert await fleet.put(m2) == "unchanged"
    moved = build(
        item(mRID="m-2", groups=["g"], connection={"kind": "tcp", "host": "10.0.0.8"}),
        "p",
        CTX,
        probs,
    )
    assert moved is not None and await fleet.put(moved) == "changed"
    assert fleet.meter("m-2").connection.host == "10.0.0.8"  # type: ignore[union-attr]
    fleet.remove("m-1")
    sched.forget_meter("m-1")
    assert fleet.group("g") == ["m-2"] and sched.due_count() == 1
    with pytest.raises(UnknownMeter):
        fleet.state("m-1")
    assert await fleet.put(m1) == "added"  # back: its persisted state with it
    assert fleet.state("m-1").reads_ok == 7
    task = asyncio.get_running_loop().create_task(sched.run())
    await asyncio.sleep(0.05)
    await sched.stop(1)
    task.cancel()
    assert ran == ["m-2"]
    await fleet.close()
