"""Requests of use cases 4 and 8 (customer side) at the dispatcher, with meters that never
answer: every bad request is refused naming the problem before any meter is touched; a
HAN key is refused unless hanKeys is on; MeterConfig can never be the route for a HAN key;
account moves are still told apart from HAN requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.headend.commands.han_linkage import HanCommands
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.usecases.programming import guarded

from tests.security.requests_support import dead_fleet

KEY = {"encryptionKey": "00" * 24, "transferKey": "11" * 16}


def install(*devices: dict[str, Any], meters: tuple[str, ...] = ("m0",)) -> dict[str, Any]:
    return {
        "ConfigurationEvent": {"reason": "hanInstall"},
        "Meter": [{"mRID": m} for m in meters],
        "EndDevice": list(devices),
    }


def details(out: Any) -> str:
    return " | ".join(e["details"] for e in out.errors)


async def test_a_han_key_is_refused_unless_hankeys_is_on(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        out = await lab(
            "MasterDataLinkageConfig", "create", install({"serialNumber": "12345678", "key": KEY})
        )
        assert out.result == "FAILED" and out.errors[0]["code"] == "NounDisabled"
        assert "commands.enabled.hanKeys" in details(out) and "nothing was done" in details(out)
        assert "00" * 24 not in str(out.payload) + details(out)
        # without a key the same install goes on to the meter (which does not answer)
        out = await lab("MasterDataLinkageConfig", "create", install({"serialNumber": "12345678"}))
        assert out.result == "FAILED" and out.errors[0]["code"] == "MeterFailed"
        assert "cannot open tcp" in details(out)
        (entry,) = out.payload["MasterDataLinkageConfig"]
        assert entry["results"][0]["result"] == "FAILED"


async def test_bad_han_requests_name_every_problem(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, enable=("hanKeys",)) as lab:
        out = await lab(
            "MasterDataLinkageConfig",
            "create",
            install(
                {
                    "serialNumber": "1234",
                    "channel": 5,
                    "manufacturer": "smc",
                    "primaryAddress": 300,
                    "colour": "red",
                    "key": {"encryptionKey": "zz", "transferKey": "11"},
                },
                meters=("m0", "m1"),
            ),
        )
        text = details(out)
        assert out.result == "FAILED" and {e["code"] for e in out.errors} == {"InvalidRequest"}
        for part in (
            "serialNumber: '1234' is not the device's 8-digit",
            "channel: 5",
            "manufacturer: 'smc'",
            "primaryAddress: 300",
            "unknown field(s) ['colour']",
            "key.encryptionKey: not 24..24 bytes of hex (value not shown)",
            "key.transferKey: not 16..64 bytes",
            "names one meter",
        ):
            assert part in text, part
        out = await lab(
            "MasterDataLinkageConfig",
            "change",
            {
                "ConfigurationEvent": {"reason": "hanRemove"},
                "Meter": [{"mRID": "m0"}],
                "EndDevice": [{"key": KEY}],
            },
        )
        assert "only hanInstall takes a key" in details(out)
        assert "names no device" in details(out)
        out = await lab("MasterDataLinkageConfig", "get", {"Meter": [{"mRID": "nope"}]})
        assert "meter 'nope' is not configured" in details(out)


async def test_account_moves_are_not_han_requests(tmp_path: Path) -> None:
    assert not HanCommands.claims(
        "create", {"ConfigurationEvent": {"reason": "moveOut"}, "Meter": [{"mRID": "m0"}]}
    )
    assert HanCommands.claims("get", {"Meter": []})
    assert not HanCommands.claims("get", {"ConfigurationEvent": {"reason": "moveIn"}})
    assert HanCommands.claims("create", {"ConfigurationEvent": {"reason": "hanRemove"}})
    async with dead_fleet(tmp_path) as lab:
        out = await lab(
            "MasterDataLinkageConfig",
            "create",
            {"ConfigurationEvent": {"reason": "moveIn"}, "Meter": [{"mRID": "m0"}]},
        )
        assert out.payload["MasterDataLinkageConfig"][0]["reason"] == "moveIn"
        out = await lab(
            "MasterDataLinkageConfig",
            "create",
            {"ConfigurationEvent": {"reason": "moveAway"}, "Meter": [{"mRID": "m0"}]},
        )
        assert "'moveAway' is not one of moveOut, moveIn" in details(out)


async def test_bad_customer_controls_name_every_problem(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        m0 = [{"mRID": "m0"}]
        out = await lab(
            "EndDeviceControls",
            "create",
            {
                "EndDeviceControl": [
                    {
                        "EndDeviceControlType": {"ref": "displayMessage"},
                        "EndDevices": m0,
                        "textMessage": "x" * 1025,
                        "messageCode": "too-long-code",
                    },
                    {
                        "EndDeviceControlType": {"ref": "priceSignal"},
                        "EndDevices": m0,
                        "PanPricingDetail": [
                            {"priceTier": 1, "price": 152.347},
                            {"priceTier": 1, "price": 2},
                            {"priceTier": 0, "price": 1},
                        ],
                    },
                    {
                        "EndDeviceControlType": {"ref": "demandResponseEvent"},
                        "EndDevices": m0,
                        "drProgramLevel": 300,
                        "scheduledInterval": {
                            "start": "2030-01-01T02:00:00Z",
                            "end": "2030-01-01T01:00:00Z",
                        },
                        "demandLimit": {"value": 0, "unit": "kW"},
                    },
                    {
                        "EndDeviceControlType": {"ref": "customerInterface"},
                        "EndDevices": m0,
                        "enabled": "yes",
                    },
                    {"EndDeviceControlType": {"ref": "connect"}, "EndDevices": m0},
                ]
            },
        )
        text = details(out)
        assert out.result == "FAILED"
        for part in (
            "textMessage: ",
            "at most 1024 UTF-8 bytes",
            "messageCode:",
            "tier 1 is given twice",
            "priceTier: 0 is not a tariff number",
            "drProgramLevel: 300",
            "scheduledInterval.end: must be after start",
            "demandLimit:",
            "enabled: 'yes' is not true or false",
            "'connect' cannot be sent with displayMessage",
        ):
            assert part in text, part
        out = await lab(
            "EndDeviceControls",
            "create",
            {
                "EndDeviceControl": [
                    {
                        "EndDeviceControlType": {"ref": "priceSignal"},
                        "EndDevices": m0,
                        "PanPricingDetail": [{"priceTier": 1, "price": 152.347}],
                    }
                ]
            },
        )
        assert "cannot be held exactly" in details(out) and "round it" in details(out)
        # a good control goes to the meter (which does not answer)
        out = await lab(
            "EndDeviceControls",
            "execute",
            {
                "EndDeviceControl": [
                    {
                        "EndDeviceControlType": {"ref": "customerInterface"},
                        "EndDeviceGroups": [{"mRID": "pair"}],
                        "enabled": False,
                    }
                ]
            },
        )
        assert out.result == "FAILED" and len(out.payload["EndDeviceControl"]) == 2
        assert all(e["code"] == "MeterFailed" for e in out.errors)


def test_meterconfig_is_never_the_route_for_a_han_key(tmp_path: Path) -> None:
    for method in (7, 8):
        why = guarded(72, None, method)
        assert why is not None and "MasterDataLinkageConfig hanInstall" in why
    assert guarded(72, 6, None) is None  # the identification is not a secret
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        '[gateway]\nid = "g"\nstate_dir = "s"\n[broker]\nhost = "h"\n'
        "[[commands.meter_config.allow]]\nclass_id = 72\n"
        'obis = "0.*.24.1.0.255"\nmethods = [7, 8]\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "class 72 method 7 carries a secret" in str(err.value)
    assert "class 72 method 8 carries a secret" in str(err.value)


def test_meter_signals_of_use_case_4_have_their_event_names() -> None:
    from smmc_gateway.cim.event_types import event_type as code_of
    from smmc_gateway.usecases.events import event_type, named_alarms

    assert event_type("standard", 70) == event_type("standard", 71) == "smmc.customer.optOut"
    assert event_type("fraud", 70) == "smmc.meter.fraud.70"  # only the standard log's code
    got = named_alarms((1 << 6) | (1 << 25) | (1 << 19), 0)
    assert got == [
        ("smmc.customer.optOut", "customerOptOut", 6),
        ("smmc.alarm.mbusCommunicationError", "mbusChannel4", 19),
        ("smmc.alarm.mbusDeviceDiscovered", "mbusChannel2", 25),
    ]
    for name, _, _ in got:
        assert code_of(name).code.startswith("3.")  # every name has its IEC 61968-9 code
