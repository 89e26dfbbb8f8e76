"""Aspect 1 drawn from a deployment's configuration, and the `[gateway] operator` key that
names the distribution company as the profiles' author."""

from __future__ import annotations

from pathlib import Path

import pytest
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.profiles.architecture import architecture
from smmc_gateway.profiles.mermaid import flowchart
from smmc_gateway.profiles.texts import load

GATEWAY = """
meters_csv = "meters.csv"

[gateway]
id = "gw-0001"
state_dir = "{state}"
{operator}

[broker]
host = "broker.example.cl"
port = 8883

[broker.tls]

[push]
address = "0.0.0.0"
port = 4060

[[buses]]
name = "rs485-1"
device = "/dev/ttyS1"
baud = 9600

[commands.enabled]
hanKeys = true
"""
CSV = """id,model,kind,host,port,framing,bus,device,client,server_logical,server_physical,\
address_size,security,key_id,key_file,groups
m1,default,tcp,10.0.0.7,4059,wrapper,,,1,1,,,none,,,feeder
m2,default,serial,,,,rs485-1,,1,1,17,2,none,,,feeder
"""


def _config(tmp: Path, operator: str = 'operator = "Distribuidora Ejemplo S.A."') -> Path:
    (tmp / "state").mkdir(exist_ok=True)
    (tmp / "meters.csv").write_text(CSV)
    path = tmp / "gateway.toml"
    path.write_text(GATEWAY.format(state=tmp / "state", operator=operator))
    return path


def test_operator_is_read_and_named_as_author(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    assert cfg.gateway.operator == "Distribuidora Ejemplo S.A."
    assert architecture(cfg).operator == "Distribuidora Ejemplo S.A."
    assert load_config(_config(tmp_path, "")).gateway.operator is None


@pytest.mark.parametrize("value", ['""', '"   "', '"a\\nb"', "42", f'"{"x" * 201}"'])
def test_a_bad_operator_is_a_config_error_naming_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.operator"):
        load_config(_config(tmp_path, f"operator = {value}"))


def test_architecture_comes_from_the_configuration(tmp_path: Path) -> None:
    arch = architecture(load_config(_config(tmp_path)))
    comps = {c.key: c for c in arch.components}
    assert {c.plane for c in arch.components} == {
        "operation",
        "distribution",
        "customer",
        "external",
    }
    for key in (
        "mdm",
        "cis",
        "oms",
        "dr",
        "warehouse",
        "portal",
        "gateway",
        "meters",
        "ihd",
        "broker",
        "vas",
    ):
        assert key in comps, key
    assert comps["broker"].detail == "broker.example.cl:8883 (TLS)"
    assert "tcp-wrapper 1" in comps["meters"].detail and "serial 1" in comps["meters"].detail
    protocols = {(i.source, i.target, i.protocol): i.detail for i in arch.interfaces}
    assert protocols[("gateway", "meters", "serial")].startswith("rs485-1: /dev/ttyS1, 9600")
    assert protocols[("meters", "gateway", "push")] == "0.0.0.0:4060"
    assert ("meters", "ihd", "han") in protocols  # MasterDataLinkageConfig is served
    assert protocols[("technician", "gateway", "file")] == f"{tmp_path}/state/audit-inbox"
    chart = flowchart(arch, load("es"))
    assert 'subgraph customer["Plano del cliente"]' in chart
    assert 'meters -.->|"push"| gateway' in chart


def test_the_lab_hides_what_changes_from_run_to_run(tmp_path: Path) -> None:
    arch = architecture(load_config(_config(tmp_path)), volatile_ports=True)
    details = " ".join(i.detail for i in arch.interfaces)
    assert "0.0.0.0:*" in details and str(tmp_path) not in details
