"""The fleet database (``fleet.sqlite``): its schema as an ordered list of migrations.

Every table the head-end keeps in the fleet database is created here, and only here:

* version 1 is the schema exactly as the modules created it before migrations existed
  (each with ``CREATE TABLE IF NOT EXISTS`` on first use), so a state file written by that
  code (``PRAGMA user_version`` 0, some or all tables present) is adopted as version 1
  without losing a row: tables it has are kept, tables it lacks are created;
* version 2 gives register and interval rows stored before the IEC 61968-9 ReadingType
  codes their code (:func:`~smmc_gateway.headend.datastore.migrate_reading_types`, which
  used to run at every start and now runs once).

The version reached is recorded in ``PRAGMA user_version``. :func:`open_fleet_store`
applies what is pending, all of it in one ``BEGIN IMMEDIATE`` transaction (a migration
that fails leaves the file exactly as it was, version included), before the store's
writer thread starts; a database whose version is newer than this code knows is refused
with :class:`SchemaTooNew`, naming both versions (an older gateway never writes into a
schema it does not understand). Applying is idempotent: a database at the latest version
is not touched.

The SQL that reads and writes the tables stays with the module that owns each table
(:mod:`~smmc_gateway.headend.fleet` ``meter_state``/``meter_discovery``,
:mod:`~smmc_gateway.headend.datastore` ``ds_*``, :mod:`~smmc_gateway.headend.effective`
``effective_order``, :mod:`~smmc_gateway.headend.read_schedules` ``read_schedule``,
:mod:`~smmc_gateway.headend.provisioning` ``provisioned_meter``,
:mod:`~smmc_gateway.headend.han_links` ``han_device``, :mod:`~smmc_gateway.headend.escrow`
``escrowed_keys``, :mod:`~smmc_gateway.headend.bulk_export` ``bulk_*``,
:mod:`~smmc_gateway.headend.service` ``clock_drift_sync``/``event_marks``); those modules
rely on the migrations having run when the store was opened. The uplink's outbox and
journal (``audit_published`` included) and the invocation counters are other databases.

To change the schema, append a :class:`Migration` with the next version; never edit one
that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from smmc_gateway.headend.datastore import migrate_reading_types
from smmc_gateway.uplink.store import Store


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway than this one."""

    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"{path}: schema version {found} is newer than this gateway's {known}"
            f" (written by a newer release; upgrade the gateway or restore a backup"
            f" taken at version {known} or older)"
        )
        self.found = found
        self.known = known


@dataclass(frozen=True)
class Migration:
    """One step of the schema: DDL statements, then an optional data step."""

    version: int
    name: str
    statements: tuple[str, ...] = ()
    data: Callable[[sqlite3.Connection], object] | None = None


