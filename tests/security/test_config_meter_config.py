"""MeterConfig is default-deny (issue 7 items 8 and 9): every setting is checked against
the configuration's allowlist before any meter is touched; the shipped defaults allow
field settings (a capture period) and refuse push destinations, security setup, the
association's secrets and references, image transfer and the communication setups; an
explicit allow entry turns one on; class 18 and secret-carrying members never pass.
keyChange inside MeterConfig is refused unless ``commands.enabled.keyChange``; one key
change per meter at a time.

Against the simulator (in-process), through ``MeterConfigCommands`` over the head-end's
real scheduler and session factory (no broker needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.headend.commands.meter_config import MeterConfigCommands
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.ops.config_model import CommandsConfig, GatewayConfig
from smmc_gateway.usecases.key_change import KeySet

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

LOAD_PROFILE = "1.0.99.1.0.255"
PUSH = "0.0.25.9.0.255"
IMAGE = "0.0.44.0.0.255"
U32 = "double-long-unsigned"


class CountingScheduler:
    """The real scheduler, counting the sessions asked for."""

    def __init__(self, inner: Scheduler) -> None:
        self.inner = inner
        self.sessions = inner.sessions
        self.opened: list[str] = []

    def session(self, meter_id: str, priority: Any, **kw: Any) -> Any:
        self.opened.append(meter_id)
        return self.inner.session(meter_id, priority, **kw)


@contextlib.asynccontextmanager
async def head_end(
    sim: RunningFleet,
    tmp: Path,
    *,
    extra: str = "",
    enable: Sequence[str] = (),
    master_key: bytes | None = None,
) -> AsyncIterator[tuple[Any, GatewayConfig]]:
    meters = [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]
    path = write_lab_config(
        tmp / "gw",
        meters,
        broker=("127.0.0.1", 1883),
        extra=extra,
        enable=enable,
        groups={m["meter_id"]: "all" for m in meters},
    )
    if master_key is not None:
        keys = path.parent / "meter-keys.toml"
        text = keys.read_text()
        for info in sim.info:
            section = f'["k-{info["meter_id"]}"]\n'
            text = text.replace(section, f'{section}master_key = "{master_key.hex()}"\n')
        keys.write_text(text)
    cfg = load_config(path)
    state = tmp / "gw" / "state"
    fleet = await Fleet.open(cfg.meters, state / "fleet.sqlite")
    store = InvocationCounterStore(state / "ic.sqlite")
    factory = SessionFactory(
        system_title=cfg.gateway.client_system_title, ic_store=store, response_timeout=5.0
    )
    head = SimpleNamespace(
        fleet=fleet, scheduler=CountingScheduler(Scheduler(fleet, factory, max_tcp_sessions=8))
    )
    try:
        yield head, cfg
    finally:
        await fleet.close()
        store.close()


def setting(
    class_id: int,
    obis: str,
    *,
    attribute: int | None = None,
    value: dict[str, Any] | None = None,
    method: int | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"EndDeviceGroups": [{"mRID": "all"}], "class_id": class_id, "obis": obis}
    if method is not None:
        doc["method"] = method
    else:
        doc["attribute"] = attribute
        doc["value"] = value if value is not None else {"type": "unsigned", "value": 1}
    return doc


def read(sim: RunningFleet, obis: str, attribute: int) -> Any:
    return (
        sim.fleet.meters[0]
        .meter.objects[Obis.coerce(obis)]
        .read(attribute, datetime.now(UTC), None, None)
    )


#: What the shipped defaults must refuse (issue 7 item 8), one setting each.
REFUSED = [
    setting(
        40,
        PUSH,
        attribute=3,
        value={
            "type": "structure",
            "value": [
                {"type": "enum", "value": 0},
                {"type": "octet-string", "value": "3130"},
                {"type": "enum", "value": 0},
            ],
        },
    ),  # push destination
    setting(64, "0.0.43.0.1.255", method=1, value=None),  # security_activate
    setting(64, "0.0.43.0.1.255", attribute=2),  # security policy
    setting(
        15, "0.0.40.0.0.255", attribute=7, value={"type": "octet-string", "value": "41424344"}
    ),  # LLS secret
    setting(
        15, "0.0.40.0.0.255", attribute=9, value={"type": "octet-string", "value": "00002b0001ff"}
    ),  # security setup ref
    setting(18, IMAGE, attribute=5, value={"type": "boolean", "value": False}),
    setting(18, IMAGE, method=1),
    setting(23, "0.0.22.0.0.255", attribute=3, value={"type": "enum", "value": 6}),  # HDLC
    setting(
        41, "0.0.25.0.0.255", attribute=2, value={"type": "long-unsigned", "value": 4059}
    ),  # TCP-UDP port
    setting(
        42, "0.0.25.1.0.255", attribute=3, value={"type": "double-long-unsigned", "value": 1}
    ),  # IPv4 address
    setting(
        45, "0.0.25.4.0.255", attribute=2, value={"type": "octet-string", "value": "61706e"}
    ),  # GPRS APN
]


async def test_defaults_allow_a_capture_period_and_refuse_the_dangerous(tmp_path: Path) -> None:
    async with (
        running_fleet(FleetSpec(meters=1, auth="none")) as sim,
        head_end(sim, tmp_path) as (head, cfg),
    ):
        push_before = read(sim, PUSH, 3)
        image_before = read(sim, IMAGE, 5)
        mc = MeterConfigCommands(head, cfg.commands)
        capture = setting(7, LOAD_PROFILE, attribute=4, value={"type": U32, "value": 300})
        out = await mc("change", {"Settings": [capture, *REFUSED]})
        assert out.result == "PARTIAL", out
        entries = out.payload["Settings"]
        assert len(entries) == 1 + len(REFUSED)
        ok = entries[0]
        assert ok["result"] == "OK" and ok["value"] == {"type": U32, "value": 300}, ok
        assert read(sim, LOAD_PROFILE, 4)["value"] == 300
        refused = entries[1:]
        assert all(e["result"] == "FAILED" and e["code"] == "NotAllowed" for e in refused)
        assert all(e["details"].startswith("not sent: ") for e in refused)
        errors = [e for e in out.errors if e["code"] == "NotAllowed"]
        assert len(errors) == len(REFUSED) and len(out.errors) == len(REFUSED)
        for n, (doc, err) in enumerate(zip(REFUSED, errors, strict=True), 1):
            member = (
                f"method {doc['method']}" if "method" in doc else f"attribute {doc['attribute']}"
            )
            assert err["details"].startswith(f"payload.Settings[{n}] "), err
            assert f"class {doc['class_id']} {doc['obis']} {member}" in err["details"], err
        by_class = {doc["class_id"]: e["details"] for doc, e in zip(REFUSED, errors, strict=True)}
        for cls in (40, 23, 41, 42, 45):
            assert "[[commands.meter_config.allow]]" in by_class[cls]
        assert (
            '[[commands.meter_config.allow]] class_id = 40, obis = "0.0.25.9.0.255", '
            "attributes = [3]"
        ) in errors[0]["details"]
        assert "methods = [1]" in errors[1]["details"]
        assert "EndDeviceFirmware" in errors[5]["details"]  # class 18: never
        assert "never sent by MeterConfig" in errors[3]["details"]  # the LLS secret
        assert read(sim, PUSH, 3) == push_before and read(sim, IMAGE, 5) == image_before
        assert head.scheduler.opened == [sim.info[0]["meter_id"]]

        # a request whose settings are all refused opens no session at all
        head.scheduler.opened.clear()
        out = await mc("change", {"Settings": REFUSED})
        assert out.result == "FAILED" and head.scheduler.opened == []
        assert {e["code"] for e in out.errors} == {"NotAllowed"}


async def test_no_commands_config_means_nothing_is_allowed(tmp_path: Path) -> None:
    async with (
        running_fleet(FleetSpec(meters=1, auth="none")) as sim,
        head_end(sim, tmp_path) as (head, _cfg),
    ):
        out = await MeterConfigCommands(head)(
            "change",
            {"Settings": [setting(7, LOAD_PROFILE, attribute=4, value={"type": U32, "value": 60})]},
        )
        assert out.result == "FAILED" and out.errors[0]["code"] == "NotAllowed"
        assert head.scheduler.opened == [] and read(sim, LOAD_PROFILE, 4)["value"] == 900


async def test_an_explicit_allow_entry_turns_one_on(tmp_path: Path) -> None:
    extra = """
