"""The daemon's audit inbox (use case 5): audit records of operations done at a
meter with the technician's CLI (see :mod:`smmc_gateway.ops.audit`) are uplinked
as EndDeviceEvents ``smmc.audit.opticalOperation`` when the gateway is online.

Spool files land in ``state_dir/audit-inbox/`` (copied there by a technician, or
written there directly by the CLI on the concentrator with ``--audit-dir`` or
``SMMC_AUDIT_DIR``). Every scan (at start, then every ``interval_s``) publishes
each record into the durable outbox and only then moves the file to
``audit-inbox/done/`` (``rejected/`` if some line is not a record: the valid ones
are published, the file kept for a person to look at). A file changed in the last
second, or whose last line has no newline yet, is still being copied in: it waits
for the next scan.

Exactly once: each record's id (uuid5 of its content) is stored in the uplink's
database in the same transaction as the outbox row, so a crash between the
publish and the move republishes nothing on the next scan.

Nothing in the inbox is trusted (see :mod:`smmc_gateway.ops.audit`): the daemon creates
it with mode 0700 and scans nothing while it is a symbolic link, not owned by the
gateway's user, or open to group or others (an error is logged when that starts and
when it changes; an info line when it is fixed). A spool file that is a symbolic link
(never followed), not a regular file, unreadable, or larger than
:data:`~smmc_gateway.ops.audit.MAX_SPOOL_FILE_BYTES` (not read) is moved to
``rejected/`` with an error naming why.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from smmc_gateway.ops.audit import (
    EVENT_TYPE,
    MAX_SPOOL_FILE_BYTES,
    SpoolFileRefused,
    archive,
    event_details,
    inbox_problem,
    pending_files,
    read_spool_file,
    record_id,
)
from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.client import Uplink
from smmc_gateway.uplink.topics import TopicError, check_level

log = structlog.get_logger("smmc_gateway.audit")

UNIDENTIFIED = "unidentified"
_TABLE = """
CREATE TABLE IF NOT EXISTS audit_published (
    record_id TEXT PRIMARY KEY,
    file      TEXT NOT NULL,
    published REAL NOT NULL
);
"""


class AuditInbox:
    """Scans ``inbox`` and publishes what it finds through ``uplink``."""

    def __init__(
        self,
        inbox: Path,
        uplink: Uplink,
        interval_s: float = 30.0,
        settle_s: float = 1.0,
        max_file_bytes: int = MAX_SPOOL_FILE_BYTES,
    ) -> None:
        self.inbox = inbox
        self.uplink = uplink
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.max_file_bytes = max_file_bytes
        self.published = 0
        self.refused: str | None = None
        """Why the inbox is not scanned now (None: it is)."""
        inbox.mkdir(parents=True, exist_ok=True, mode=0o700)  # an existing one is checked
        uplink.store.execute_script(_TABLE)

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("audit_inbox_failed", inbox=str(self.inbox), error=repr(exc))
            await asyncio.sleep(self.interval_s)

    def _inbox_ok(self) -> bool:
        problem = inbox_problem(self.inbox)
        if problem != self.refused:
            if problem is not None:
                log.error("audit_inbox_refused", inbox=str(self.inbox), reason=problem)
            else:
                log.info("audit_inbox_accepted", inbox=str(self.inbox))
        self.refused = problem
        return problem is None

    async def scan(self) -> int:
        """Publish every pending file; return how many records were newly published."""
        if not await asyncio.to_thread(self._inbox_ok):
            return 0
        files = await asyncio.to_thread(pending_files, self.inbox, self.settle_s)
        n = 0
        for path in files:
            try:
                records, problems = await asyncio.to_thread(
                    read_spool_file, path, self.max_file_bytes
                )
            except SpoolFileRefused as exc:
                where = await asyncio.to_thread(archive, path, "rejected")
                log.error("audit_file_refused", file=path.name, reason=str(exc), to=str(where))
                continue
            for problem in problems:
                log.error("audit_record_invalid", problem=problem)
            for rec in records:
                if await self._publish_once(rec, path.name):
                    n += 1
            where = await asyncio.to_thread(archive, path, "rejected" if problems else "done")
            log.info("audit_file_uplinked", file=path.name, records=len(records), to=str(where))
        self.published += n
        return n

    async def _publish_once(self, rec: dict[str, Any], file: str) -> bool:
        rid = record_id(rec)

        def seen(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM audit_published WHERE record_id=?", (rid,)).fetchone()
            return row is not None

        if await self.uplink.store.submit(seen):
            return False
        meter = _meter(rec)
        event = envelope.event(
            EVENT_TYPE,
            mrid=rid,
            created=_created(rec),
            reason=str(rec.get("result", "unknown"))[:256],
            details=event_details(rec),
        )
        draft = envelope.end_device_events(self.uplink.topics, meter, [event])
        now = datetime.now(UTC).timestamp()

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO audit_published(record_id, file, published) VALUES (?,?,?)",
                (rid, file, now),
            )

        try:
            await self.uplink.publish([draft], also=mark)
        except sqlite3.IntegrityError:  # published meanwhile: the transaction rolled back
            return False
        return True


def _meter(rec: dict[str, Any]) -> str:
    """The meter's own device id (read by the CLI), if it is usable as a topic level."""
    meter = rec.get("meter")
    device = meter.get("deviceId") if isinstance(meter, dict) else None
    if not isinstance(device, str) or not device:
        return UNIDENTIFIED
    try:
        return check_level("meter", device)
    except TopicError:
        return UNIDENTIFIED


def _created(rec: dict[str, Any]) -> datetime:
    text = rec.get("time")
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    return datetime.now(UTC)


__all__ = ["AuditInbox"]
