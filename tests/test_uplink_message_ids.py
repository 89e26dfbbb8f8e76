"""Caller-chosen messageIds: a pending id is stored once; different ids, different rows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
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
