"""Audit hook of `smmc-gateway meter`: a record for every command that writes to the
meter (set, action, clock --sync, connect, disconnect, limit with a change,
firmware push), written to the audit spool (:mod:`smmc_gateway.ops.audit`).

A command that wrote nothing (clock --sync with nothing to do, limit without
options) leaves no record. If the spool cannot be written, the operation has
already happened on the meter: the command says so on stderr, prints the record
there (secrets redacted) so it can be filed by hand, and exits 1, so neither the
technician nor a script takes a missing audit trail for success.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from smmc_gateway.cosem.objects import Data
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.ops.audit import (
    AuditError,
    AuditingSession,
    AuditRecord,
    default_dir,
    failure_text,
    write_record,
)

if TYPE_CHECKING:
    from smmc_gateway.cli.meter_cmd import Job, Output

DEVICE_ID = "0.0.96.1.0.255"
LOGICAL_DEVICE_NAME = "0.0.42.0.0.255"
EXIT_AUDIT_FAILED = 1


def changes_state(args: argparse.Namespace) -> bool:
    action: str = args.action
    if action == "clock":
        return bool(args.sync)
    if action == "limit":
        return args.threshold is not None or args.duration is not None or bool(args.off)
    return action in ("set", "action", "connect", "disconnect", "firmware")


def audit_dir(args: argparse.Namespace) -> Path:
    given = getattr(args, "audit_dir", None)
    return Path(given) if given else default_dir()


def connection_text(args: argparse.Namespace) -> str:
    if args.tcp is not None:
        host, port = args.tcp
        return f"tcp {host}:{port}" + (" hdlc" if args.hdlc else " wrapper")
    if args.serial is not None:
        return f"serial {args.serial}"
    return f"optical {args.optical}"


def command_text(args: argparse.Namespace) -> str:
    if args.action == "clock":
        return "clock --sync"
    if args.action == "firmware":
        return "firmware push"
    return str(args.action)


def _details(args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "limit":
        return {"threshold": args.threshold, "duration": args.duration, "off": bool(args.off)}
    return {}


def audited(job: Job, args: argparse.Namespace, details: dict[str, Any] | None = None) -> Job:
    """``job`` writing a record; ``details`` (e.g. a firmware image's digest and whether it
    was signed) default to what the arguments say."""
    directory = audit_dir(args)
    details = details if details is not None else _details(args)

    async def run(s: Any, out: Output) -> int:
        settings = getattr(s, "settings", None)
        record = AuditRecord(
            command=command_text(args),
            connection=connection_text(args),
            client=getattr(settings, "client_sap", None),
            auth=str(getattr(getattr(settings, "security", None), "level", "unknown")),
            details=details,
        )
        # One GET (at 9600 baud every request counts): the logical device name only
        # when the device id is not readable in this association.
        device = await _identity(s, DEVICE_ID)
        record.meter = (
            {"deviceId": device}
            if device is not None
            else {"deviceId": None, "logicalDeviceName": await _identity(s, LOGICAL_DEVICE_NAME)}
        )
        session = AuditingSession(s, record)
        rc: int | None = None
        try:
            rc = await job(session, out)
            record.result = "success" if rc == 0 else f"exit {rc}"
            return rc
        except BaseException as exc:
            record.result = failure_text(exc)
            raise
        finally:
            if record.writes and not _file(record, directory, out) and rc == 0:
                rc = EXIT_AUDIT_FAILED
                return rc  # noqa: B012 - the exit status must say the audit failed

    return run


async def _identity(s: Any, obis: str) -> str | None:
    """The meter's own name for itself (None if this association may not read it)."""
    try:
        value = await s.get(*Data(obis).value)
    except DataAccessError:
        return None
    raw = value.get("value") if isinstance(value, dict) else None
    if not isinstance(raw, str):
        return None if raw is None else str(raw)
    if value.get("type") == "octet-string":
        try:
            text = bytes.fromhex(raw).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return raw
        return text if text.isprintable() else raw
    return raw


def _file(record: AuditRecord, directory: Path, out: Output) -> bool:
    body = record.as_dict()
    try:
        write_record(directory, body)
    except AuditError as exc:
        out.stop_spinner()
        out.err.print(
            f"[red bold]AUDIT RECORD NOT WRITTEN: {escape(str(exc))}. The operation was done "
            f"on the meter (result: {escape(record.result)}); file this record by hand in the "
            "audit spool (--audit-dir, SMMC_AUDIT_DIR):[/red bold]",
            highlight=False,
        )
        print(json.dumps(body, sort_keys=True), file=sys.stderr, flush=True)
        return False
    return True


__all__ = ["audited", "changes_state"]
