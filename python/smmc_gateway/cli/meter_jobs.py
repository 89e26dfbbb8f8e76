"""The jobs of `smmc-gateway meter`: get, set, action, objects and the profile reads.

:func:`prepare` checks the subcommand's arguments (before any connection) and
returns the job, an ``async (session, output) -> exit code``. Clock, supply
(connect/disconnect), limiter and firmware jobs live in :mod:`meter_ops`; the firmware
image is read and its signed manifest verified by :mod:`meter_firmware`.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from smmc_gateway import console
from smmc_gateway.cli import meter_audit, meter_firmware, meter_ops
from smmc_gateway.cli.common import EXIT_OK, UsageError
from smmc_gateway.cli.meter_args import (
    BILLING_PROFILE,
    EVENT_LOGS,
    LOAD_PROFILE,
    Reference,
    parse_reference,
    parse_time,
    parse_typed,
)
from smmc_gateway.cosem.classes import CLASSES
from smmc_gateway.cosem.objects import ProfileGeneric
from smmc_gateway.cosem.units import unit_symbol
from smmc_gateway.cosem.values import TypedValue, as_typed
from smmc_gateway.dlms.client import EntryAccess, RangeAccess

if TYPE_CHECKING:
    from smmc_gateway.cli.meter_cmd import Job, Output

# IDIS event codes (standard and disconnector logs).
EVENT_NAMES = {
    1: "power down",
    2: "power up",
    3: "daylight saving change",
    4: "clock adjusted (old time)",
    5: "clock adjusted (new time)",
    40: "terminal cover opened",
    41: "terminal cover closed",
    47: "ready for reconnection",
    48: "manual disconnection",
    49: "manual connection",
    50: "remote disconnection",
    51: "remote connection",
    52: "local disconnection",
    53: "limiter threshold exceeded",
    54: "limiter threshold ok",
    55: "limiter threshold changed",
}


def prepare(args: argparse.Namespace) -> Job:
    details: dict[str, Any] | None = None
    if args.action == "firmware":
        image = meter_firmware.load(args)  # verified (or --unsigned) before connecting
        activate = not args.no_activate
        job = meter_ops.firmware_job(image.data, image.identifier, activate)
        details = image.audit_details(activate)
    else:
        job = _prepare(args)
    if meter_audit.changes_state(args):
        return meter_audit.audited(job, args, details)
    return job


def _prepare(args: argparse.Namespace) -> Job:
    action: str = args.action
    if action == "get":
        return _prepare_get(args)
    if action == "set":
        ref = parse_reference(args.ref)
        value = parse_typed(args.value, "VALUE")
        return lambda s, out: _set(s, out, ref, value)
    if action == "action":
        ref = parse_reference(args.ref, "method")
        param = parse_typed(args.param, "PARAM") if args.param is not None else None
        return lambda s, out: _action(s, out, ref, param)
    if action == "objects":
        return _objects
    if action in ("events", "profile"):
        return _prepare_profile(args)
    return meter_ops.prepare(args)


# ---------------------------------------------------------------- get/set/action
def _prepare_get(args: argparse.Namespace) -> Job:
    ref = parse_reference(args.ref)
    access: RangeAccess | EntryAccess | None = None
    if args.entries is not None and (args.start or args.end):
        raise UsageError("get: give either --from/--to or --entries, not both")
    if args.start or args.end:
        if not (args.start and args.end):
            raise UsageError("get: --from and --to go together (ISO-8601 times)")
        access = RangeAccess(parse_time(args.start, "--from"), parse_time(args.end, "--to"))
    elif args.entries is not None:
        a, b = args.entries
        if a < 1 or b < 0 or (b and b < a):
            raise UsageError(f"get: --entries {a} {b}: expected A >= 1 and B = 0 (last) or >= A")
        access = EntryAccess(from_entry=a, to_entry=b)
    return lambda s, out: _get(s, out, ref, access)


async def _get(s: Any, out: Output, ref: Reference, access: Any) -> int:
    if access is not None:
        value = await s.get(ref.class_id, str(ref.obis), ref.member, access=access)
    else:
        value = await s.get(ref.class_id, str(ref.obis), ref.member)
    if out.json:
        out.data(value)
        return EXIT_OK
    title = f"{ref}  {_member_name(ref)}"
    rows = _as_rows(value)
    if rows is not None:
        labels = [f"{i}" for i in range(len(rows[0]))]
        if _is_profile_buffer(ref):  # name the columns
            captures = (await s.get(*ProfileGeneric(ref.obis).capture_objects))["value"]
            if len(captures) == len(labels):
                labels = [_capture_label(c) for c in captures]
        out.print(console.table(labels, rows, title=title))
        return EXIT_OK
    out.print(console.value_tree(value, title))
    if (
        ref.class_id in (3, 4, 5)
        and ref.member in (2, 3)
        and _scaler_attr(ref.class_id) != ref.member
    ):
        scaled = await _scaled(s, ref, value)
        if scaled:
            out.print(f"= {scaled}")
    return EXIT_OK


def _member_name(ref: Reference, method: bool = False) -> str:
    ic = CLASSES.get(ref.class_id)
    if ic is None:
        return ""
    names = ic.methods if method else ic.attributes
    name = names[ref.member - 1] if 0 < ref.member <= len(names) else "?"
    return f"({ic.name}.{name})"


def _as_rows(value: TypedValue) -> list[list[Any]] | None:
    """An array of equal-length structures (a profile buffer) as table rows."""
    items = value.get("value")
    if value.get("type") != "array" or not isinstance(items, list) or not items:
        return None
    if not all(isinstance(i, dict) and i.get("type") == "structure" for i in items):
        return None
    widths = {len(i["value"]) for i in items}
    if len(widths) != 1:
        return None
    return [list(i["value"]) for i in items]


def _is_profile_buffer(ref: Reference) -> bool:
    if ref.class_id != ProfileGeneric.class_id:
        return False
    return ref.member == ProfileGeneric(ref.obis).buffer.attribute_id


async def _scaled(s: Any, ref: Reference, value: TypedValue) -> str | None:
    raw = value.get("value")
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    su = await s.get(ref.class_id, str(ref.obis), _scaler_attr(ref.class_id))
    try:
        scaler, unit = (int(v["value"]) for v in su["value"])
    except (KeyError, TypeError, ValueError):
        return None
    return f"{_scale(raw, scaler)} {unit_symbol(unit)}"


def _scaler_attr(class_id: int) -> int:
    """scaler_unit is attribute 3 of Register and Extended register, 4 of Demand register."""
    return CLASSES[class_id].attribute_id("scaler_unit")


def _scale(raw: int, scaler: int) -> str:
    if scaler >= 0:
        return str(raw * 10**scaler)
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw)).rjust(-scaler + 1, "0")
    return f"{sign}{digits[:scaler]}.{digits[scaler:]}"


async def _set(s: Any, out: Output, ref: Reference, value: TypedValue) -> int:
    await s.set(ref.class_id, str(ref.obis), ref.member, value)
    if out.json:
        out.data({"result": "success"})
    else:
        out.print(f"{ref} {_member_name(ref)} written: {console.value_text(value)}")
    return EXIT_OK


async def _action(s: Any, out: Output, ref: Reference, param: TypedValue | None) -> int:
    ret = await s.action(ref.class_id, str(ref.obis), ref.member, param)
    if out.json:
        out.data({"result": "success", "return": ret})
        return EXIT_OK
    name = _member_name(ref, method=True)
    out.print(f"{ref.class_id}/{ref.obis}/m{ref.member} {name}: success")
    returned = as_typed(ret)
    if returned is not None:
        out.print(console.value_tree(returned, "returned"))
    return EXIT_OK


# ---------------------------------------------------------------- objects
_ACCESS = {0: "-", 1: "R", 2: "W", 3: "RW", 4: "aR", 5: "aW", 6: "aRW"}


async def _objects(s: Any, out: Output) -> int:
    model = await s.read_object_model()
    objs = sorted(model, key=lambda o: (o.class_id, o.obis))
    if out.json:
        out.data(
            [
                {
                    "class_id": o.class_id,
                    "class": o.class_name,
                    "version": o.version,
                    "obis": str(o.obis),
                    "attributes": {str(a): r.access.name.lower() for a, r in o.attributes.items()},
                    "methods": {str(m): r.access.name.lower() for m, r in o.methods.items()},
                }
                for o in objs
            ]
        )
        return EXIT_OK
    rows = [
        (
            f"{o.class_name} ({o.class_id})",
            str(o.obis),
            o.version,
            " ".join(
                f"{a}:{_ACCESS.get(int(r.access), '?')}" for a, r in sorted(o.attributes.items())
            ),
            " ".join(f"{m}:{'x' if int(r.access) else '-'}" for m, r in sorted(o.methods.items())),
        )
        for o in objs
    ]
    out.print(
        console.table(
            ["class", "OBIS", "v", "attributes", "methods"], rows, title=f"{len(rows)} objects"
        )
    )
    out.print("[dim]R read, W write, a… authenticated only, x method allowed[/dim]")
    return EXIT_OK


# ---------------------------------------------------------------- profiles and logs
def _prepare_profile(args: argparse.Namespace) -> Job:
    start = parse_time(args.start, "--from") if args.start else None
    end = parse_time(args.end, "--to") if args.end else None
    if start and end and end < start:
        raise UsageError("--to is before --from")
    if args.action == "events":
        obis, what = EVENT_LOGS[args.log], f"{args.log} event log"
        csv_out = False
    else:
        obis = BILLING_PROFILE if args.billing else LOAD_PROFILE
        what = "billing profile" if args.billing else "load profile"
        csv_out = bool(args.csv)
        if start is None and end is None and not args.billing:
            end = datetime.now().astimezone()
            start = end - timedelta(days=1)  # a whole load profile at 9600 baud takes ages
    return lambda s, out: _profile(s, out, obis, what, start, end, csv_out)


async def _profile(
    s: Any,
    out: Output,
    obis: str,
    what: str,
    start: datetime | None,
    end: datetime | None,
    csv_out: bool,
) -> int:
    captures = (await s.get(*ProfileGeneric(obis).capture_objects))["value"]
    columns = [_capture_label(c) for c in captures]
    scalers = [await _scaler_unit(s, c) for c in captures]
    if start is not None or end is not None:
        far = datetime.now().astimezone()
        rows = await s.read_profile(
            obis, start=start or far - timedelta(days=3650), end=end or far + timedelta(days=1)
        )
    else:
        rows = await s.read_profile(obis)
    if out.json:
        out.data(
            {
                "obis": obis,
                "columns": [
                    {"name": name, "scaler": su[0] if su else None, "unit": su[1] if su else None}
                    for name, su in zip(columns, scalers, strict=True)
                ],
                "rows": [[_json_cell(c) for c in r] for r in rows],
            }
        )
        return EXIT_OK
    if csv_out:
        w = csv.writer(sys.stdout)
        w.writerow([f"{c} [{su[1]}]" if su else c for c, su in zip(columns, scalers, strict=True)])
        for r in rows:
            w.writerow(
                [
                    _scale(v, su[0]) if su and isinstance(v, int) else console.cell_text(v)
                    for v, su in zip(r, scalers, strict=False)
                ]
            )
    else:
        shown = [_row(r, scalers) for r in rows]
        labels = list(columns)
        offsets = {
            c.astimezone().strftime("%z")
            for r in rows
            for c in r
            if isinstance(c, datetime) and c.tzinfo is not None
        }
        if len(offsets) == 1:  # one local offset for all rows: say it once, in the header
            labels = [f"time ({offsets.pop()})" if c == "time" else c for c in labels]
            shown = [
                [
                    c.astimezone().strftime("%Y-%m-%d %H:%M:%S")
                    if isinstance(c, datetime) and c.tzinfo is not None
                    else c
                    for c in r
                ]
                for r in shown
            ]
        event_col = _event_column(captures)
        if event_col is not None:
            labels.append("event")
            shown = [
                [*r, EVENT_NAMES.get(r[event_col], "") if isinstance(r[event_col], int) else ""]
                for r in shown
            ]
        span = (
            ""
            if start is None
            else f" {console.local_time(start)} .. " + (console.local_time(end) if end else "now")
        )
        out.print(console.table(labels, shown, title=f"{what} {obis}{span}: {len(shown)} rows"))
    return EXIT_OK


def _capture_label(c: dict[str, Any]) -> str:
    cid, ln, attr, _ = (v["value"] for v in c["value"])
    obis = console.obis_text(ln) or ln
    if cid == 8:
        return "time"
    return f"{obis}" if attr == 2 else f"{obis}/{attr}"


def _event_column(captures: Sequence[dict[str, Any]]) -> int | None:
    for i, c in enumerate(captures):
        cid, ln, _attr, _ = (v["value"] for v in c["value"])
        obis = console.obis_text(ln) or ""
        if cid == 1 and obis.startswith("0.0.96.11."):
            return i
    return None


async def _scaler_unit(s: Any, c: dict[str, Any]) -> tuple[int, str] | None:
    cid, ln, attr, _ = (v["value"] for v in c["value"])
    if cid not in (3, 4, 5) or attr not in (2, 3) or attr == _scaler_attr(cid):
        return None
    obis = console.obis_text(ln) or ln
    su = await s.get(cid, obis, _scaler_attr(cid))
    scaler, unit = (int(v["value"]) for v in su["value"])
    return scaler, unit_symbol(unit)


def _json_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return value


def _row(row: Sequence[Any], scalers: Sequence[tuple[int, str] | None]) -> list[Any]:
    out: list[Any] = []
    for value, su in zip(row, scalers, strict=False):
        if su is not None and isinstance(value, int) and not isinstance(value, bool):
            out.append(f"{_scale(value, su[0])} {su[1]}")
        else:
            out.append(value)
    return out
