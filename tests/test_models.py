"""Device models as data (docs/models.md): the shipped model files, their validation,
``extends``, the gateway following the model (alarm pushes, event codes) and discovery's
scoring, without a network."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.cim.event_types import lookup
from smmc_gateway.models import shipped as model_files
from smmc_gateway.models.catalog import base_model, shipped_model, shipped_models
from smmc_gateway.models.match import flag_id, propose
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.ops.config_sections import model_section
from smmc_gateway.ops.config_values import Problems
from smmc_gateway.simulator.meter import SimulatedMeter
from smmc_gateway.simulator.options import MeterOptions
from smmc_gateway.usecases import events as events_uc
from smmc_gateway.usecases.discovery import EXPECTED_CLASS, OPTIONAL

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FAMILIES = ("iskraemeco-mx382", "kaifa-ma304", "kamstrup-omnipower", "landis-gyr-e450")
NO_FLAG_ID = ("sagemcom-xt211",)  # its source names no FLAG id: never proposed by discovery
ACME = """
[models.acme]
extends = "idis"
description = "a family with its own alarm bit map and alarm push"
[models.acme.identification]
flag_ids = ["ACM"]
[models.acme.alarms.register_1]
obis = "0.0.97.98.0.255"
[models.acme.alarms.register_1.bits]
7 = { name = "smmc.alarm.restoration", reason = "powerUp" }
9 = "smmc.alarm.outage"
11 = "smmc.alarm.tamper"
[models.acme.pushes.alarm]
obis = "0.5.25.9.0.255"
objects = [[40, "0.5.25.9.0.255", 1], [1, "0.0.97.98.0.255", 2], [1, "0.0.42.0.0.255", 2]]
[models.acme.event_codes]
101 = "smmc.meter.powerDown"
102 = "smmc.meter.powerUp"
[models.acme.values.limiter_threshold]
unit = "W"
scaler = 1
"""


def section(text: str, name: str = "acme") -> tuple[ModelConfig, list[str]]:
    import tomllib

    probs = Problems()
    model = model_section(name, tomllib.loads(text)["models"][name], probs)
    return model, [str(p) for p in probs.items]


def acme() -> ModelConfig:
    model, problems = section(ACME)
    assert problems == []
    return model


def write_config(tmp_path: Path, models: str, meter_model: str) -> Path:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"""
[gateway]
id = "gw-1"
state_dir = "{tmp_path}"
[broker]
host = "localhost"
[[meters]]
id = "m1"
model = "{meter_model}"
connection = {{ kind = "tcp", host = "127.0.0.1", port = 4059 }}
addresses = {{ client = 16, server_logical = 1 }}
security = {{ level = "none" }}
{models}
""")
    return cfg


# -- the shipped files -----------------------------------------------------------------


def test_the_shipped_models_are_package_data_each_with_its_public_source() -> None:
    folder = resources.files("smmc_gateway.models").joinpath("data")
    files = sorted(e.name for e in folder.iterdir() if e.name.endswith(".toml"))
    assert files == [f"{n}.toml" for n in sorted(("idis", "smmc-sim", *FAMILIES, *NO_FLAG_ID))]
    models = shipped_models()
    assert set(models) == {f[:-5] for f in files}
    for name in ("idis", *FAMILIES, *NO_FLAG_ID):
        assert re.search(r"https://\S+", models[name].source), name
        text = folder.joinpath(f"{name}.toml").read_text()
        assert "https://" in text.split("[models.")[0], f"{name}: no source in its comment"
    for name in FAMILIES:
        assert models[name].extends == "idis"
        assert models[name].identification.flag_ids, name
    # every name a model uses has an IEC 61968-9 code
    for m in models.values():
        for reg in m.alarms:
            assert all(lookup(b.name) is not None for b in reg.bits.values())
        for log in m.event_logs:
            assert all(lookup(c.name) is not None for c in log.codes.values())


def test_the_generic_idis_profile_holds_the_public_numbering() -> None:
    idis = shipped_model("idis")
    reg1, reg2 = idis.alarms
    assert (reg1.obis, reg1.filter_obis, reg1.descriptor_obis) == (
        "0.0.97.98.0.255",
        "0.0.97.98.10.255",
        "0.0.97.98.20.255",
    )
    assert reg2.obis == "0.0.97.98.1.255"
    assert reg1.bits[0].name == "smmc.meter.clockInvalid"
    assert (reg1.bits[2].name, reg1.bits[2].reason) == ("smmc.alarm.restoration", "powerUp")
    assert reg1.bits[13].name == "smmc.alarm.tamper"
    assert 5 not in reg1.bits and 28 not in reg1.bits  # no name: published as a bit
    assert events_uc.event_type("standard", 1, idis) == "smmc.meter.powerDown"
    assert events_uc.event_type("standard", 255, idis) == "smmc.meter.eventLogCleared"
    assert events_uc.event_type("disconnector", 50, idis) == "smmc.meter.remoteDisconnection"
    # 47..55 are disconnector-log codes in IDIS, not standard-log ones
    assert events_uc.event_type("standard", 50, idis) == "smmc.meter.standard.50"
    # the simulator's own codes are not IDIS ones
    assert events_uc.event_type("standard", 20, idis) == "smmc.meter.standard.20"
    assert events_uc.event_type("standard", 20) == "smmc.meter.calendarActivated"
    assert idis.values["limiter_threshold"].scaler_from == "monitored"


def test_a_broken_shipped_file_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = dict(model_files._tables())
    tables["broken"] = {
        "alarms": {"register_1": {"obis": "0.0.97.98.0.255", "bits": {"3": "smmc.nothing.here"}}}
    }
    monkeypatch.setattr(model_files, "_tables", lambda: tables)
    shipped_model.cache_clear()
    try:
        with pytest.raises(model_files.ShippedModelError, match=r"broken\.toml.*smmc\.nothing"):
            shipped_model("broken")
    finally:
        shipped_model.cache_clear()


# -- sections: extends, validation ----------------------------------------------------


def test_a_section_extends_a_shipped_model_and_replaces_whole_tables() -> None:
    model = acme()
    assert model.extends == "idis"
    (reg1, reg2) = model.alarms
    assert sorted(reg1.bits) == [7, 9, 11]  # the bit map replaced as a whole
    assert reg1.filter_obis == "0.0.97.98.10.255"  # the rest merged from idis
    assert reg2.obis == "0.0.97.98.1.255"
    (push,) = model.pushes
    assert push.push_id_hex == "0005190900ff" and push.carries_push_id()
    assert events_uc.event_type("standard", 101, model) == "smmc.meter.powerDown"
    assert events_uc.event_type("standard", 1, model) == "smmc.meter.standard.1"  # replaced
    assert events_uc.event_type("disconnector", 50, model) == "smmc.meter.remoteDisconnection"
    # a section without extends builds on the simulator's conventions (as before models)
    plain, problems = section('[models.old]\ncapture_period = "30m"\n', "old")
    assert problems == [] and plain.extends == "smmc-sim"
    assert plain.alarms == base_model().alarms and plain.capture_period_s == 1800
    # an event log's or alarm register's own obis lands in the OBIS map
    moved, problems = section(
        '[models.m]\nextends = "idis"\n[models.m.event_logs.fraud]\nobis = "0.0.99.98.9.255"\n'
        '[models.m.alarms.register_1]\nobis = "0.0.97.98.5.255"\n',
        "m",
    )
    assert problems == []
    assert moved.obis["event_log_fraud"] == "0.0.99.98.9.255"
    assert moved.obis["alarm_register"] == "0.0.97.98.5.255"
    assert moved.alarms[0].bits == shipped_model("idis").alarms[0].bits  # merged, kept
    # a section named like a shipped model overrides that model
    own, problems = section('[models.idis]\ndescription = "ours"\n', "idis")
    assert problems == [] and own.alarms == shipped_model("idis").alarms
    assert own.description == "ours"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'extends = "idsi"',
            'models.x.extends: "idsi" is not a shipped model (did you mean "idis"?)',
        ),
        (
            '[alarms.register_1]\nobis = "0.0.97.98.0.255"\nbits = { 3 = "smmc.meter.nope" }',
            'models.x.alarms.register_1.bits.3: "smmc.meter.nope" has no IEC 61968-9 '
            "EndDeviceEventType code: use a name of python/smmc_gateway/cim/event_types.py",
        ),
        (
            '[alarms.register_1]\nobis = "0.0.97.98.0.255"\nbits = { 32 = "smmc.alarm.outage" }',
            'models.x.alarms.register_1.bits.32: "32" is not a number 0..31',
        ),
        (
            '[alarms.alarm_one]\nobis = "0.0.97.98.0.255"',
            'models.x.alarms.alarm_one: "alarm_one": alarm registers are named register_1',
        ),
        (
            '[pushes.alarm]\nobis = "0.4.25.9.0.255"\nobjects = [[40, "x", 1]]',
            'models.x.pushes.alarm.objects[0].obis: "x" is not an OBIS code',
        ),
        (
            '[pushes.alarm]\nobis = "0.4.25.9.0.255"\nobjects = []',
            "models.x.pushes.alarm.objects: an array is not a non-empty array",
        ),
        (
            "[event_logs.standrd]\ncodes = {}",
            'models.x.event_logs.standrd: unknown key (did you mean "standard"?)',
        ),
        (
            '[event_codes]\nx1 = "smmc.meter.powerDown"',
            'models.x.event_codes.x1: "x1" is not a number 0..65535',
        ),
        (
            '[values.limiter_threshold]\nunit = "W"',
            "models.x.values.limiter_threshold: needs scaler and unit, or scaler_from",
        ),
        (
            '[values.limiter_threshold]\nscaler_from = "meter"',
            'models.x.values.limiter_threshold.scaler_from: "meter" is not one of monitored',
        ),
        (
            '[identification]\nflag_ids = ["lgz"]',
            'models.x.identification.flag_ids[0]: "lgz" is not a FLAG manufacturer id',
        ),
    ],
)
def test_every_bad_model_table_is_named(text: str, expected: str) -> None:
    import tomllib

    probs = Problems()
    model_section("x", tomllib.loads(text), probs)
    # (a table of its own, without a base to merge: as a shipped file is read)
    model_section("x", tomllib.loads(text), probs, shipped=True)
    got = [str(p) for p in probs.items]
    assert any(g.startswith(expected) for g in got), got


def test_a_meter_may_name_a_shipped_model_or_a_section_extending_one(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, ACME, "kaifa-ma304"))
    assert cfg.models[cfg.meter("m1").model].identification.flag_ids == ("KFM",)
    assert set(FAMILIES) | {"idis", "smmc-sim", "default", "acme"} <= set(cfg.models)
    assert cfg.models["acme"].alarms[0].bits[9].name == "smmc.alarm.outage"
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, "", "kaifa-ma30"))
    assert (
        'meters[0].model: "kaifa-ma30" is not a [models.NAME] section or a shipped '
        'model (did you mean "kaifa-ma304"?)'
    ) in str(err.value)


# -- the gateway follows the model: alarm pushes --------------------------------------


def _alarm_push(model: ModelConfig | None, restore: bool = True) -> dict[str, Any]:
    """The alarm push body a simulated meter playing ``model`` sends after an outage,
    through the real encoder and decoder."""
    meter = SimulatedMeter(MeterOptions(history_days=0, model=model), now=T0)
    meter.take_pushes()
    meter.power_outage(T0 + timedelta(seconds=1))
    if restore:
        meter.power_restored(T0 + timedelta(seconds=60))
    (*_, last) = meter.take_pushes()
    decoded: dict[str, Any] = _core.decode(_core.encode(last.body))
    return decoded


def test_the_gateway_names_the_alarm_by_the_model_the_meter_plays() -> None:
    model = acme()
    body = _alarm_push(model)
    assert body["value"][0]["value"] == "0005190900ff"  # model A's push id and layout
    seen: dict[str, int] = {}
    named = events_uc.decode_alarms(body, model, seen, "m1")
    # the outage (bit 9) is still set; the restoration is bit 7 in model A
    assert [(n, r) for n, r, _ in named] == [
        ("smmc.alarm.restoration", "powerUp"),
        ("smmc.alarm.outage", "outage"),
    ]
    assert named[0][2] == "alarm register_1 0.0.97.98.0.255 0x00000280: bit 7"
    assert seen == {"m1/register_1": 0x280}
    # configured with the wrong model, the push is no alarm push of that model
    assert events_uc.decode_alarms(body, None, {}, "m1") == []
    assert events_uc.decode_alarms(body, shipped_model("idis"), {}, "m1") == []
    # the simulator's own conventions name the same signal bit 1
    own = _alarm_push(None)
    assert [n for n, _, _ in events_uc.decode_alarms(own, None, {}, "m1")] == [
        "smmc.alarm.outage",
        "smmc.alarm.restoration",
    ]


def test_a_meter_playing_idis_raises_idis_bits_the_default_model_would_misname() -> None:
    idis = shipped_model("idis")
    body = _alarm_push(idis)
    assert events_uc.alarm_values(body, idis)[0][1] == 1 << 2  # type: ignore[index]
    assert [n for n, _, _ in events_uc.decode_alarms(body, idis, {}, "m")] == [
        "smmc.alarm.restoration"
    ]
    # IDIS has no power-down alarm bit: the outage alone pushes nothing
    meter = SimulatedMeter(MeterOptions(history_days=0, model=idis), now=T0)
    meter.take_pushes()
    meter.power_outage(T0 + timedelta(seconds=1))
    assert meter.take_pushes() == []


def test_unnamed_bits_and_alarm_register_2_are_published_never_dropped() -> None:
    idis = shipped_model("idis")
    body = {
        "type": "structure",
        "value": [
            {"type": "octet-string", "value": "0004190900ff"},
            {"type": "octet-string", "value": "49534b"},
            {"type": "double-long-unsigned", "value": (1 << 5) | (1 << 13)},
        ],
    }
    named = events_uc.decode_alarms(body, idis, {}, "m")
    assert [(n, r) for n, r, _ in named] == [
        ("smmc.alarm.bit5", "alarmBit5"),
        ("smmc.alarm.tamper", "fraudAttempt"),
    ]
    reg2 = idis.alarms[1]
    assert reg2.named(3).reason == "alarmRegister2Bit3"
    assert all(lookup(n) is not None for n, _, _ in named)


def test_a_push_without_a_push_id_is_matched_by_its_layout() -> None:
    """A model whose alarm push carries no push id (values only) is recognised by its
    length; other notifications are not read as alarms."""
    model, problems = section(
        """
