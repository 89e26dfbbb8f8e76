"""Configuration loading: the examples load, every kind of bad value is named with its key
path and what is allowed, all problems are reported together, secrets stay hidden."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from pathlib import Path

import pytest
from smmc_gateway.ops.config import (
    ConfigError,
    GatewayConfig,
    SerialConnection,
    TcpConnection,
    config_as_dict,
    load_config,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
EK = "000102030405060708090a0b0c0d0e0f"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"

BASE = """
[gateway]
id = "gw-1"
state_dir = "state"
client_system_title = "534d4d4300000009"
[broker]
host = "localhost"
"""


def write(tmp: Path, body: str, name: str = "gateway.toml") -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def keys_file(tmp: Path, body: str | None = None, mode: int = 0o600) -> Path:
    path = tmp / "keys.toml"
    path.write_text(body or f'[grp]\nek = "{EK}"\nak = "{AK}"\n[lls1]\npassword = "s3cr3t-pw"\n')
    path.chmod(mode)
    return path


def problems(tmp: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp, body))
    return [str(p) for p in info.value.problems]


def test_examples_load(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / "keys.example.toml").chmod(0o600)
    cfg = load_config(tmp_path / "docs" / "gateway.example.toml")
    assert isinstance(cfg, GatewayConfig)
    ids = [m.id for m in cfg.meters]
    assert ids == [
        "tcp-0001",
        "bus-0017",
        "optical-1",
        "tcp-1401",
        "csv-0001",
        "csv-0002",
        "csv-0003",
    ]
    first = cfg.meter("tcp-0001")
    assert first.keys is not None and first.keys.ek is not None
    assert first.keys.ek.reveal() == bytes.fromhex(EK)
    assert cfg.models["acme-e450"].registers[1].obis == "1.0.2.8.0.255"
    assert cfg.models["acme-e450"].obis["limiter"] == "0.0.17.0.0.255"
    assert cfg.schedules.load_profile_every_s == 4 * 3600
    assert cfg.outbox.classes["readings"].max_bytes == 256 * 2**20
    assert not cfg.outbox.classes["events"].droppable
    assert [m.id for m in cfg.group("feeder-12")] == [
        "tcp-0001",
        "bus-0017",
        "csv-0001",
        "csv-0003",
    ]


def test_minimal_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.gateway.state_dir == tmp_path / "state"
    assert cfg.broker.port == 1883 and cfg.broker.client_id == "smmc-gw-1"
    assert cfg.metrics.port == 9108 and cfg.push.port == 4059
    assert cfg.limits.sessions_per_bus == 1
    assert cfg.outbox.path == tmp_path / "state" / "outbox.sqlite"
    assert "default" in cfg.models


def test_port_out_of_range_names_key_path(tmp_path: Path) -> None:
    body = BASE + "".join(
        f'[[meters]]\nid = "m{i}"\nconnection = {{ kind = "tcp", host = "h", port = {p} }}\n'
        for i, p in enumerate([1, 2, 3, 70000])
    )
    expected = "meters[3].connection.port: 70000 is out of range (1..65535)"
    assert problems(tmp_path, body) == [expected]


def test_all_errors_collected_with_suggestions(tmp_path: Path) -> None:
    body = """
