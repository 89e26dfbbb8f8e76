"""``smmc-gateway export`` (issue 11 item 9): a day of readings, events and read outcomes
from the data store as CSV files, read while the daemon's store is open and writing;
retention from [datastore]."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.cli import main
from smmc_gateway.headend.datastore import DataStore
from smmc_gateway.headend.export_files import EVENT_COLUMNS, READ_COLUMNS, READING_COLUMNS
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.uplink.envelope import Reading, event

GW = "gw-export"
DAY = datetime.now(UTC).date() - timedelta(days=1)
NOON = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)


def config(tmp: Path, extra: str = "") -> Path:
    meters = [{"meter_id": "m1", "port": 4059, "ek": "00" * 16, "ak": "11" * 16}]
    return write_lab_config(tmp / "gw", meters, broker=("127.0.0.1", 1), gateway_id=GW, extra=extra)


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


async def test_a_day_is_exported_while_the_store_is_open_and_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)
    store = open_fleet_store(tmp_path / "gw" / "state" / "fleet.sqlite")  # the daemon's, left open
    data = DataStore(store)
    a_plus = reading_type("1.0.1.8.0.255", "Wh")
    for day_offset in (-1, 0, 1):  # the day before, the day, the day after (only one out)
        at = NOON + timedelta(days=day_offset)
        await data.record_readings(
            "m1",
            [Reading(ref=a_plus, obis="1.0.1.8.0.255", unit="Wh", timestamp=at, value=1234.5)],
            b'[{"ReadingType":{"ref":"%s","obis":"1.0.1.8.0.255",'
            b'"unit":"Wh"},"IntervalReadings":[{"timeStamp":"%s",'
            b'"value":7,"ReadingQualities":[{"ref":"1.4.9"}]}]}]'
            % (
                reading_type("1.0.1.8.0.255", "Wh", measuring_period_s=900).encode(),
                at.isoformat().replace("+00:00", "Z").encode(),
            ),
        )
        await data.record_events(
            "m1",
            [
                event("smmc.alarm.outage", reason="alarm", details='a "quoted", comma', created=at),
                event("smmc.meter.standard.77", created=at),
            ],
        )
        await data.record_read(
            "m1",
            "collect",
            day_offset != 0,
            None if day_offset else "TimeoutError: no answer",
            at=at,
        )
    out = tmp_path / "out"
    assert main(["export", "--config", str(cfg), "--day", DAY.isoformat(), "--out", str(out)]) == 0
    await data.record_read("m1", "collect", True)  # the store still takes writes
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{GW}_{DAY}_{k}.csv" for k in ("readings", "events", "reads"))
    readings = rows(out / f"{GW}_{DAY}_readings.csv")
    assert tuple(readings[0]) == READING_COLUMNS
    stamp = NOON.isoformat().replace("+00:00", "Z")
    assert readings[1:] == [
        ["m1", "register", a_plus, "1.0.1.8.0.255", "Wh", stamp, "1234.5", ""],
        [
            "m1",
            "interval",
            reading_type("1.0.1.8.0.255", "Wh", measuring_period_s=900),
            "1.0.1.8.0.255",
            "Wh",
            stamp,
            "7",
            "1.4.9",
        ],
    ]
    events = rows(out / f"{GW}_{DAY}_events.csv")
    assert tuple(events[0]) == EVENT_COLUMNS
    by_name = {e[4]: e for e in events[1:]}
    assert by_name["smmc.alarm.outage"][3] == "3.26.0.85"  # EndDeviceEventType code
    assert by_name["smmc.alarm.outage"][6] == 'a "quoted", comma'
    assert by_name["smmc.meter.standard.77"][3] == "3.0.0.0"  # the family's code
    reads = rows(out / f"{GW}_{DAY}_reads.csv")
    assert tuple(reads[0]) == READ_COLUMNS
    assert reads[1:] == [["m1", stamp, "collect", "failed", "TimeoutError: no answer"]]
    printed = capsys.readouterr().out
    assert "2 readings row(s)" in printed and "1 reads row(s)" in printed
    await store.close()


def test_bad_days_and_a_missing_store_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config(tmp_path))
    assert main(["export", "--config", cfg, "--day", "2026-13-01", "--out", "x"]) == 2
    assert "is not a date" in capsys.readouterr().err
    tomorrow = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    assert main(["export", "--config", cfg, "--day", tomorrow, "--out", "x"]) == 2
    assert "in the future" in capsys.readouterr().err
    assert (
        main(["export", "--config", cfg, "--day", DAY.isoformat(), "--out", str(tmp_path / "o")])
        == 1
    )
    assert "no data store at" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


async def test_a_store_without_data_tables_gives_files_with_headers_only(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = open_fleet_store(tmp_path / "gw" / "state" / "fleet.sqlite")
    store.execute_script("CREATE TABLE IF NOT EXISTS meter_state (meter_id TEXT);")
    out = tmp_path / "out"
    assert main(["export", "--config", str(cfg), "--day", DAY.isoformat(), "--out", str(out)]) == 0
    for kind, cols in (
        ("readings", READING_COLUMNS),
        ("events", EVENT_COLUMNS),
        ("reads", READ_COLUMNS),
    ):
        assert rows(out / f"{GW}_{DAY}_{kind}.csv") == [list(cols)]
    await store.close()


def test_retention_is_configured_and_bounded(tmp_path: Path) -> None:
    assert (
        load_config(config(tmp_path, '[datastore]\nretention = "400d"\n')).datastore.retention_days
        == 400
    )
    with pytest.raises(ConfigError, match=r"datastore.retention: \"1h\" is out of range"):
        load_config(config(tmp_path / "b", '[datastore]\nretention = "1h"\n'))
    with pytest.raises(ConfigError, match="part_max_bytes: 1024 bytes is out of range"):
        load_config(config(tmp_path / "c", "[export]\npart_max_bytes = 1024\n"))
    with pytest.raises(ConfigError, match=r"export.formats\[0\]: \"xml\" is not one of csv"):
        load_config(config(tmp_path / "d", '[export]\ndirectory = "spool"\nformats = ["xml"]\n'))


async def test_the_data_store_prunes_by_the_configured_retention(tmp_path: Path) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    now = datetime.now(UTC)
    data = DataStore(store, retention_days=2, clock=lambda: now.timestamp())
    for days in (1, 3):
        await data.record_read("m1", "collect", True, at=now - timedelta(days=days))
    assert await data.prune(now) == 1
    report = await data.report("m1", now - timedelta(days=10), now)
    assert report.reads_ok == 1
    await store.close()
