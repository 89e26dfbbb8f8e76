"""Brokers that say no (issue 11 item 11): every CONNACK/PUBACK reason logged by name; a
broker without retained messages gets a non-retained will and a periodic status; a
refusal retrying cannot fix ends the uplink (and the daemon, non-zero) naming the reason.

A small fake broker (tests/fake_broker.py) for the retain cases and chosen CONNACK codes;
Mosquitto with a password file and an ACL for the real refusals.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import MOSQUITTO_PASSWD, Broker, _write_conf, free_port
from fake_broker import FakeBroker
from smmc_gateway.uplink import Uplink, UplinkConfig
from smmc_gateway.uplink.envelope import Draft, MessageClass
from smmc_gateway.uplink.reasons import (
    FATAL_CONNACK,
    REASON_NAMES,
    BrokerRefused,
    connack_action,
    describe,
)
from uplink_helpers import validate


def config(tmp_path: Path, port: int, **kw: Any) -> UplinkConfig:
    return UplinkConfig(
        gateway_id="gw-r",
        db_path=tmp_path / "up.db",
        host="127.0.0.1",
        port=port,
        backoff_min_s=0.05,
        backoff_max_s=0.2,
        **kw,
    )


def events(captured: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in captured if e["event"] == name]


def test_reason_table_names_and_actions() -> None:
    assert describe(0x9A) == "0x9A Retain not supported"
    assert REASON_NAMES[0x86] == "Bad User Name or Password"
    assert connack_action(0x00) == "ok"
    assert connack_action(0x9A) == "no_retain"
    for code in (0x85, 0x86, 0x87, 0x8A, 0x8C):
        assert connack_action(code) == "fatal", hex(code)
    for code in (0x80, 0x83, 0x88, 0x89, 0x97, 0x9F):
        assert connack_action(code) == "retry", hex(code)
    assert set(FATAL_CONNACK) <= set(REASON_NAMES)


async def test_retain_refused_falls_back_to_plain_will_and_periodic_status(
    tmp_path: Path,
) -> None:
    """CONNACK 0x9A for the retained will: reconnect at once with a plain will; retained
    messages go out plain; "online" repeats; said once, however often it reconnects."""
    async with FakeBroker(refuse_retained_will=True) as broker:
        up = Uplink(config(tmp_path, broker.port, status_interval_s=0.2))
        with structlog.testing.capture_logs() as captured:
            task = asyncio.get_running_loop().create_task(up.run())
            await up.publish(
                [
                    Draft(
                        MessageClass.EVENT,
                        up.topics.config("m1"),
                        "created",
                        "EndDeviceConfig",
                        b"{}",
                        retain=True,
                    )
                ]
            )
            status = up.topics.status()
            await broker.wait(
                lambda: (
                    sum(p.topic == status for p in broker.published) >= 3
                    and any(p.topic.endswith("/config") for p in broker.published)
                )
            )
            # a second connection (the broker dropped us): still no retained will, said once
            for w in list(broker._writers):
                w.close()
            await broker.wait(lambda: len(broker.connects) >= 3)
            await broker.wait(lambda: sum(p.topic == status for p in broker.published) >= 4)
            await up.stop(1)
            await asyncio.wait_for(task, 10)
    assert [c.will_retain for c in broker.connects[:3]] == [True, False, False]
    assert all(not p.retain for p in broker.published)
    states = [json.loads(p.payload)["state"] for p in broker.published if p.topic == status]
    assert states.count("online") >= 4
    for p in broker.published:
        if p.topic == status:
            validate(json.loads(p.payload), "status")
    said = events(captured, "broker_retain_unsupported")
    assert len(said) == 1 and "0x9A Retain not supported" in said[0]["why"]
    refusals = [e for e in events(captured, "uplink_connack") if e["code"] == "0x9A"]
    assert refusals and refusals[0]["reason"] == "Retain not supported"
    assert not up.retain_available


async def test_retain_available_zero_in_connack_means_no_retained_publish(
    tmp_path: Path,
) -> None:
    async with FakeBroker(retain_available=0) as broker:
        up = Uplink(config(tmp_path, broker.port, status_interval_s=0.2))
        seen: list[bool] = []
        up.on_status = seen.append
        with structlog.testing.capture_logs() as captured:
            task = asyncio.get_running_loop().create_task(up.run())
            await up.publish(
                [
                    Draft(
                        MessageClass.EVENT,
                        up.topics.config("m1"),
                        "created",
                        "EndDeviceConfig",
                        b"{}",
                        retain=True,
                    )
                ]
            )
            await broker.wait(
                lambda: (
                    sum(p.topic == up.topics.status() for p in broker.published) >= 2
                    and any(p.topic.endswith("/config") for p in broker.published)
                )
            )
            await up.stop(1)
            await asyncio.wait_for(task, 10)
    assert broker.published and all(not p.retain for p in broker.published)
    assert seen and seen[0] is False
    ok = events(captured, "uplink_connack")
    assert ok and ok[0]["reason"] == "Success" and ok[0]["retain_available"] == 0
    assert len(events(captured, "broker_retain_unsupported")) == 1


async def test_retain_supported_keeps_retained_will_and_status(tmp_path: Path) -> None:
    async with FakeBroker() as broker:
        up = Uplink(config(tmp_path, broker.port, status_interval_s=0.05))
        task = asyncio.get_running_loop().create_task(up.run())
        await broker.wait(lambda: any(p.topic == up.topics.status() for p in broker.published))
        await asyncio.sleep(0.3)  # no periodic status when retain works
        await up.stop(1)
        await asyncio.wait_for(task, 10)
    assert broker.connects[0].will_retain
    online = [
        p
        for p in broker.published
        if p.topic == up.topics.status() and json.loads(p.payload)["state"] == "online"
    ]
    assert len(online) == 1 and online[0].retain


@pytest.mark.parametrize("code", [0x86, 0x87, 0x8A, 0x85, 0x8C])
async def test_unfixable_refusal_fails_loudly(tmp_path: Path, code: int) -> None:
    async with FakeBroker(connack_code=code) as broker:
        up = Uplink(config(tmp_path, broker.port))
        with structlog.testing.capture_logs() as captured, pytest.raises(BrokerRefused) as info:
            await asyncio.wait_for(up.run(), 10)
    assert len(broker.connects) == 1  # not retried
    assert info.value.code == code
    assert REASON_NAMES[code] in str(info.value) and f"0x{code:02X}" in str(info.value)
    loud = events(captured, "broker_refused")
    assert loud and loud[0]["reason"] == REASON_NAMES[code]


async def test_busy_broker_is_retried_with_its_reason_logged(tmp_path: Path) -> None:
    async with FakeBroker(connack_code=0x89) as broker:
        up = Uplink(config(tmp_path, broker.port))
        with structlog.testing.capture_logs() as captured:
            task = asyncio.get_running_loop().create_task(up.run())
            await broker.wait(lambda: len(broker.connects) >= 3)
            broker.connack_code = 0
            await broker.wait(lambda: any(p.topic == up.topics.status() for p in broker.published))
            await up.stop(1)
            await asyncio.wait_for(task, 10)
    busy = [e for e in events(captured, "uplink_connack") if e["code"] == "0x89"]
    assert len(busy) >= 2 and busy[0]["reason"] == "Server busy" and busy[0]["action"] == "retry"


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Any:
    """Mosquitto with a password file (user gw-r) and an ACL: gw-r may write only its
    own gateway's topics, and nothing under .../meter/forbidden/#."""
    d = tmp_path / "broker-auth"
    d.mkdir()
    pw = d / "passwd"
    pw.write_text("")
    subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), "gw-r", "right"], check=True)
    acl = d / "acl"
    acl.write_text(
        "user gw-r\ntopic readwrite smmc/v1/gw-r/status\n"
        "topic read smmc/v1/gw-r/cmd/#\ntopic write smmc/v1/gw-r/reply/#\n"
        "topic write smmc/v1/gw-r/meter/allowed/#\n"
    )
    port = free_port()
    extra = f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
    broker = Broker(d, port, _write_conf(d, port, extra))
    broker.start()
    yield broker
    broker.stop()