[gateway]
id = "gw/1"
[broker]
host = "h"
prot = 1883
keepalive = "often"
[[meters]]
id = "m+1"
model = "acme"
connection = { kind = "tcpip", host = "h" }
addresses = { client = 200, server_logical = 1, servr_physical = 3 }
security = { level = "hls" }
[schedules]
load_profile_every = "4 hours"
bulk_export_at = "25:00"
[outbox.events]
ttl = "1d"
[logging]
level = "verbose"
[metricz]
"""
    got = problems(tmp_path, body)
    joined = "\n".join(got)
    expected = [
        "gateway.id: \"gw/1\" contains '/'",
        'broker.prot: unknown key (did you mean "port"?)',
        'broker.keepalive: "often" is not an integer (5..65535)',
        "meters[0].id: \"m+1\" contains '+'",
        'meters[0].model: "acme" is not a [models.NAME] section',
        'meters[0].connection.kind: "tcpip" is not one of tcp | serial | optical '
        '(did you mean "tcp"?)',
        'meters[0].addresses.servr_physical: unknown key (did you mean "server_physical"?)',
        'meters[0].security.level: "hls" is not one of none | lls | hls-gmac',
        'schedules.load_profile_every: "4 hours" is not a duration',
        'schedules.bulk_export_at: "25:00" is not a time of day',
        "outbox.events.ttl: events are never dropped",
        'logging.level: "verbose" is not one of debug | info | warning | error',
        'metricz: unknown key (did you mean "metrics"?)',
    ]
    for fragment in expected:
        assert fragment in joined, f"missing {fragment!r} in:\n{joined}"
    assert len(got) >= len(expected)


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ("addresses = { client = 200 }", "addresses.client: 200 is out of range (0..127)"),
        ("addresses = { size = 3, server_physical = 1 }", "size: 3 is not an HDLC server address"),
        (
            "addresses = { size = 2, server_physical = 300 }",
            "server_physical: 300 is out of range (0..127)",
        ),
        ("addresses = { size = 4 }", "server_physical: is required with a 4-byte HDLC address"),
        ("addresses = { size = 1, server_physical = 5 }", "a 1-byte HDLC address has no physical"),
    ],
)
def test_hdlc_address_rules(tmp_path: Path, snippet: str, fragment: str) -> None:
    body = BASE + '[[meters]]\nid = "m"\n'
    body += f'connection = {{ kind = "optical", device = "/dev/x" }}\n{snippet}\n'
    assert any(fragment in p for p in problems(tmp_path, body)), fragment


def test_wrapper_refuses_hdlc_addressing(tmp_path: Path) -> None:
    body = BASE + '[[meters]]\nid = "m"\nconnection = { host = "h" }\n'
    body += "addresses = { server_physical = 17 }\n"
    assert problems(tmp_path, body) == [
        'meters[0].addresses.server_physical: is not used with the wrapper (TCP framing "wrapper" '
        "addresses by client and server_logical only)"
    ]


def test_bus_reference_duplicates_and_physical_clash(tmp_path: Path) -> None:
    body = (
        BASE
        + """