[models.bare]
extends = "idis"
[models.bare.pushes.alarm]
obis = "0.0.25.9.0.255"
objects = [[8, "0.0.1.0.0.255", 2], [1, "0.0.97.98.0.255", 2]]
""",
        "bare",
    )
    assert problems == []
    body = {
        "type": "structure",
        "value": [
            {"type": "octet-string", "value": "07ea"},
            {"type": "double-long-unsigned", "value": 4},
        ],
    }
    assert events_uc.alarm_bits(body, model) == 4
    body["value"].append({"type": "unsigned", "value": 1})
    assert events_uc.alarm_bits(body, model) is None


# -- discovery scoring ----------------------------------------------------------------


def _objects(model: ModelConfig) -> dict[str, int]:
    """An object list holding exactly what ``model`` expects."""
    from smmc_gateway.models.match import expected_objects

    return {
        e.obis: (e.classes[0] if e.classes else 1)
        for e in expected_objects(model, EXPECTED_CLASS, OPTIONAL)
    }


def test_discovery_proposes_the_model_by_flag_id_and_object_list() -> None:
    models = shipped_models()
    objects = _objects(models["kaifa-ma304"])
    objects["0.0.99.98.7.255"] = 7  # a log no model uses
    got = propose(
        models, objects, {"logicalDeviceName": "KFM1234567890123"}, EXPECTED_CLASS, OPTIONAL
    )
    best = got[0]
    assert best.model == "kaifa-ma304" and best.flag_match is True
    assert best.missing == [] and best.unused == ["class 7 0.0.99.98.7.255"]
    # the same object list from a Kamstrup: the FLAG id decides against Kaifa
    got = propose(
        models, objects, {"logicalDeviceName": "KAM0000000000001"}, EXPECTED_CLASS, OPTIONAL
    )
    assert got[0].model == "kamstrup-omnipower" and got[0].flag_match is True
    assert "device_id 1.1.0.0.5.255: absent" in got[0].missing  # what does not fit, named
    kaifa = next(m for m in got if m.model == "kaifa-ma304")
    assert kaifa.flag_match is False and kaifa.missing == [] and kaifa.score < got[0].score
    # a model's missing objects are named
    del objects["0.0.97.98.1.255"]
    kaifa = next(
        m
        for m in propose(models, objects, {}, EXPECTED_CLASS, OPTIONAL)
        if m.model == "kaifa-ma304"
    )
    assert "alarm register_2 0.0.97.98.1.255: absent" in kaifa.missing
    assert flag_id({}, ["LGZ0001"]) == "LGZ" and flag_id({"logicalDeviceName": "12"}) is None


def _iter_models() -> Iterator[ModelConfig]:
    yield from shipped_models().values()


def test_each_shipped_model_proposes_itself_for_its_own_object_list() -> None:
    models = shipped_models()
    for model in _iter_models():
        flags = model.identification.flag_ids
        ident = {"logicalDeviceName": flags[0] + "0000000000001"} if flags else {}
        best = propose(models, _objects(model), ident, EXPECTED_CLASS, OPTIONAL)[0]
        assert best.missing == [], model.name
        if flags:
            assert best.model == model.name


def test_a_han_alarm_is_the_bit_the_model_names_an_m_bus_alarm() -> None:
    """The HAN linkage refresh (use case 4) follows the model's names, not bits 16..27."""
    idis = shipped_model("idis")

    def push(push_id: str, bits: int) -> dict[str, Any]:
        return {
            "type": "structure",
            "value": [
                {"type": "octet-string", "value": push_id},
                {"type": "octet-string", "value": "00"},
                {"type": "double-long-unsigned", "value": bits},
            ],
        }

    assert events_uc.han_alarm(push("0004190900ff", 1 << 17), idis)
    assert events_uc.han_alarm(push("0004190900ff", 1 << 25))  # the simulator's, too
    assert not events_uc.han_alarm(push("0004190900ff", 1 << 13), idis)
    body = push("0005190900ff", 1 << 17)
    body["value"][1:] = [*body["value"][2:], body["value"][1]]  # model A's layout
    assert events_uc.alarm_bits(body, acme()) == 1 << 17  # an alarm push of model A...
    assert not events_uc.han_alarm(body, acme())  # ...whose bit 17 is no M-Bus alarm


