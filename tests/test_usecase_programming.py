"""Use case 10 (remote programming) against the simulator: SET + read-back per item,
the meter's own refusals, and refusals from the object model before any SET."""

from __future__ import annotations

from typing import Any

from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.usecases.programming import guarded, parse_items, program

from tests.support_sim import FleetSpec, running_fleet

ALARM_FILTER = "0.0.97.98.10.255"


def _session(port: int) -> ClientSession:
    return ClientSession(
        WrapperTransport.tcp("127.0.0.1", port, client_sap=1),
        SessionSettings(client_sap=1, security=Security.none()),
        meter_id="m0",
    )


def test_parse_items_names_every_problem_by_path() -> None:
    problems: list[str] = []
    items = parse_items(
        [
            {
                "class_id": 1,
                "obis": ALARM_FILTER,
                "attribute": 2,
                "value": {"type": "double-long-unsigned", "value": 5},
            },
            {"class_id": "one", "obis": "1.2.3", "attribute": 0, "value": 5},
            {
                "class_id": 1,
                "obis": ALARM_FILTER,
                "attribute": 1,
                "value": {"type": "unsigned", "value": 300},
            },
            "nope",
        ],
        "payload.items",
        problems,
    )
    assert len(items) == 1 and items[0].ref == f"1/{ALARM_FILTER}/2"
    joined = "\n".join(problems)
    for expected in (
        "payload.items[1].class_id: 'one'",
        "payload.items[1].obis: '1.2.3'",
        "payload.items[1].attribute: 0",
        "payload.items[1].value: must be typed",
        "payload.items[2].attribute: 1 is the logical name",
        "payload.items[2].value: not a valid typed DLMS value",
        "payload.items[3]: must be an object",
    ):
        assert expected in joined, joined
    problems = []
    assert parse_items([], "payload.items", problems) == [] and problems
    # OBIS codes come back canonical (an allowlist compares like with like); unknown
    # members and a SET with parameters are named
    problems = []
    items = parse_items(
        [
            {
                "class_id": 7,
                "obis": "1.0.099.01.0.255",
                "attribute": 4,
                "value": {"type": "double-long-unsigned", "value": 900},
            },
            {
                "class_id": 7,
                "obis": "1.0.99.1.0.256",
                "attribute": 4,
                "value": {"type": "double-long-unsigned", "value": 900},
            },
            {
                "class_id": 7,
                "obis": "1.0.99.1.0.255",
                "atribute": 3,
                "attribute": 4,
                "value": {"type": "double-long-unsigned", "value": 900},
            },
            {
                "class_id": 7,
                "obis": "1.0.99.1.0.255",
                "attribute": 4,
                "parameters": {"type": "unsigned", "value": 1},
                "value": {"type": "double-long-unsigned", "value": 900},
            },
        ],
        "S",
        problems,
    )
    assert [it.obis for it in items] == ["1.0.99.1.0.255"]
    assert problems == [
        "S[1].obis: '1.0.99.1.0.256' is not an OBIS code like 1.0.1.8.0.255 (six groups 0..255)",
        "S[2]: unknown field(s) ['atribute']; allowed: EndDeviceGroups, EndDevices, attribute, "
        "class_id, method, obis, parameters, value",
        "S[3].parameters: only with method (ACTION); a SET takes value",
    ]


def test_members_carrying_secrets_are_guarded() -> None:
    """Whatever an allowlist says: key transfer, key agreement, the association's secret
    and the HLS secret methods carry secrets and never travel in a MeterConfig request."""
    assert guarded(64, None, 2) is not None and "key change procedure" in str(guarded(64, None, 2))
    assert guarded(64, None, 3) is not None
    assert guarded(15, 7, None) is not None and "secret" in str(guarded(15, 7, None))
    assert guarded(15, None, 1) is not None and guarded(15, None, 2) is not None
    assert guarded(12, None, 8) is not None
    # other members of those classes are the allowlist's decision
    assert guarded(64, None, 1) is None and guarded(15, 9, None) is None
    assert guarded(7, 4, None) is None


async def test_set_read_back_and_refusals() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        meter = sim.fleet.meters[0].meter
        items = parse_items(
            [
                # writable: set and read back
                {
                    "class_id": 1,
                    "obis": ALARM_FILTER,
                    "attribute": 2,
                    "value": {"type": "double-long-unsigned", "value": 0x0F},
                },
                # writable per the model, but the meter refuses the value (type 9 does not exist)
                {
                    "class_id": 22,
                    "obis": "0.0.15.0.2.255",
                    "attribute": 3,
                    "value": {"type": "enum", "value": 9},
                },
                # read-only per the object model: never sent
                {
                    "class_id": 1,
                    "obis": "0.0.96.1.0.255",
                    "attribute": 2,
                    "value": {"type": "octet-string", "value": "41"},
                },
                # not in the object list at all
                {
                    "class_id": 3,
                    "obis": "1.0.99.99.0.255",
                    "attribute": 2,
                    "value": {"type": "long-unsigned", "value": 1},
                },
                # wrong class for the object
                {
                    "class_id": 3,
                    "obis": ALARM_FILTER,
                    "attribute": 2,
                    "value": {"type": "double-long-unsigned", "value": 1},
                },
            ],
            "items",
            problems := [],
        )
        assert not problems
        device_id_before = meter.objects[_obis("0.0.96.1.0.255")].read(2, _now(), None, None)
        async with _session(sim.ports[0]) as s:
            results = await program(s, items)
        ok, refused_value, read_only, missing, wrong_class = results
        assert ok.ok and ok.read_back == {"type": "double-long-unsigned", "value": 15}
        assert meter.objects[_obis(ALARM_FILTER)].read(2, _now(), None, None)["value"] == 15
        assert not refused_value.ok and refused_value.sent
        assert refused_value.result == "other-reason"
        assert not read_only.ok and not read_only.sent
        assert read_only.result.startswith("read-write-denied")
        assert (
            meter.objects[_obis("0.0.96.1.0.255")].read(2, _now(), None, None) == device_id_before
        )
        assert not missing.sent and missing.result.startswith("object-undefined")
        assert not wrong_class.sent and "object-class-inconsistent" in wrong_class.result