[[buses]]
name = "rs485-1"
device = "/dev/ttyS1"
baud = 9601
[[meters]]
id = "a"
connection = { kind = "serial", bus = "rs485-1" }
addresses = { server_physical = 17 }
[[meters]]
id = "a"
connection = { kind = "serial", bus = "rs485-1" }
addresses = { server_physical = 17 }
[[meters]]
id = "c"
connection = { kind = "serial", bus = "rs485_1" }
addresses = { server_physical = 18 }
[[meters]]
id = "d"
connection = { kind = "serial", bus = "rs485-1" }
"""
    )
    got = "\n".join(problems(tmp_path, body))
    assert "buses[0].baud: 9601 is not a standard rate" in got
    assert 'meter id "a" is also used by gateway.toml meters[0]' in got
    assert "physical address 17 is also used by meter a" in got
    assert (
        'meters[2].connection.bus: "rs485_1" is not a [[buses]] name (did you mean "rs485-1"?)'
    ) in got
    assert "meters[3].addresses.server_physical: is required on a shared bus" in got


def test_key_file_permissions_refused(tmp_path: Path) -> None:
    keys_file(tmp_path, mode=0o640)
    body = BASE.replace('state_dir = "state"', 'state_dir = "state"\nkey_file = "keys.toml"') + (
        '[[meters]]\nid = "m"\nconnection = { host = "h" }\n'
        'security = { level = "hls-gmac", key_id = "grp" }\n'
    )
    got = problems(tmp_path, body)
    assert len(got) == 1
    assert "has mode 0640" in got[0] and "chmod 600" in got[0]
    assert got[0].startswith("meters[0].security.key_file: key file ")


def test_key_checks(tmp_path: Path) -> None:
    keys_file(tmp_path, f'[grp]\nek = "{EK}"\nak = "abcd"\n[x]\npasword = "p"\n')
    body = BASE + "".join(
        f'[[meters]]\nid = "m{i}"\nconnection = {{ host = "h" }}\n'
        f'security = {{ level = "{lvl}", key_id = "{kid}", key_file = "keys.toml" }}\n'
        for i, (lvl, kid) in enumerate([("hls-gmac", "grp"), ("lls", "gpr"), ("lls", "x")])
    )
    got = "\n".join(problems(tmp_path, body))
    assert "grp.ak: has 2 bytes, expected 16 (value not shown)" in got
    assert 'x.pasword: unknown key (did you mean "password"?)' in got
    assert 'meters[1].security.key_id: "gpr" is not in key file' in got and '"grp"?' in got
    assert 'meters[2].security.key_id: key set "x" has no password (needed for lls)' in got
    assert "abcd" not in got


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    keys_file(tmp_path)
    pw = tmp_path / "broker-pw"
    pw.write_text("broker-secret-123\n")
    pw.chmod(0o600)
    body = (
        BASE
        + 'password_file = "broker-pw"\n'
        + (
            '[[meters]]\nid = "m"\nconnection = { host = "h" }\n'
            'security = { level = "lls", key_id = "lls1", key_file = "keys.toml" }\n'
            '[[meters]]\nid = "n"\nconnection = { host = "h" }\n'
            'security = { level = "hls-gmac", key_id = "grp", key_file = "keys.toml" }\n'
        )
    )
    cfg = load_config(write(tmp_path, body))
    assert cfg.broker.password is not None
    assert cfg.broker.password.reveal() == b"broker-secret-123"
    text = repr(cfg) + str(cfg)
    for secret in ("broker-secret-123", "s3cr3t-pw", EK, AK, repr(bytes.fromhex(EK))):
        assert secret not in text
    assert "Secret('***')" in text
    plain = config_as_dict(cfg)
    dumped = json.dumps(plain)
    assert isinstance(plain, dict) and plain["meters"][1]["keys"]["ek"] == "***"
    assert plain["broker"]["password"] == "***"
    assert "s3cr3t-pw" not in dumped and "broker-secret-123" not in dumped
    with pytest.raises(TypeError):
        pickle.dumps(cfg.broker.password)


def test_csv_errors_name_file_line_column(tmp_path: Path) -> None:
    write(
        tmp_path,
        "id,model,host,port,groups\nok-1,default,h,4059,a;b\nbad,default,h,70000,\n"
        "bad+2,nomodel,h,1,\n",
        "meters.csv",
    )
    got = problems(tmp_path, BASE + 'meters_csv = "meters.csv"\n')
    assert got == [
        "broker.meters_csv: meters_csv is a top-level key: move it above the first "
        "[table] of the file (TOML puts it in the table above it)"
    ]
    got = problems(tmp_path, 'meters_csv = "meters.csv"\n' + BASE)
    assert "meters.csv:3: column port: 70000 is out of range (1..65535)" in got
    assert any(p.startswith("meters.csv:4: column id:") for p in got)
    assert any(p.startswith('meters.csv:4: column model: "nomodel"') for p in got)
    write(tmp_path, "id,host,host\nx,h,h\n", "meters.csv")
    got = problems(tmp_path, 'meters_csv = "meters.csv"\n' + BASE)
    assert got == ['meters.csv:1: column "host" appears more than once']
    write(tmp_path, "id,hots\nx,h\n", "meters.csv")
    got = problems(tmp_path, 'meters_csv = "meters.csv"\n' + BASE)
    assert got[0].startswith('meters.csv:1: unknown column "hots" (did you mean "host"?)')


def test_include_errors_name_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[[meters]]\nid = "i1"\nconnection = { host = "h", port = 0 }\n[broker]\n',
        "meters.d/a.toml",
    )
    got = problems(tmp_path, BASE.replace("[gateway]", 'include = ["meters.d/*.toml"]\n[gateway]'))
    assert "meters.d/a.toml: meters[0].connection.port: 0 is out of range (1..65535)" in got
    assert (
        "meters.d/a.toml: broker: not allowed in an included file (only meters, models, "
        "buses)" in got
    )
    got = problems(tmp_path, BASE.replace("[gateway]", 'include = ["nope.toml"]\n[gateway]'))
    assert got[0].startswith('include[0]: "nope.toml"') and "does not exist" in got[0]


def test_five_thousand_meters_from_csv_and_includes(tmp_path: Path) -> None:
    keys_file(tmp_path)
    rows = ["id,model,host,port,security,key_id,groups"]
    rows += [
        f"c{i:05d},default,10.1.{i // 250}.{i % 250},4059,hls-gmac,grp,f{i % 10}"
        for i in range(2500)
    ]
    write(tmp_path, "\n".join(rows) + "\n", "meters.csv")
    for f in range(5):
        write(
            tmp_path,
            "".join(
                f'[[meters]]\nid = "t{f}-{i}"\nconnection = {{ host = "10.2.{f}.{i % 250}" }}\n'
                for i in range(500)
            ),
            f"meters.d/{f}.toml",
        )
    body = BASE.replace(
        "[gateway]",
        'include = ["meters.d/*.toml"]\nmeters_csv = "meters.csv"\n'
        '[gateway]\nkey_file = "keys.toml"',
    )
    start = time.perf_counter()
    cfg = load_config(write(tmp_path, body))
    elapsed = time.perf_counter() - start
    assert len(cfg.meters) == 5000
    assert len({m.id for m in cfg.meters}) == 5000
    m = cfg.meter("c01234")
    assert isinstance(m.connection, TcpConnection) and m.connection.host == "10.1.4.234"
    assert m.keys is not None and m.groups == ("f4",)
    assert len(cfg.group("f3")) == 250
    print(f"5000 meters loaded in {elapsed:.2f}s")


def test_serial_meter_and_env_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    keys_file(creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    body = BASE.replace('state_dir = "state"', 'key_file = "$CREDENTIALS_DIRECTORY/keys.toml"') + (
        '[[buses]]\nname = "b"\ndevice = "/dev/ttyS0"\n'
        '[[meters]]\nid = "s"\nconnection = { kind = "serial", bus = "b" }\n'
        'addresses = { server_physical = 300 }\nsecurity = { level = "hls-gmac", key_id = "grp" }\n'
    )
    cfg = load_config(write(tmp_path, body))
    m = cfg.meters[0]
    assert isinstance(m.connection, SerialConnection)
    assert m.addresses.address_size == 4 and m.addresses.server_physical == 300
    assert cfg.gateway.key_file == creds / "keys.toml"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    got = problems(tmp_path, body)
    assert (
        'gateway.key_file: "$CREDENTIALS_DIRECTORY/keys.toml" names an environment variable'
        in got[0]
    )


def test_required_keys(tmp_path: Path) -> None:
    got = problems(tmp_path, '[gateway]\n[broker]\n[[meters]]\nmodel = "default"\n')
    assert got == [
        'gateway.id: is required (the gateway\'s MQTT topic level, like "gw-0001")',
        "broker.host: is required",
        "meters[0].id: is required",
        "meters[0].connection.host: is required",
        "meters[0].connection: is required",
    ]


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert "is not valid TOML" in problems(tmp_path, "[gateway\n")[0]
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    assert os.path.exists(tmp_path / "gateway.toml")


def test_every_key_is_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record every allowed-key list the validators use while loading the example, and
    find each key in docs/configuration.md."""
    import re

    from smmc_gateway.ops import config_values

    seen: set[str] = set()
    original = config_values.check_keys

    def recording(table: dict[str, object], path: str, allowed: object, probs: object) -> None:
        allowed_list = list(allowed)  # type: ignore[call-overload]
        seen.update(allowed_list)
        original(table, path, allowed_list, probs)  # type: ignore[arg-type]

    monkeypatch.setattr(config_values, "check_keys", recording)
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / "keys.example.toml").chmod(0o600)
    load_config(tmp_path / "docs" / "gateway.example.toml")
    doc = (DOCS / "configuration.md").read_text()
    assert len(seen) > 60
    missing = sorted(
        k
        for k in seen
        if not re.search(rf"[`.[]{re.escape(k)}[`.\]]", doc)
        and not re.search(rf"^{re.escape(k)} = ", doc, re.M)
    )
    assert not missing, f"undocumented keys: {missing}"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            '[broker.tls]\ncert = "c.pem"\n',
            "broker.tls.cert: {tmp}/c.pem does not exist or is not a file",
        ),
        ("[broker.tls]\n", None),
        (
            "[limits]\nmax_tcp_sessions = true\n",
            "limits.max_tcp_sessions: true is not an integer (1..10000)",
        ),
        ("[limits]\nsessions_per_bus = 2\n", "limits.sessions_per_bus: 2 is out of range (1..1)"),
        (
            '[limits]\nbackoff_initial = "1m"\nbackoff_max = "30s"\n',
            "limits.backoff_max: must not be smaller than backoff_initial",
        ),
        (
            '[limits]\nbackoff_multiplier = "x"\n',
            'limits.backoff_multiplier: "x" is not a number (1.0..10.0)',
        ),
        (
            '[schedules]\nload_profile_every = "1h"\nload_profile_jitter = "2h"\n',
            'schedules.load_profile_jitter: "2h" is out of range (0s..3600s)',
        ),
        (
            '[schedules]\nclock_shift_limit = "20m"\n',
            'schedules.clock_shift_limit: "20m" is out of range (0s..900s)',
        ),
        (
            '[schedules]\nclock_tolerance = "10s"\nclock_shift_limit = "5s"\n',
            "schedules.clock_shift_limit: must not be smaller than clock_tolerance",
        ),
        (
            "[schedules]\nregisters_every = -5\n",
            "schedules.registers_every: -5 is out of range (60s..604800s)",
        ),
        (
            '[outbox.readings]\nmax_bytes = "lots"\n',
            'outbox.readings.max_bytes: "lots" is not a size',
        ),
        ("[outbox.replies]\nmax_messages = 5\n", "outbox.replies.max_messages: replies are never"),
        ("[outbox]\nreadings = 5\n", "outbox.readings: 5 is not a table"),
        ("[metrics]\nport = 4059\n", "metrics.port: 4059 is also push.port; use two ports"),
        ('[metrics]\nenabled = "yes"\n', 'metrics.enabled: "yes" is not a boolean (true or false)'),
        (
            '[models.m.obis]\nload_profil = "1.0.99.1.0.255"\n',
            'models.m.obis.load_profil: unknown key (did you mean "load_profile"?)',
        ),
        (
            '[models.m.obis]\nclock = "0.0.1.0.0.256"\n',
            'models.m.obis.clock: "0.0.1.0.0.256" is not an OBIS code',
        ),
        ('[[models.m.registers]]\nname = "x"\n', "models.m.registers[0].obis: is required"),
        (
            '[[models.m.registers]]\nobis = "1.0.1.8.0.255"\nscaler = 200\n',
            "models.m.registers[0].scaler: 200 is out of range (-128..127)",
        ),
        (
            '[models.m]\ncapture_period = "0s"\n',
            'models.m.capture_period: "0s" is out of range (1s..86400s)',
        ),
        (
            '[[buses]]\nname = "b"\ndevice = "/dev/ttyS0"\nparity = "mark"\n',
            'buses[0].parity: "mark" is not one of none | even | odd',
        ),
        ('[[buses]]\nname = "b"\n', "buses[0].device: is required"),
        (
            '[[buses]]\nname = "b"\ndevice = "/dev/x"\n[[buses]]\nname = "b"\ndevice = "/dev/y"\n',
            'buses[1].name: "b" is defined twice',
        ),
        ('meters = "m1"\n', "meters: is not an array of tables (write [[meters]])"),
    ],
)
def test_bad_values(tmp_path: Path, snippet: str, expected: str | None) -> None:
    body = BASE + snippet if not snippet.startswith("meters =") else snippet + BASE
    if expected is None:
        cfg = load_config(write(tmp_path, body))
        assert cfg.broker.tls is not None and cfg.broker.port == 8883
        return
    got = problems(tmp_path, body)
    want = expected.format(tmp=tmp_path)
    assert any(p.startswith(want) for p in got), got


