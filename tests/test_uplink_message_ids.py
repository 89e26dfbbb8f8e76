"""Caller-chosen messageIds: a pending id is stored once; different ids, different rows."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from smmc_gateway.uplink import MessageClass, Uplink, UplinkConfig, envelope
from smmc_gateway.uplink.envelope import reading_message_id

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 27, 12, 15, tzinfo=UTC)
UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BLOCKS = b'[{"ReadingType":{"ref":"lp"},"IntervalReadings":[]}]'


async def rows(up: Uplink) -> list[tuple[str, int]]:
    out = []
    for r in await up.outbox.next_batch(100):
        out.append((r.message_id, json.loads(r.payload)["header"]["seq"]))
    return out


async def test_same_id_twice_stores_one_row(tmp_path: Path) -> None:
    up = Uplink(UplinkConfig("gw-1", tmp_path / "o.db"))
    try:
        mid = reading_message_id("gw-1", "m1", "profile", T0, T1, "2")
        a = await up.publish_reading("m1", (), BLOCKS, message_id=mid)
        b = await up.publish_reading("m1", (), BLOCKS, message_id=mid)
        assert a == b == mid
        assert await rows(up) == [(mid, 1)]  # one row, seq not advanced by the repeat
        assert up.outbox.counters.stored == 1
        # both in one batch: still one row
        again = await up.publish([up_draft(up, "m2", "x"), up_draft(up, "m2", "x")])
        assert again == ["x", "x"]
        assert [m for m, _ in await rows(up)] == [mid, "x"]
        assert (await up.outbox.backlog())[MessageClass.TELEMETRY].depth == 2
    finally:
        await up.store.close()


async def test_different_ids_and_no_id_store_separately(tmp_path: Path) -> None:
    up = Uplink(UplinkConfig("gw-1", tmp_path / "o.db"))
    try:
        first = reading_message_id("gw-1", "m1", "profile", T0, T1, "2")
        more = reading_message_id("gw-1", "m1", "profile", T0, T1, "3")
        assert first != more
        a = await up.publish_reading("m1", (), BLOCKS, message_id=first)
        b = await up.publish_reading("m1", (), BLOCKS, message_id=more)
        c = await up.publish_reading("m1", (), BLOCKS)
        d = await up.publish_reading("m1", (), BLOCKS)
        assert len({a, b, c, d}) == 4
        assert [s for _, s in await rows(up)] == [1, 2, 3, 4]
    finally:
        await up.store.close()


async def test_acked_id_is_stored_again_under_the_same_id(tmp_path: Path) -> None:
    """Once delivered (row deleted), a re-read is sent again with the SAME id: the
    consumer de-duplicates it (at-least-once)."""
    up = Uplink(UplinkConfig("gw-1", tmp_path / "o.db"))
    try:
        mid = reading_message_id("gw-1", "m1", "registers", T0, T0)
        await up.publish_reading("m1", (), BLOCKS, message_id=mid)
        (row,) = await up.outbox.next_batch(10)
        await up.outbox.ack(row.id)
        assert await up.publish_reading("m1", (), BLOCKS, message_id=mid) == mid
        assert [m for m, _ in await rows(up)] == [mid]
    finally:
        await up.store.close()


def test_reading_message_id_is_deterministic_and_specific() -> None:
    base = reading_message_id("gw", "m1", "profile", T0, T1, "4")
    assert re.fullmatch(UUID4, base)  # the envelope schema's messageId pattern
    assert base == reading_message_id("gw", "m1", "profile", T0, T1, "4")
    others = {
        reading_message_id("gw2", "m1", "profile", T0, T1, "4"),
        reading_message_id("gw", "m2", "profile", T0, T1, "4"),
        reading_message_id("gw", "m1", "registers", T0, T1, "4"),
        reading_message_id("gw", "m1", "profile", None, T1, "4"),
        reading_message_id("gw", "m1", "profile", T0, T0, "4"),
        reading_message_id("gw", "m1", "profile", T0, T1, "5"),
    }
    assert base not in others and len(others) == 6


def up_draft(up: Uplink, meter: str, mid: str) -> envelope.Draft:
    return envelope.meter_readings(up.topics, meter, (), None, message_id=mid)


def test_reading_message_ids_stay_what_earlier_versions_gave() -> None:
    """A re-read after an upgrade must give the id the version before gave (consumers
    de-duplicate by it): pinned values, computed with uuid.uuid5 stamped version 4."""
    t0 = datetime(2026, 3, 1, 0, 15, tzinfo=UTC)
    t1 = datetime(2026, 3, 1, 4, 0, 0, 250000, tzinfo=timezone(timedelta(hours=-3)))
    assert reading_message_id("gw-1", "m1", "profile", t0, t1, "16") == (
        "3c3a4d20-087e-4cb8-9c5a-4f8a5a6ca316"
    )
    assert reading_message_id("gw-1", "medidor-ñ", "registers", None, t0) == (
        "3428ea07-3372-4572-b724-258176903fc0"
    )
    name = "\x1f".join(["gw", "m", "registers", "2026-03-01T00:15:00Z", "-", ""])
    hashed = uuid.uuid5(envelope.READING_ID_NAMESPACE, name)
    expected = str(uuid.UUID(bytes=hashed.bytes, version=4))
    assert reading_message_id("gw", "m", "registers", t0, None) == expected