[commands.meter_config]
defaults = false

[[commands.meter_config.allow]]
class_id = 40
obis = "0.0.25.9.0.255"
attributes = [3]
note = "push destination: the head-end's new address (on purpose)"
"""
    # (an allow entry naming key_transfer, 64 method 2, is refused when the configuration
    # loads: tests/test_config.py; here the request asks for it anyway)
    async with (
        running_fleet(FleetSpec(meters=1, auth="none")) as sim,
        head_end(sim, tmp_path, extra=extra) as (head, cfg),
    ):
        destination = dict(read(sim, PUSH, 3))
        fields = [dict(f) for f in destination["value"]]
        fields[1]["value"] = b"10.0.0.9:4059".hex()
        new = {"type": "structure", "value": fields}
        out = await MeterConfigCommands(head, cfg.commands)(
            "change",
            {
                "Settings": [
                    setting(40, PUSH, attribute=3, value=new),
                    # defaults = false: the capture period is no longer allowed
                    setting(7, LOAD_PROFILE, attribute=4, value={"type": U32, "value": 60}),
                    setting(64, "0.0.43.0.1.255", method=2, value=None),
                ]
            },
        )
        push, capture, transfer = out.payload["Settings"]
        assert push["result"] == "OK", push
        assert bytes.fromhex(read(sim, PUSH, 3)["value"][1]["value"]) == b"10.0.0.9:4059"
        assert capture["code"] == "NotAllowed" and read(sim, LOAD_PROFILE, 4)["value"] == 900
        assert transfer["code"] == "NotAllowed" and "key change procedure" in transfer["details"]


class _NoObjectList:
    """A meter session that does not give its object list (a fake, recording writes)."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, str, int]] = []

    async def read_object_model(self) -> Any:
        raise DataAccessError(15, "0.0.40.0.0.255", 2, "read-write-denied")

    async def set(self, class_id: int, obis: str, attribute: int, value: Any) -> None:
        self.writes.append((class_id, obis, attribute))

    async def get(self, class_id: int, obis: str, attribute: int) -> Any:
        return {"type": U32, "value": 1}

    async def action(self, *a: Any) -> Any:
        raise AssertionError("no action expected")


