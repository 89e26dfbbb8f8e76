"""The meter configuration's ``addresses.referencing`` (ln | sn | auto): loaded
from TOML and CSV, bad values named, and carried into the session settings."""

from __future__ import annotations

from pathlib import Path

from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config

from tests.test_config import BASE, keys_file, problems, write

METER = """
[[meters]]
id = "m1"
connection = {{ kind = "tcp", host = "10.0.0.1", port = 4059 }}
{addresses}
"""


def test_referencing_from_toml_defaults_to_auto(tmp_path: Path) -> None:
    body = BASE + METER.format(addresses='addresses = { referencing = "sn" }')
    body += METER.replace('"m1"', '"m2"').format(addresses="")
    cfg = load_config(write(tmp_path, body))
    by_id = {m.id: m for m in cfg.meters}
    assert by_id["m1"].addresses.referencing == "sn"
    assert by_id["m2"].addresses.referencing == "auto"


def test_bad_referencing_is_named(tmp_path: Path) -> None:
    body = BASE + METER.format(addresses='addresses = { referencing = "short" }')
    found = problems(tmp_path, body)
    assert any("meters[0].addresses.referencing" in p and "short" in p for p in found), found


def test_sn_with_hls_is_refused(tmp_path: Path) -> None:
    keys = keys_file(tmp_path)
    body = BASE + METER.format(addresses='addresses = { referencing = "sn" }')
    body += f'security = {{ level = "hls-gmac", key_id = "grp", key_file = "{keys}" }}\n'
    found = problems(tmp_path, body)
    assert any("referencing" in p and "hls-gmac" in p for p in found), found


def test_referencing_from_csv_reaches_the_session(tmp_path: Path) -> None:
    (tmp_path / "meters.csv").write_text("id,host,port,referencing\ncsv1,10.0.0.2,4059,sn\n")
    cfg = load_config(write(tmp_path, 'meters_csv = "meters.csv"\n' + BASE))
    (meter,) = cfg.meters
    assert meter.addresses.referencing == "sn"
    assert SessionFactory().settings(meter).referencing == "sn"


def test_provisioned_meter_carries_referencing_and_the_contract_allows_it() -> None:
    from smmc_gateway.headend.provisioning import Context, build
    from smmc_gateway.ops.config_values import Problems
    from uplink_helpers import validate

    item = {
        "mRID": "sn-1",
        "connection": {"kind": "tcp", "host": "10.0.0.9"},
        "addresses": {"client": 16, "referencing": "sn"},
        "security": {"level": "none"},
    }
    validate({"EndDevices": [item]}, "end-device-config-request")
    probs = Problems()
    ctx = Context(Path("/etc/smmc"), frozenset({"default"}), frozenset(), None)
    meter = build(item, "payload.EndDevices[0]", ctx, probs)
    assert not probs.items and meter is not None
    assert meter.addresses.referencing == "sn"
    bad = {**item, "addresses": {"referencing": "xn"}}
    assert build(bad, "payload.EndDevices[1]", ctx, Problems()) is None