class _Log:
    """A session stand-in answering a profile read with fixed rows."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    async def read_profile(self, obis: str, **_: Any) -> list[tuple[Any, ...]]:
        return self.rows


async def test_every_row_is_published_whatever_its_code() -> None:
    idis = shipped_model("idis")
    rows = [
        (T0, 44),
        (T0 + timedelta(seconds=1), 77),
        (T0 + timedelta(seconds=2), None),
        (T0 + timedelta(seconds=3), True),
    ]
    got, mark = await events_uc.read_log(
        _Log(rows),
        "event_log_fraud",
        "0.0.99.98.1.255",
        events_uc.LogMark(),  # type: ignore[arg-type]
        T0 + timedelta(hours=1),
        model=idis,
    )
    assert [(e.code, e.name) for e in got] == [
        (44, "smmc.meter.meterCoverRemoved"),
        (77, "smmc.meter.fraud.77"),
        (-1, "smmc.meter.fraud.-1"),
        (-1, "smmc.meter.fraud.-1"),
    ]
    assert (
        got[1].details
        == "fraud event log 0.0.99.98.1.255: code 77 (a code model 'idis' does not name)"
    )
    assert got[2].details.endswith("(the row's code is not a number: None)")
    assert all(lookup(e.name) is not None for e in got) and mark.count == 1
