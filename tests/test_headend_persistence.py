"""The fleet database's versioned migrations (headend/persistence.py, issue 9 item 7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.persistence import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SchemaTooNew,
    migrate,
    migrate_file,
    open_fleet_store,
    schema_version,
)

# Every table (and index) the head-end keeps in fleet.sqlite, by the module that uses it.
TABLES = {
    "meter_state",
    "meter_discovery",  # fleet.py
    "ds_register",
    "ds_interval",
    "ds_event",
    "ds_read",  # datastore.py
    "effective_order",  # effective.py
    "read_schedule",  # read_schedules.py
    "provisioned_meter",  # provisioning.py
    "han_device",  # han_links.py
    "escrowed_keys",  # escrow.py
    "bulk_pending",
    "bulk_done",
    "bulk_export",  # bulk_export.py
    "clock_drift_sync",
    "event_marks",  # service.py
}
INDEXES = {
    "ds_register_meter_ts",
    "ds_interval_meter_ts",
    "ds_event_meter",
    "ds_read_meter",
    "effective_order_next",
    "effective_order_meter",
    "bulk_pending_day",
}


def _names(path: Path, kind: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type=? AND name NOT LIKE 'sqlite_%'", (kind,)
            )
        }
    finally:
        conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema_version(conn)
    finally:
        conn.close()


def test_a_fresh_database_gets_every_table_and_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    assert migrate_file(path) == list(range(1, SCHEMA_VERSION + 1))
    assert _names(path, "table") == TABLES
    assert _names(path, "index") == INDEXES
    assert _version(path) == SCHEMA_VERSION == len(MIGRATIONS)


async def test_fleet_open_migrates(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    fleet = await Fleet.open([], path)
    try:
        assert _names(path, "table") == TABLES and _version(path) == SCHEMA_VERSION
    finally:
        await fleet.store.close()


def test_a_database_of_the_old_code_is_adopted_without_loss(tmp_path: Path) -> None:
    """A state file written before migrations (user_version 0, only the tables the old code
    had created on first use so far) keeps every row and gains the missing tables."""
    path = tmp_path / "fleet.sqlite"
    conn = sqlite3.connect(path)
    # as the old fleet.py and read_schedules.py created them, verbatim
    conn.executescript("""
CREATE TABLE IF NOT EXISTS meter_state (
  meter_id TEXT PRIMARY KEY, last_entry REAL, clock_deviation_s REAL, last_attempt REAL,
  last_success REAL, last_error TEXT, reachable INTEGER, reads_ok INTEGER NOT NULL DEFAULT 0,
  reads_failed INTEGER NOT NULL DEFAULT 0, consecutive_failures INTEGER NOT NULL DEFAULT 0,
  energised INTEGER);
CREATE TABLE IF NOT EXISTS read_schedule (
  mrid TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL, changed REAL NOT NULL);
""")
    conn.execute("INSERT INTO meter_state (meter_id, last_entry, reads_ok) VALUES ('m1', 5, 7)")
    conn.execute("INSERT INTO read_schedule VALUES ('s1', '{}', 1, 2)")
    conn.commit()
    before = conn.execute("SELECT sql FROM sqlite_master WHERE name='meter_state'").fetchone()
    conn.close()
    assert _version(path) == 0

    assert migrate_file(path) == [1, 2]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(
            "SELECT meter_id, last_entry, reads_ok FROM meter_state"
        ).fetchall() == [("m1", 5.0, 7)]
        assert conn.execute("SELECT * FROM read_schedule").fetchall() == [("s1", "{}", 1.0, 2.0)]
        after = conn.execute("SELECT sql FROM sqlite_master WHERE name='meter_state'").fetchone()
        assert after == before  # the old table is kept as it was, not rebuilt
    finally:
        conn.close()
    assert _names(path, "table") == TABLES and _version(path) == SCHEMA_VERSION


def test_version_1_creates_the_tables_as_the_old_code_did(tmp_path: Path) -> None:
    """Version 1 is a statement-for-statement copy: every one is idempotent (IF NOT EXISTS),
    so adopting any old state file cannot fail on a table it already has."""
    assert all(" IF NOT EXISTS " in s for s in MIGRATIONS[0].statements)
    conn = sqlite3.connect(tmp_path / "x.sqlite")
    for _ in range(2):
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
    conn.close()


def test_a_newer_database_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    migrate_file(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew) as err:
        open_fleet_store(path)
    text = str(err.value)
    assert f"version {SCHEMA_VERSION + 3}" in text and f"gateway's {SCHEMA_VERSION}" in text
    assert str(path) in text
    assert _version(path) == SCHEMA_VERSION + 3  # untouched


async def test_fleet_open_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew):
        await Fleet.open([], path)


def test_migrations_run_once(tmp_path: Path) -> None:
    runs: list[int] = []

    def count(conn: sqlite3.Connection) -> None:
        runs.append(1)
        conn.execute("INSERT INTO t VALUES (1)")

    steps = (Migration(1, "t", ("CREATE TABLE t (n INTEGER)",), data=count),)
    path = tmp_path / "x.sqlite"
    assert migrate_file(path, steps) == [1]
    assert migrate_file(path, steps) == []  # a plain CREATE TABLE would fail if run again
    assert runs == [1]
    more = (*steps, Migration(2, "u", ("CREATE TABLE u (n INTEGER)",)))
    assert migrate_file(path, more) == [2] and runs == [1]
    assert _version(path) == 2
    # the real list too: a second open applies nothing
    real = tmp_path / "fleet.sqlite"
    migrate_file(real)
    assert migrate_file(real) == []


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    first = (Migration(1, "t", ("CREATE TABLE t (n INTEGER)",)),)
    migrate_file(path, first)
    broken = (
        *first,
        Migration(
            2,
            "u then a bad statement",
            ("CREATE TABLE u (n INTEGER)", "CREATE TABLE t (n INTEGER)"),
        ),
    )
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        migrate_file(path, broken)
    assert _version(path) == 1 and _names(path, "table") == {"t"}  # u rolled back


def test_migration_versions_must_follow_each_other() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(ValueError, match="version 3, expected 2"):
        migrate(conn, (Migration(1, "a"), Migration(3, "c")))
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_the_daemon_refuses_a_newer_state_file_with_a_clear_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from smmc_gateway.headend.cli import _run
    from smmc_gateway.headend.labconfig import write_lab_config

    info = [{"meter_id": "m0", "port": 1, "ek": "00" * 16, "ak": "11" * 16}]
    cfg = write_lab_config(tmp_path / "gw", info, broker=("127.0.0.1", 1))
    path = tmp_path / "gw" / "state" / "fleet.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    args = argparse.Namespace(
        config=str(cfg),
        log_level="error",
        log_format="console",
        assume_clock_synchronised=True,
        first_read=None,
    )
    assert _run(args) == 2
    err = capsys.readouterr().err
    assert f"schema version {SCHEMA_VERSION + 1} is newer than this gateway's" in err
    assert str(path) in err
    assert _version(path) == SCHEMA_VERSION + 1  # untouched
