"""The daily bulk export in bounded parts (issue 11 item 4): every message (envelope
included, as the outbox stores it) within part_max_bytes, part k of n under one exportId,
reassembled into exactly what was collected; resumed after a crash without a part stored
twice; optional CSV files written atomically."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.headend.bulk_export import BulkExporter, part_message_id
from smmc_gateway.headend.export_files import READING_COLUMNS
from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.uplink.envelope import Draft, MessageClass, Reading
from smmc_gateway.uplink.outbox import Outbox, OutboxRow
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics
from uplink_helpers import validate_message

GW = "gw-bulk"
DAY = date(2026, 11, 27)
KIB16 = 16 << 10
CHANNELS = (("1.0.1.8.0.255", "Wh"), ("1.0.2.8.0.255", "Wh"), ("1.0.3.8.0.255", "varh"))


class Crash(Exception):
    pass


class OutboxPublisher:
    """Publishes into a real outbox; ``crash_after`` parts stored, the next publish raises
    (``store_then_crash``: the next one is stored first, then raises)."""

    def __init__(
        self, outbox: Outbox, crash_after: int | None = None, store_then_crash: bool = False
    ) -> None:
        self.topics = Topics(GW)
        self.outbox = outbox
        self.crash_after = crash_after
        self.store_then_crash = store_then_crash
        self.calls = 0

    async def publish(self, drafts: Sequence[Draft]) -> list[str]:
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            if self.store_then_crash:
                await self.outbox.add_many(drafts)
            raise Crash(f"crash at publish {self.calls}")
        return await self.outbox.add_many(drafts)


def blocks(meter_seed: int, intervals: int) -> bytes:
    start = datetime(2026, 11, 27, tzinfo=UTC)
    out = []
    for obis, unit in CHANNELS:
        out.append(
            {
                "ReadingType": {
                    "ref": reading_type(obis, unit, measuring_period_s=900),
                    "obis": obis,
                    "unit": unit,
                },
                "IntervalReadings": [
                    {
                        "timeStamp": (start + timedelta(minutes=15 * i))
                        .isoformat()
                        .replace("+00:00", "Z"),
                        "value": meter_seed * 100000 + i,
                        **({"ReadingQualities": [{"ref": "1.4.9"}]} if i % 50 == 7 else {}),
                    }
                    for i in range(intervals)
                ],
            }
        )
    return json.dumps(out, separators=(",", ":")).encode()


def registers(value: int) -> list[Reading]:
    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    return [
        Reading(ref=reading_type(o, u), obis=o, unit=u, timestamp=at, value=value + i)
        for i, (o, u) in enumerate(CHANNELS)
    ]


async def kept(
    exporter: BulkExporter, meters: int, intervals: int = 96, collections: int = 2
) -> None:
    """``collections`` collections per meter, each ``intervals`` intervals; registers of
    the last one are the day's newest."""
    for c in range(collections):
        for m in range(meters):
            await exporter.keep(
                f"meter-{m:03d}", DAY, blocks(m * 10 + c, intervals), registers(1000 * c + m)
            )


def parts_of(rows: list[OutboxRow]) -> list[dict[str, Any]]:
    docs = []
    for row in rows:
        assert row.topic == f"smmc/v1/{GW}/bulk/readings" and row.cls == MessageClass.BULK
        docs.append(validate_message(row.payload))  # envelope + meter-readings schema
    return docs