async def test_mosquitto_bad_password_fails_loudly(mosquitto_auth: Broker, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    up = Uplink(config(tmp_path, mosquitto_auth.port, username="gw-r", password_file=wrong))
    with pytest.raises(BrokerRefused) as info:
        await asyncio.wait_for(up.run(), 10)
    assert info.value.code in (0x86, 0x87)  # Mosquitto 2 says 0x87 for a wrong password
    assert info.value.reason in str(info.value)
    assert up.counters.connect_failures == 1


async def test_mosquitto_acl_refusal_logged_by_name(mosquitto_auth: Broker, tmp_path: Path) -> None:
    right = tmp_path / "right"
    right.write_text("right\n")
    up = Uplink(config(tmp_path, mosquitto_auth.port, username="gw-r", password_file=right))
    with structlog.testing.capture_logs() as captured:
        task = asyncio.get_running_loop().create_task(up.run())
        refused = asyncio.Event()
        up.on_refused = lambda row, code: refused.set()
        await up.publish_event("forbidden", [])
        await asyncio.wait_for(refused.wait(), 10)
        letters = await up.outbox.dead_letters()
        await up.stop(1)
        await asyncio.wait_for(task, 10)
    logged = events(captured, "publish_refused")
    assert logged and logged[0]["code"] == "0x87" and logged[0]["reason"] == "Not authorized"
    assert letters and letters[0][3] == "Not authorized"


async def test_the_daemon_exits_3_naming_the_refusal(tmp_path: Path) -> None:
    from smmc_gateway.headend.daemon import EXIT_BROKER, DaemonOptions, run_daemon
    from smmc_gateway.headend.labconfig import write_lab_config
    from smmc_gateway.ops.config import load_config

    async with FakeBroker(connack_code=0x8A) as broker:
        cfg = load_config(write_lab_config(tmp_path / "gw", [], broker=("127.0.0.1", broker.port)))
        with structlog.testing.capture_logs() as captured:
            code = await asyncio.wait_for(run_daemon(cfg, DaemonOptions()), 30)
    assert code == EXIT_BROKER == 3
    (said,) = events(captured, "broker_refused_exit")
    assert "0x8A Banned" in said["error"]


async def test_the_registry_repeats_itself_when_the_broker_keeps_nothing_retained() -> None:
    from smmc_gateway.headend.registry import Registry
    from smmc_gateway.uplink.topics import Topics

    class Publisher:
        def __init__(self) -> None:
            self.retain_available = True
            self.drafts: list[Draft] = []

        async def publish(self, drafts: list[Draft]) -> list[str]:
            self.drafts.extend(drafts)
            return ["id"] * len(drafts)

    class Manager:
        def __init__(self) -> None:
            self.last_change = None
            self.fleet: Any = None

        def origin(self, meter_id: str) -> str:
            return "file"

    class Fleet(list[Any]):
        def meters(self) -> list[Any]:
            return []

    manager = Manager()
    manager.fleet = Fleet()
    pub = Publisher()
    reg = Registry(manager, pub, Topics("gw-r"), interval_s=0.05)  # type: ignore[arg-type]
    task = asyncio.get_running_loop().create_task(reg.run())
    reg.on_status(True)
    await asyncio.sleep(0.2)
    assert pub.drafts == []  # retained works: published on changes only
    pub.retain_available = False
    reg.on_status(False)
    await asyncio.sleep(0.3)
    task.cancel()
    assert len(pub.drafts) >= 3 and all(d.retain for d in pub.drafts)
    body = json.loads(pub.drafts[0].payload)
    validate(body, "gateway-registry")