# -- version 1: the tables as created before migrations (keep IF NOT EXISTS: adoption) --
_V1 = (
    # fleet.py: per-meter state and the last discovery summary (use case 1)
    """CREATE TABLE IF NOT EXISTS meter_state (
  meter_id TEXT PRIMARY KEY, last_entry REAL, clock_deviation_s REAL, last_attempt REAL,
  last_success REAL, last_error TEXT, reachable INTEGER, reads_ok INTEGER NOT NULL DEFAULT 0,
  reads_failed INTEGER NOT NULL DEFAULT 0, consecutive_failures INTEGER NOT NULL DEFAULT 0,
  energised INTEGER)""",
    """CREATE TABLE IF NOT EXISTS meter_discovery (
  meter_id TEXT PRIMARY KEY, discovered REAL NOT NULL, summary TEXT NOT NULL)""",
    # datastore.py: what was published (use cases 3 and 11)
    """CREATE TABLE IF NOT EXISTS ds_register (
  meter_id TEXT NOT NULL, obis TEXT NOT NULL, ref TEXT NOT NULL, unit TEXT NOT NULL,
  ts REAL NOT NULL, value TEXT NOT NULL, PRIMARY KEY (meter_id, obis, ts))""",
    "CREATE INDEX IF NOT EXISTS ds_register_meter_ts ON ds_register (meter_id, ts)",
    """CREATE TABLE IF NOT EXISTS ds_interval (
  meter_id TEXT NOT NULL, ref TEXT NOT NULL, obis TEXT, unit TEXT, ts REAL NOT NULL,
  value TEXT NOT NULL, qualities TEXT, PRIMARY KEY (meter_id, ref, ts))""",
    "CREATE INDEX IF NOT EXISTS ds_interval_meter_ts ON ds_interval (meter_id, ts)",
    """CREATE TABLE IF NOT EXISTS ds_event (
  mrid TEXT PRIMARY KEY, meter_id TEXT NOT NULL, ts REAL NOT NULL, type_ref TEXT NOT NULL,
  reason TEXT, details TEXT)""",
    "CREATE INDEX IF NOT EXISTS ds_event_meter ON ds_event (meter_id, ts)",
    """CREATE TABLE IF NOT EXISTS ds_read (
  meter_id TEXT NOT NULL, ts REAL NOT NULL, use_case TEXT NOT NULL, ok INTEGER NOT NULL,
  error TEXT)""",
    "CREATE INDEX IF NOT EXISTS ds_read_meter ON ds_read (meter_id, ts)",
    # effective.py: effective-dated orders (issue 11 item 7)
    """CREATE TABLE IF NOT EXISTS effective_order (
  order_id TEXT PRIMARY KEY, noun TEXT NOT NULL, kind TEXT NOT NULL, meter_id TEXT NOT NULL,
  due REAL NOT NULL, next_try REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, mrid TEXT,
  state TEXT NOT NULL, created REAL NOT NULL, finished REAL, outcome TEXT)""",
    "CREATE INDEX IF NOT EXISTS effective_order_next ON effective_order (state, next_try)",
    "CREATE INDEX IF NOT EXISTS effective_order_meter ON effective_order (meter_id, state)",
    # read_schedules.py: MeterReadSchedule
    """CREATE TABLE IF NOT EXISTS read_schedule (
  mrid TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL, changed REAL NOT NULL)""",
    # provisioning.py: meters provisioned over MQTT (EndDeviceConfig)
    """CREATE TABLE IF NOT EXISTS provisioned_meter (
  meter_id TEXT PRIMARY KEY, entry TEXT NOT NULL, keys TEXT, created REAL NOT NULL,
  changed REAL NOT NULL)""",
    # han_links.py: M-Bus devices per meter
    """CREATE TABLE IF NOT EXISTS han_device (
  meter_id TEXT NOT NULL, serial TEXT NOT NULL, channel INTEGER NOT NULL,
  reachable INTEGER NOT NULL, key_status TEXT, device_mrid TEXT, usage_point TEXT,
  PRIMARY KEY (meter_id, serial))""",
    # escrow.py: key bundles escrowed
    """CREATE TABLE IF NOT EXISTS escrowed_keys (
  meter_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, escrowed REAL NOT NULL)""",
    # bulk_export.py: the daily bulk export
    """CREATE TABLE IF NOT EXISTS bulk_pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, meter_id TEXT NOT NULL,
  blocks BLOB, readings TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS bulk_pending_day ON bulk_pending (day, meter_id, id)",
    "CREATE TABLE IF NOT EXISTS bulk_done (day TEXT PRIMARY KEY, exported REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS bulk_export (
  export_id TEXT PRIMARY KEY, day TEXT NOT NULL, upto INTEGER NOT NULL,
  max_bytes INTEGER NOT NULL, parts INTEGER NOT NULL, starts TEXT NOT NULL,
  next_part INTEGER NOT NULL, meters INTEGER NOT NULL, created REAL NOT NULL, finished REAL)""",
    # service.py: clock drift syncs (rate limit) and event-log marks (use case 7)
    "CREATE TABLE IF NOT EXISTS clock_drift_sync (meter_id TEXT PRIMARY KEY, at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS event_marks (
  meter_id TEXT NOT NULL, log TEXT NOT NULL, stamp REAL, count INTEGER NOT NULL,
  PRIMARY KEY (meter_id, log))""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the tables as created before versioned migrations", _V1),
    Migration(2, "ReadingType codes for rows stored before them", data=migrate_reading_types),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def _check(migrations: Sequence[Migration]) -> None:
    for i, m in enumerate(migrations, start=1):
        if m.version != i:
            raise ValueError(f"migration {m.name!r} has version {m.version}, expected {i}")


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the database (0: never migrated)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    name: str = "fleet database",
) -> list[int]:
    """Apply the migrations ``conn``'s database has not had, in one transaction; return
    the versions applied (empty: already current). ``conn`` must be in autocommit mode
    (``isolation_level=None``). :class:`SchemaTooNew` when the database is newer."""
    _check(migrations)
    latest = migrations[-1].version if migrations else 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        if found > latest:
            raise SchemaTooNew(name, found, latest)
        applied: list[int] = []
        for m in migrations[found:]:
            for statement in m.statements:
                conn.execute(statement)
            if m.data is not None:
                m.data(conn)
            applied.append(m.version)
        if applied:
            conn.execute(f"PRAGMA user_version = {int(applied[-1])}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
            conn.execute("ROLLBACK")
        raise
    return applied


def migrate_file(path: str | Path, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Open ``path`` (created if missing), migrate it and close it again."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")  # a running daemon may hold it briefly
        return migrate(conn, migrations, name=str(path))
    finally:
        conn.close()


def open_fleet_store(path: str | Path) -> Store:
    """The fleet database at ``path``, migrated to :data:`SCHEMA_VERSION`, as a
    :class:`~smmc_gateway.uplink.store.Store` (its writer thread started after the
    migrations committed)."""
    migrate_file(path)
    return Store(path)


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SchemaTooNew",
    "migrate",
    "migrate_file",
    "open_fleet_store",
    "schema_version",
]
