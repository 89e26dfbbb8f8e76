"""TLS (mutual), password auth and a per-gateway ACL; a refused publish is seen, not lost."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, Collector
from smmc_gateway.uplink import TlsFiles, Uplink, UplinkConfig
from smmc_gateway.uplink.envelope import event
from smmc_gateway.uplink.outbox import OutboxRow
from uplink_helpers import ids_on, running, validate_message, wait_until


def tls_config(broker: Broker, tmp_path: Path, gateway: str, user: str) -> UplinkConfig:
    assert broker.tls is not None
    return UplinkConfig(
        gateway_id=gateway,
        db_path=tmp_path / f"{gateway}.db",
        host=broker.host,
        port=broker.port,
        username=user,
        password_file=broker.passwords[user],
        tls=TlsFiles(ca=broker.tls.ca, cert=broker.tls.client_cert, key=broker.tls.client_key),
    )


async def test_tls_password_acl_delivery(
    mosquitto_tls: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto_tls, "smmc/v1/#", username="central")
    up = Uplink(tls_config(mosquitto_tls, tmp_path, "gw-0001", "gw-0001"))
    async with running(up):
        mid = await up.publish_reading("m1")
        await col.wait(lambda m: ids_on(m) == [mid])
    reading = next(m for m in col.messages if str(m.topic).endswith("/readings"))
    validate_message(reading.payload)  # type: ignore[arg-type]
    assert up.counters.refused == 0 and up.counters.published == 1


async def test_acl_refusal_is_reported_and_dead_lettered(
    mosquitto_tls: Broker, tmp_path: Path, collector: Any
) -> None:
    """User gw-0001 may not publish as gateway gw-0002: the broker answers PUBACK 0x87."""
    col: Collector = await collector(mosquitto_tls, "smmc/v1/#", username="central")
    refused: list[tuple[str, int]] = []
    both = asyncio.Event()

    def on_refused(row: OutboxRow, code: int) -> None:
        refused.append((row.message_id, code))
        if len(refused) == 2:
            both.set()

    up = Uplink(tls_config(mosquitto_tls, tmp_path, "gw-0002", "gw-0001"), on_refused=on_refused)
    async with running(up):
        bad = await up.publish_reading("m1")
        ev = await up.publish_event(
            "m1", [event("smmc.alarm.outage", mrid="e1", created=datetime.now(UTC))]
        )
        await asyncio.wait_for(both.wait(), 10)
        letters = await up.outbox.dead_letters()
        backlog = (await up.status())["backlog"]
    assert sorted(refused) == sorted([(bad, 0x87), (ev, 0x87)])
    assert up.counters.refused == 2 and up.counters.published == 0
    assert {(m, code) for m, _t, code, _r in letters} == {(bad, 0x87), (ev, 0x87)}
    assert all("authori" in r.lower() for *_x, r in letters)
    assert all(b["depth"] == 0 for b in backlog.values())  # not looping on a refusal
    assert ids_on(col.messages) == []  # nothing reached a subscriber


async def test_wrong_password_never_connects(mosquitto_tls: Broker, tmp_path: Path) -> None:
    pw = tmp_path / "wrong"
    pw.write_text("not-the-password\n")
    cfg = dataclasses.replace(
        tls_config(mosquitto_tls, tmp_path, "gw-0001", "gw-0001"),
        password_file=pw,
        backoff_min_s=0.05,
    )
    up = Uplink(cfg)
    task = asyncio.get_running_loop().create_task(up.run())
    await wait_until(lambda: up.counters.connect_failures >= 2)
    await up.stop(0)
    await asyncio.wait_for(task, 10)
    assert up.counters.connects == 0


def test_missing_password_file_names_the_key(tmp_path: Path) -> None:
    cfg = UplinkConfig(
        gateway_id="gw", db_path=tmp_path / "x.db", password_file=tmp_path / "absent"
    )
    with pytest.raises(ValueError, match=r"uplink\.password_file: cannot read"):
        cfg.read_password()