def reassemble(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a consumer does: parts by number, meters' entries concatenated in order."""
    docs = sorted(docs, key=lambda d: d["payload"]["BulkExport"]["part"])
    out: dict[str, dict[str, Any]] = {}
    for d in docs:
        for e in d["payload"]["MeterReading"]:
            m = out.setdefault(e["Meter"]["mRID"], {"Readings": [], "intervals": {}})
            m["Readings"].extend(e["Readings"])
            for b in e["IntervalBlocks"]:
                ivs = m["intervals"].setdefault(b["ReadingType"]["ref"], [])
                ivs.extend(iv["value"] for iv in b["IntervalReadings"])
    return out


async def test_parts_are_bounded_numbered_and_reassemble_to_what_was_collected(
    tmp_path: Path,
) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    outbox = Outbox.open(Store(tmp_path / "outbox.sqlite"), GW)
    exporter = BulkExporter(store, OutboxPublisher(outbox), max_bytes=KIB16)
    await kept(exporter, meters=12)
    assert await exporter.export(DAY) == 12
    rows = await outbox.next_batch(1000)
    assert len(rows) > 3
    for row in rows:
        assert len(row.payload) <= KIB16, len(row.payload)  # the whole message
    assert max(len(r.payload) for r in rows) > KIB16 * 0.8  # parts are filled, not tiny
    docs = parts_of(rows)
    infos = [d["payload"]["BulkExport"] for d in docs]
    (export_id,) = {i["exportId"] for i in infos}
    assert sorted(i["part"] for i in infos) == list(range(1, len(rows) + 1))
    assert {i["parts"] for i in infos} == {len(rows)} and {i["day"] for i in infos} == {
        DAY.isoformat()
    }
    assert [r.message_id for r in rows] == [part_message_id(export_id, i["part"]) for i in infos]
    whole = reassemble(docs)
    assert sorted(whole) == [f"meter-{m:03d}" for m in range(12)]
    for m in range(12):
        meter = whole[f"meter-{m:03d}"]
        # the newest value of each register of the day, once
        assert [r["value"] for r in meter["Readings"]] == [1000 + m, 1001 + m, 1002 + m]
        for obis, unit in CHANNELS:
            ref = reading_type(obis, unit, measuring_period_s=900)
            assert meter["intervals"][ref] == [
                *(m * 10 * 100000 + i for i in range(96)),
                *((m * 10 + 1) * 100000 + i for i in range(96)),
            ]
    assert await exporter.export(DAY) == 0  # the day's rows are gone
    assert len(await outbox.next_batch(1000)) == len(rows)
    await store.close()
    await outbox.store.close()


@pytest.mark.parametrize("store_then_crash", [False, True])
async def test_a_crash_mid_export_resumes_without_a_part_stored_twice(
    tmp_path: Path, store_then_crash: bool
) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    outbox = Outbox.open(Store(tmp_path / "outbox.sqlite"), GW)
    first = BulkExporter(
        store,
        OutboxPublisher(outbox, crash_after=2, store_then_crash=store_then_crash),
        max_bytes=KIB16,
    )
    await kept(first, meters=10)
    with pytest.raises(Crash):
        await first.export(DAY)
    stored = await outbox.next_batch(1000)
    assert len(stored) == (3 if store_then_crash else 2)
    # the restart: a new exporter on the same database, the part size changed meanwhile
    again = BulkExporter(store, OutboxPublisher(outbox), max_bytes=64 << 10)
    assert await again.export(DAY) == 10
    rows = await outbox.next_batch(1000)
    docs = parts_of(rows)
    parts = sorted(d["payload"]["BulkExport"]["part"] for d in docs)
    total = docs[0]["payload"]["BulkExport"]["parts"]
    assert parts == list(range(1, total + 1))  # each part once, none missing
    assert len({d["payload"]["BulkExport"]["exportId"] for d in docs}) == 1
    assert all(len(r.payload) <= KIB16 for r in rows)  # the size it was planned with
    whole = reassemble(docs)
    assert len(whole) == 10 and all(len(v["intervals"]) == 3 for v in whole.values())
    await store.close()
    await outbox.store.close()


async def test_a_block_larger_than_a_part_is_split_by_intervals(tmp_path: Path) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    outbox = Outbox.open(Store(tmp_path / "outbox.sqlite"), GW)
    exporter = BulkExporter(store, OutboxPublisher(outbox), max_bytes=KIB16)
    await exporter.keep("big", DAY, blocks(7, 2000), registers(5))  # ~3 x 80 KiB of blocks
    assert await exporter.export(DAY) == 1
    rows = await outbox.next_batch(1000)
    assert len(rows) >= 10 and all(len(r.payload) <= KIB16 for r in rows)
    whole = reassemble(parts_of(rows))
    assert [len(v) for v in whole["big"]["intervals"].values()] == [2000, 2000, 2000]
    assert all(v == [700000 + i for i in range(2000)] for v in whole["big"]["intervals"].values())
    assert len(whole["big"]["Readings"]) == 3  # once, in the meter's first entry
    await store.close()
    await outbox.store.close()


async def test_the_export_is_also_written_as_a_csv_file(tmp_path: Path) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    outbox = Outbox.open(Store(tmp_path / "outbox.sqlite"), GW)
    spool = tmp_path / "spool"
    exporter = BulkExporter(store, OutboxPublisher(outbox), max_bytes=KIB16, directory=spool)
    await kept(exporter, meters=3, intervals=10)
    assert await exporter.export(DAY) == 3
    (path,) = sorted(spool.iterdir())  # no temporary file left behind
    export_id = json.loads((await outbox.next_batch(1))[0].payload)["payload"]["BulkExport"][
        "exportId"
    ]
    assert path.name == f"{GW}_{DAY.isoformat()}_{export_id}_readings.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == READING_COLUMNS
    body = rows[1:]
    assert len(body) == 3 * 3 + 3 * 3 * 2 * 10  # registers + intervals (2 collections)
    reg = next(r for r in body if r[0] == "meter-001" and r[1] == "register")
    assert reg[2] == reading_type("1.0.1.8.0.255", "Wh") and reg[6] == "1001"
    assert reg[5] == "2026-11-27T12:00:00Z"
    flagged = [r for r in body if r[7]]
    assert flagged and all(r[7] == "1.4.9" and r[1] == "interval" for r in flagged)
    await store.close()
    await outbox.store.close()