async def test_a_pattern_rule_needs_the_meters_object_list() -> None:
    """Rule 7/*.*.*.*.*.*/4 allows a capture period anywhere; without the object list the
    class of the OBIS cannot be confirmed (a lax meter could take 'class 7 attribute 4' at
    the Security setup's OBIS): only settings an exact-OBIS rule allows are sent."""
    fake = _NoObjectList()

    @contextlib.asynccontextmanager
    async def session(meter_id: str, priority: Any) -> AsyncIterator[Any]:
        yield fake

    fleet = SimpleNamespace(has=lambda m: m == "m1", group=lambda g: [], meter=lambda m: None)
    head = SimpleNamespace(fleet=fleet, scheduler=SimpleNamespace(session=session))
    from smmc_gateway.ops.config_guard import SAFE_DEFAULT_RULES

    mc = MeterConfigCommands(head, CommandsConfig(meter_config_rules=SAFE_DEFAULT_RULES))
    one = {"EndDevices": [{"mRID": "m1"}]}
    out = await mc(
        "change",
        {
            "Settings": [
                {
                    **one,
                    "class_id": 7,
                    "obis": "0.0.43.0.1.255",
                    "attribute": 4,
                    "value": {"type": U32, "value": 1},
                },
                {
                    **one,
                    "class_id": 1,
                    "obis": "0.0.97.98.10.255",
                    "attribute": 2,
                    "value": {"type": U32, "value": 1},
                },
            ]
        },
    )
    pattern, exact = out.payload["Settings"]
    assert pattern["result"] == "FAILED" and "cannot be confirmed" in pattern["details"]
    assert exact["result"] == "OK"
    assert fake.writes == [(1, "0.0.97.98.10.255", 2)]


async def test_key_change_is_refused_unless_enabled(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, head_end(sim, tmp_path) as (head, cfg):
        assert not cfg.commands.serves("keyChange")
        creds = sim.fleet.meters[0].meter.credentials
        before = (creds.guek, creds.gak)
        out = await MeterConfigCommands(head, cfg.commands)(
            "change", {"keyChange": {"EndDevices": [{"mRID": sim.info[0]["meter_id"]}]}}
        )
        assert out.result == "FAILED"
        (err,) = out.errors
        assert err["code"] == "NounDisabled" and "commands.enabled.keyChange" in err["details"]
        assert head.scheduler.opened == [] and (creds.guek, creds.gak) == before


async def test_one_key_change_per_meter_at_a_time(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        creds = sim.fleet.meters[0].meter.credentials
        before = KeySet(creds.guek, creds.gak)
        async with head_end(
            sim, tmp_path, enable=("MeterConfig", "keyChange"), master_key=creds.kek
        ) as (head, cfg):
            meter = sim.info[0]["meter_id"]
            mc = MeterConfigCommands(head, cfg.commands)
            request = {"keyChange": {"EndDevices": [{"mRID": meter}]}}
            first, second = await asyncio.gather(mc("change", request), mc("change", request))
            assert first.result == "OK", first
            assert second.result == "FAILED"
            (entry,) = second.payload["KeyChange"]
            assert "already running" in entry["details"] and entry["outcome"] == "unchanged"
            assert "already running" in second.errors[0]["details"]
            after = KeySet(creds.guek, creds.gak)
            assert after != before
            journal = head.scheduler.sessions.key_journal
            e = journal.entry(meter)
            assert e.state == "confirmed" and e.new == after and e.old is None
            assert not head.scheduler.sessions.changing
            # once the first is answered, the next one runs
            third = await mc("change", request)
            assert third.result == "OK", third
            assert KeySet(creds.guek, creds.gak) != after