def test_bad_client_system_title_is_named_without_value(tmp_path: Path) -> None:
    body = BASE.replace('client_system_title = "534d4d4300000009"', 'client_system_title = "zz11"')
    assert problems(tmp_path, body) == [
        "gateway.client_system_title: is not valid hex (expected 16 hex digits; value not shown)"
    ]


def test_duplicate_model_across_files(tmp_path: Path) -> None:
    write(tmp_path, "[models.m]\ncapture_period = 60\n", "inc.toml")
    body = BASE.replace("[gateway]", 'include = "inc.toml"\n[gateway]') + "[models.m]\n"
    assert problems(tmp_path, body) == ["inc.toml: models.m: is defined twice"]


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from smmc_gateway.ops.config import main

    assert main([str(write(tmp_path, BASE))]) == 0
    assert "OK: gateway gw-1, 0 meters" in capsys.readouterr().out
    assert main([str(write(tmp_path, BASE + "[limits]\nretry_attempts = -1\n"))]) == 2
    err = capsys.readouterr().err
    assert "(1 problem):" in err and "limits.retry_attempts: -1 is out of range (0..100)" in err


# ------------------------------------------------------------------ security knobs (issue 7)

HLS_METER = """
[[meters]]
id = "m1"
connection = { kind = "tcp", host = "10.0.0.1" }
security = { level = "hls-gmac", key_id = "a" }
"""