async def test_without_model_check_the_meter_itself_refuses() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        items = parse_items(
            [
                {
                    "class_id": 1,
                    "obis": "0.0.96.1.0.255",
                    "attribute": 2,
                    "value": {"type": "octet-string", "value": "41"},
                }
            ],
            "i",
            [],
        )
        async with _session(sim.ports[0]) as s:
            (r,) = await program(s, items, check_model=False)
        assert r.sent and not r.ok and r.result == "read-write-denied"


def _obis(text: str) -> Any:
    from smmc_gateway.cosem.obis import Obis

    return Obis.coerce(text)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_meter_config_over_mqtt(mosquitto: Any, collector: Any, tmp_path: Any) -> None:
    import json

    from test_daemon_e2e import GW, gateway, lab, online, reply, request, send
    from uplink_helpers import validate, validate_message

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        ids = [i["meter_id"] for i in sim.info]
        # the alarm filter is on the shipped allowlist, the device id is not (default-deny)
        async with gateway(lab(sim, tmp_path, mosquitto, enable=("MeterConfig",))):
            await online(col)
            settings = [
                {
                    "EndDeviceGroups": [{"mRID": "all"}],
                    "class_id": 1,
                    "obis": ALARM_FILTER,
                    "attribute": 2,
                    "value": {"type": "double-long-unsigned", "value": 7},
                },
                {
                    "EndDevices": [{"mRID": ids[0]}],
                    "class_id": 1,
                    "obis": "0.0.96.1.0.255",
                    "attribute": 2,
                    "value": {"type": "octet-string", "value": "41"},
                },
            ]
            validate({"Settings": settings}, "meter-config-request")
            await send(
                mosquitto,
                "MeterConfig",
                request("mc-1", {"Settings": settings}, verb="change", noun="MeterConfig"),
            )
            doc = await reply(col, "mc-1")
            validate_message(json.dumps(doc).encode())
            assert doc["reply"]["result"] == "PARTIAL"
            entries = doc["payload"]["Settings"]
            ok = [e for e in entries if e["index"] == 0]
            assert {e["EndDevices"][0]["mRID"] for e in ok} == set(ids)
            assert all(e["result"] == "OK" and e["value"]["value"] == 7 for e in ok)
            (denied,) = [e for e in entries if e["index"] == 1]
            assert denied["result"] == "FAILED" and denied["code"] == "NotAllowed"
            assert "not on this gateway's MeterConfig allowlist" in denied["details"]
            assert [e["code"] for e in doc["reply"]["errors"]] == ["NotAllowed"]
            assert all(
                rt.meter.objects[_obis(ALARM_FILTER)].read(2, _now(), None, None)["value"] == 7
                for rt in sim.fleet.meters
            )

            await send(
                mosquitto,
                "MeterConfig",
                request(
                    "mc-2",
                    {
                        "Settings": [
                            {
                                "EndDevices": [{"mRID": "ghost"}],
                                "class_id": 1,
                                "obis": "x",
                                "attribute": 2,
                                "value": 3,
                            }
                        ]
                    },
                    verb="create",
                    noun="MeterConfig",
                ),
            )
            doc = await reply(col, "mc-2")
            assert doc["reply"]["result"] == "FAILED"
            details = "\n".join(e["details"] for e in doc["reply"]["errors"])
            for part in (
                "header.verb: 'create'; MeterConfig takes change",
                "payload.Settings[0].obis: 'x'",
                "payload.Settings[0].value",
            ):
                assert part in details, details


async def test_script_execute_is_an_action_item() -> None:
    problems: list[str] = []
    items = parse_items(
        [
            {
                "class_id": 9,
                "obis": "0.0.10.0.100.255",
                "method": 1,
                "parameters": {"type": "long-unsigned", "value": 4},
            },
            {"class_id": 9, "obis": "0.0.10.0.100.255", "method": 9},
            {"class_id": 9, "obis": "0.0.10.0.100.255", "method": 1, "attribute": 2},
        ],
        "S",
        problems,
    )
    assert problems == [
        "S[2]: give either attribute and value (SET) or method and parameters (ACTION), not both"
    ]
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        async with _session(sim.ports[0]) as s:
            execute, unknown = await program(s, items)
            tariff = await s.get(1, "0.0.96.14.0.255", 2)
        assert execute.ok and execute.item.ref == "9/0.0.10.0.100.255/m1"
        assert tariff["value"] == 4
        assert not unknown.sent and "no method 9" in unknown.result


def test_key_change_requests_follow_the_contract() -> None:
    """A key change names meters and which keys, never key material; it does not mix
    with Settings."""
    import jsonschema
    import pytest

    from tests.uplink_helpers import validate

    ok = {"keyChange": {"keys": ["ek"], "EndDevices": [{"mRID": "m1"}]}}
    validate(ok, "meter-config-request")
    for bad in (
        {"keyChange": {"ek": "00" * 16, "EndDevices": [{"mRID": "m1"}]}},
        {"keyChange": {"keys": ["kek"]}},
        {
            **ok,
            "Settings": [
                {
                    "class_id": 1,
                    "obis": "0.0.96.1.0.255",
                    "attribute": 2,
                    "value": {"type": "long-unsigned", "value": 1},
                }
            ],
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, "meter-config-request")
