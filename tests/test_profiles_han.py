"""The aspect 4 scenarios (profiles/scenarios_han.py) run end to end on the profiles' lab
(real Mosquitto, simulated meters, the gateway) and observe what a profile would show."""

from __future__ import annotations

from smmc_gateway.profiles.scenarios import run_all
from smmc_gateway.profiles.scenarios_han import HAN_SCENARIOS


async def test_the_aspect_4_scenarios_run_and_observe_their_steps() -> None:
    observed = (await run_all(HAN_SCENARIOS)).runs
    assert list(observed) == [f"04-{s.name}" for s in HAN_SCENARIOS]
    text = {
        k: "\n".join(f"{s.source} -> {s.target}: {s.message}" for s in r.steps)
        for k, r in observed.items()
    }
    join = text["04-han-join"]
    assert "Data-notification from push setup 0.4.25.9.0.255" in join
    # the channels read after the push, in one GET with-list (a with-list is one step)
    assert "GET with-list 72/0.1.24.1.0.255/" in join and "72/0.1.24.1.0.255/6" in join
    assert "meter/meter A/linkage MasterDataLinkageConfig created" in join
    assert "smmc.han.deviceJoined" in join
    assert "reply MasterDataLinkageConfig OK" in text["04-han-install"]
    assert "smmc.han.deviceInstalled" in text["04-han-install"]
    assert "SET 113/0.0.19.20.0.255/6" in text["04-customer-display"]
    assert "ACTION 113/0.0.19.20.0.255/2" in text["04-customer-display"]
    # the emergency threshold and profile in one SET with-list
    assert any(
        "SET" in line and "71/0.0.17.0.0.255/8" in line for line in text["04-dr-event"].splitlines()
    )
    assert "SET 1/0.0.96.50.0.255/2" in text["04-customer-interface"]
    assert "smmc.customer.optOut" in text["04-opt-out"]
    assert "ACTION 72/0.1.24.1.0.255" in text["04-han-remove"]


async def test_the_keyed_install_scenario_on_the_profiles_lab() -> None:
    """The profiles' lab turns hanKeys on and gives the meters their master keys."""
    from smmc_gateway.profiles.scenarios import LAB_ENABLE
    from smmc_gateway.profiles.scenarios_han import ENABLE, KEYED

    assert set(ENABLE) <= set(LAB_ENABLE)
    observed = (await run_all((HAN_SCENARIOS[0], *KEYED))).runs
    steps = "\n".join(s.message for s in observed["04-han-install-keyed"].steps)
    assert "reply MasterDataLinkageConfig OK" in steps, steps
    assert "ACTION 72/0.1.24.1.0.255/8" in steps and "ACTION 72/0.1.24.1.0.255/7" in steps
    assert "smmc.han.deviceInstalled" in steps


def test_with_master_keys_gives_each_meter_its_own(tmp_path: object) -> None:
    from pathlib import Path

    from smmc_gateway.headend.labconfig import write_lab_config
    from smmc_gateway.ops.config import load_config
    from smmc_gateway.profiles.scenarios_han import with_master_keys
    from smmc_gateway.simulator.fleet import FleetSpec, SimulatedFleet

    assert isinstance(tmp_path, Path)
    fleet = SimulatedFleet(FleetSpec(meters=2, seed=7))
    info = [{**rt.describe(), "port": 4059 + i} for i, rt in enumerate(fleet.meters)]
    cfg = write_lab_config(tmp_path / "gw", info, broker=("127.0.0.1", 1))
    with_master_keys(tmp_path / "gw" / "meter-keys.toml", fleet)
    loaded = load_config(cfg)
    for rt in fleet.meters:
        keys = loaded.meter(rt.meter_id).keys
        assert keys is not None and keys.master_key is not None
        assert keys.master_key.reveal() == rt.credentials.kek