def test_client_system_title_required_with_hls(tmp_path: Path) -> None:
    keys_file(
        tmp_path,
        '[a]\nek = "000102030405060708090a0b0c0d0e0f"\nak = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"\n',
    )
    body = BASE.replace('client_system_title = "534d4d4300000009"\n', 'key_file = "keys.toml"\n')
    got = problems(tmp_path, body + HLS_METER)
    assert len(got) == 1 and got[0].startswith(
        "gateway.client_system_title: is required when a meter uses hls-gmac"
    )
    # without HLS meters the gateway needs no system title
    assert load_config(write(tmp_path, body)).gateway.client_system_title is None


def test_commands_defaults_deny_what_can_brick_a_meter(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    c = cfg.commands
    assert not c.serves("MeterConfig") and not c.serves("keyChange")
    assert not c.serves("EndDeviceFirmware") and c.serves("EndDeviceControls")
    assert c.max_attempts == 2 and c.max_meters_per_request == 256
    assert c.meter_config_allows(7, "1.0.99.1.0.255", attribute=4) is not None
    assert c.meter_config_allows(7, "1.0.99.1.0.255", attribute=2) is None  # the buffer
    assert c.meter_config_allows(40, "0.0.25.9.0.255", attribute=3) is None  # destination
    assert c.meter_config_allows(64, "0.0.43.0.0.255", method=2) is None  # key transfer
    assert c.meter_config_allows(15, "0.0.40.0.0.255", attribute=7) is None
    assert c.meter_config_allows(9, "0.0.10.0.1.255", method=1) is not None
    assert c.meter_config_allows(9, "0.0.10.0.0.255", method=1) is None  # global reset


def test_commands_section_parsed_and_checked(tmp_path: Path) -> None:
    body = (
        BASE
        + """
[commands]
max_meters_per_request = 10
max_attempts = 3
journal_retention = "7d"
[commands.enabled]
MeterConfig = true
[commands.meter_config]
defaults = false
allow = [{ class_id = 41, obis = "0.0.25.0.*.255", attributes = [2], note = "on purpose" }]
"""
    )
    c = load_config(write(tmp_path, body)).commands
    assert c.serves("MeterConfig") and not c.serves("keyChange")
    assert (c.max_meters_per_request, c.max_attempts, c.journal_retention_s) == (10, 3, 7 * 86400)
    assert c.meter_config_allows(7, "1.0.99.1.0.255", attribute=4) is None  # no defaults
    rule = c.meter_config_allows(41, "0.0.25.0.0.255", attribute=2)
    assert rule is not None and rule.note == "on purpose"
    bad = (
        BASE
        + """
[commands]
max_qeued = 3
[commands.enabled]
Firmware = true
MeterConfig = "yes"
[commands.meter_config]
allow = [{ class_id = 18, obis = "0.0.44.0.0.255", methods = [1] },
         { obis = "0.0.1.0.0.255", attributes = [2] },
         { class_id = 1, obis = "1.2.3", attributes = [300] }]
"""
    )
    got = problems(tmp_path, bad)
    assert any(
        p.startswith('commands.max_qeued: unknown key (did you mean "max_queued"?)') for p in got
    )
    assert any(p.startswith("commands.enabled.Firmware: unknown key") for p in got)
    assert 'commands.enabled.MeterConfig: "yes" is not a boolean (true or false)' in got
    assert any(
        p.startswith(
            "commands.meter_config.allow[0].class_id: class 18 cannot be "
            "allowed in MeterConfig (image transfer"
        )
        for p in got
    )
    assert any(
        p.startswith("commands.meter_config.allow[1].class_id: None is not a COSEM class id")
        for p in got
    )
    assert any(
        p.startswith('commands.meter_config.allow[2].obis: "1.2.3" is not an OBIS') for p in got
    )
    assert "commands.meter_config.allow[2].attributes[0]: 300 is not an integer 1..127" in got
    secret = (
        BASE
        + """
[commands.meter_config]
allow = [{ class_id = 64, obis = "0.0.43.0.*.255", methods = [2, 4] },
         { class_id = 15, obis = "0.0.40.0.0.255", attributes = [7, 9] }]
"""
    )
    got = problems(tmp_path, secret)
    assert any(
        p.startswith("commands.meter_config.allow[0]: class 64 method 2 carries a secret")
        for p in got
    )
    assert any(
        p.startswith("commands.meter_config.allow[1]: class 15 attribute 7 carries a secret")
        for p in got
    )
    assert len(got) == 2


def test_push_limits_and_networks(tmp_path: Path) -> None:
    body = (
        BASE
        + """
[push]
max_connections = 10
max_per_peer = 2
first_frame_timeout = "2s"
allow_from = ["10.64.0.0/12", "192.0.2.7"]
"""
    )
    p = load_config(write(tmp_path, body)).push
    assert (p.max_connections, p.max_per_peer, p.first_frame_timeout_s) == (10, 2, 2.0)
    assert p.allow_from == ("10.64.0.0/12", "192.0.2.7/32")
    got = problems(
        tmp_path,
        BASE + '[push]\nmax_per_peer = 20\nmax_connections = 5\nallow_from = ["10.0.0.0/33"]\n',
    )
    assert "push.max_per_peer: 20 is more than max_connections 5" in got
    assert any(p.startswith('push.allow_from[0]: "10.0.0.0/33" is not an IP address') for p in got)


def test_model_quirks_are_named(tmp_path: Path) -> None:
    body = BASE + '[models.x]\nquirks = ["plain-initiate-response"]\n'
    assert "plain-initiate-response" in load_config(write(tmp_path, body)).models["x"].quirks
    got = problems(tmp_path, BASE + '[models.x]\nquirks = ["plain-initiate-respons"]\n')
    assert got[0].startswith(
        'models.x.quirks[0]: "plain-initiate-respons" is not a known quirk '
        '(did you mean "plain-initiate-response"?)'
    )


def test_limits_reserved_share_and_block_ceiling(tmp_path: Path) -> None:
    body = BASE + '[limits]\nreserved_for_collection = 0.5\nmax_block_transfer = "1MiB"\n'
    lim = load_config(write(tmp_path, body)).limits
    assert (lim.reserved_for_collection, lim.max_block_transfer) == (0.5, 1 << 20)
    got = problems(
        tmp_path, BASE + '[limits]\nreserved_for_collection = 1.0\nmax_block_transfer = "1KiB"\n'
    )
    assert "limits.reserved_for_collection: 1.0 is out of range (0.0..0.9)" in got
    assert "limits.max_block_transfer: 1024 bytes is out of range (64KiB..1GiB)" in got


def test_broker_tls_files_are_loaded_at_load_time(tmp_path: Path) -> None:
    """A TLS set-up that cannot work is a configuration problem naming the file and why,
    not something found at the first connection (or never, retrying)."""
    from conftest import make_tls
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    t = make_tls(tmp_path)
    enc = tmp_path / "enc.key"
    enc.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")

    def tls(ca: Path | None, cert: Path | None = None, key: Path | None = None) -> str:
        lines = [f'{k} = "{v}"' for k, v in (("ca", ca), ("cert", cert), ("key", key)) if v]
        return BASE + "[broker.tls]\n" + "\n".join(lines) + "\n"

    cfg = load_config(write(tmp_path, tls(t.ca, t.client_cert, t.client_key)))
    assert cfg.broker.tls is not None and cfg.broker.port == 8883
    assert problems(tmp_path, tls(junk)) == [
        f"broker.tls.ca: {junk} is not a usable CA bundle: no certificate or crl found (a PEM "
        "file of CA certificates is expected)"
    ]
    assert problems(tmp_path, tls(t.ca, t.client_cert, t.server_key)) == [
        f"broker.tls: the certificate {t.client_cert} and the key {t.server_key} do not match "
        "(the key is not the certificate's private key)"
    ]
    assert problems(tmp_path, tls(None, t.client_cert, enc)) == [
        f"broker.tls.key: {enc} is encrypted with a password; the gateway takes an unencrypted "
        "key (readable by the service only)"
    ]
    assert problems(tmp_path, tls(None, junk, t.client_key))[0].startswith(
        f"broker.tls.cert: {junk} is not a usable certificate"
    )
    assert problems(tmp_path, tls(None, t.client_cert, junk))[0].startswith(
        f"broker.tls.key: {junk} is not a usable private key"
    )


def test_the_tls_port_without_tls_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "port = 8883\n") == [
        "broker.port: 8883 is the MQTT-over-TLS port but there is no [broker.tls] table: the "
        "CONNECT (and its password) would go in clear; add [broker.tls] (an empty table uses "
        "the system's CAs)"
    ]
    assert load_config(write(tmp_path, BASE + "port = 1883\n")).broker.tls is None
