"""A reload (SIGHUP) that changes only a meter model's quirks reaches that model's
meters' pushes: the push routing is rebuilt from the live models, not kept from start."""

from __future__ import annotations

from pathlib import Path

import pytest
from smmc_gateway.dlms.push import PushListener, PushRefused
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.fleet_manager import FleetManager
from smmc_gateway.headend.provisioning import ProvisionStore
from smmc_gateway.headend.pushes import PushRouting
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config

from tests.support_real import PEER, by_name, listener, push_apdus

BASE = """
[gateway]
id = "gw-1"
state_dir = "state"
client_system_title = "534d4d4300000009"
[broker]
host = "localhost"
[models.mx382]
extends = "iskraemeco-mx382"
{extra}
[[meters]]
id = "mx382-01"
model = "mx382"
connection = {{ kind = "tcp", host = "192.0.2.10", port = 4059 }}
"""


async def test_a_model_made_strict_by_a_reload_refuses_its_meters_quirky_pushes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE.format(extra=""))
    cfg = load_config(path)
    fleet = await Fleet.open(cfg.meters, tmp_path / "fleet.sqlite")
    sessions = SessionFactory(models=cfg.models)
    manager = FleetManager(
        cfg, fleet, Scheduler(fleet, sessions), sessions, ProvisionStore(fleet.store)
    )
    await manager.start()
    routing = PushRouting(fleet.meters(), models=sessions.models)
    push: PushListener = listener()
    push.lookup = routing.lookup
    manager.attach_push(routing, push, (), {})
    [apdu] = push_apdus(by_name("iskraemeco-mx382-event-notification"))
    try:
        assert push.accept(apdu, PEER).attribute == (1, "128.128.128.128.128.0", 2)
        path.write_text(BASE.format(extra="strict = true"))
        change = await manager.reload()
        assert change.result != "FAILED", change.problems
        assert not (change.added or change.changed or change.removed)
        with pytest.raises(PushRefused, match="event-time-data-tag is not allowed"):
            push.accept(apdu, PEER)
    finally:
        await fleet.close()
