"""The operating jobs of `smmc-gateway meter`: clock (read, --sync), connect and
disconnect (Disconnect control), limit (Limiter) and firmware push.

Every job reads back what it changed, so the technician sees the meter's state,
not our intention.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from smmc_gateway import _core, console
from smmc_gateway.cli.common import EXIT_OK, OperationFailed, UsageError
from smmc_gateway.cosem.objects import Clock, CosemMethod, DisconnectControl, Limiter
from smmc_gateway.dlms.errors import LinkLost, MeterTimeout
from smmc_gateway.usecases.firmware_push import (
    STATUS_NAMES,
    ImageTransferFailed,
    PushReport,
    push_image,
)

if TYPE_CHECKING:
    from smmc_gateway.cli.meter_cmd import Job, Output

CLOCK = Clock()  # the standard logical names (0.0.1.0.0.255, 0.0.96.3.10.255, 0.0.17.0.0.255)
DISCONNECT = DisconnectControl()
LIMITER = Limiter()
SHIFT_LIMIT = 900  # shift_time accepts -900..900 s (Blue Book, Clock method 6)
CONTROL_STATES = {0: "disconnected", 1: "connected", 2: "ready for reconnection"}
_INT_MAX = {
    "unsigned": 0xFF,
    "long-unsigned": 0xFFFF,
    "double-long-unsigned": 0xFFFFFFFF,
    "long64-unsigned": 0xFFFFFFFFFFFFFFFF,
    "integer": 0x7F,
    "long": 0x7FFF,
    "double-long": 0x7FFFFFFF,
    "long64": 0x7FFFFFFFFFFFFFFF,
}


def prepare(args: argparse.Namespace) -> Job:
    action: str = args.action
    if action == "clock":
        sync = bool(args.sync)
        return lambda s, out: _clock(s, out, sync)
    if action in ("connect", "disconnect"):
        method = (
            DISCONNECT.remote_reconnect if action == "connect" else DISCONNECT.remote_disconnect
        )
        return lambda s, out: _supply(s, out, action, method)
    if action == "limit":
        if args.off and args.threshold is not None:
            raise UsageError("limit: --off and --threshold exclude each other")
        for name in ("threshold", "duration"):
            v = getattr(args, name)
            if v is not None and v < 0:
                raise UsageError(f"limit: --{name} {v}: must be 0 or more")
        t, d, off = args.threshold, args.duration, bool(args.off)
        return lambda s, out: _limit(s, out, t, d, off)
    raise UsageError(f"unknown subcommand {action!r}")


def firmware_job(image: bytes, ident: bytes, activate: bool) -> Job:
    """The push of an image already read and verified (:mod:`meter_firmware`)."""
    return lambda s, out: _firmware(s, out, image, ident, activate)


# ---------------------------------------------------------------- clock
async def _read_clock(s: Any) -> tuple[datetime, float, int | None]:
    """(meter time, deviation in seconds meter - local, clock status)."""
    t0 = time.time()
    value = await s.get(*CLOCK.time)
    t1 = time.time()
    raw = bytes.fromhex(value["value"])
    meter = _core.decode_datetime(raw)
    if meter is None:
        raise OperationFailed(f"the meter's clock is not set (time {raw.hex()})")
    if meter.tzinfo is None:  # deviation not specified: the meter's time zone attribute
        tz_minutes = (await s.get(*CLOCK.time_zone))["value"]
        meter = meter.replace(tzinfo=timezone(timedelta(minutes=-int(tz_minutes))))
    local = datetime.fromtimestamp((t0 + t1) / 2, UTC)
    status = raw[11] if len(raw) == 12 and raw[11] != 0xFF else None
    return meter, (meter - local).total_seconds(), status


async def _clock(s: Any, out: Output, sync: bool) -> int:
    meter, deviation, status = await _read_clock(s)
    report: dict[str, Any] = {
        "meter_time": meter.isoformat(),
        "deviation_seconds": round(deviation, 3),
        "clock_status": status,
    }
    if not out.json:
        out.print(
            f"meter time   {console.local_time(meter)}  (meter's own offset {meter.strftime('%z')})"
        )
        out.print(f"deviation    {_dev(deviation)}")
        if status is not None:
            out.print(f"clock status 0x{status:02x}{_status_text(status)}")
    if sync:
        if abs(deviation) < 0.5:
            report["sync"] = "not needed"
            out.status("deviation under 0.5 s: nothing to do")
        elif abs(deviation) <= SHIFT_LIMIT:
            shift = -round(deviation)
            await s.action(*CLOCK.shift_time, {"type": "long", "value": shift})
            report["sync"] = f"shift_time {shift} s"
        else:
            now = datetime.now(UTC).astimezone(meter.tzinfo)
            await s.set(
                *CLOCK.time, {"type": "octet-string", "value": _core.encode_datetime(now).hex()}
            )
            report["sync"] = "time set"
        if report["sync"] != "not needed":
            _after, after, _ = await _read_clock(s)
            report["deviation_after_seconds"] = round(after, 3)
            if not out.json:
                out.print(f"synchronised ({report['sync']}); deviation now {_dev(after)}")
    if out.json:
        out.data(report)
    return EXIT_OK


def _dev(seconds: float) -> str:
    if abs(seconds) < 0.05:
        return "0.0 s (in step with this machine)"
    ahead = "ahead of" if seconds > 0 else "behind"
    return f"{seconds:+.1f} s (the meter is {abs(seconds):.1f} s {ahead} this machine)"


def _status_text(status: int) -> str:
    # the core's Blue Book names ("daylight-saving-active" -> "daylight saving active")
    names = [name.replace("-", " ") for bit, name in _core.clock_status_bits() if status & bit]
    return f" ({', '.join(names)})" if names else " (ok)"


# ---------------------------------------------------------------- supply
async def _supply(s: Any, out: Output, action: str, method: CosemMethod) -> int:
    await s.action(*method, {"type": "integer", "value": 0})
    output_state = (await s.get(*DISCONNECT.output_state))["value"]
    control = (await s.get(*DISCONNECT.control_state))["value"]
    mode = (await s.get(*DISCONNECT.control_mode))["value"]
    state = CONTROL_STATES.get(control, f"state {control}")
    if out.json:
        out.data(
            {
                "action": action,
                "output_state": output_state,
                "control_state": state,
                "control_mode": mode,
            }
        )
        return EXIT_OK
    out.print(f"{action}: done")
    out.print(f"output_state  {'energised' if output_state else 'not energised'}")
    out.print(f"control_state {state}")
    out.print(f"control_mode  {mode}{' (no disconnection possible)' if mode == 0 else ''}")
    if action == "connect" and control == 2:
        out.print(
            "[yellow]the meter waits for the customer: press its button to reconnect[/yellow]"
        )
    return EXIT_OK


# ---------------------------------------------------------------- limiter
async def _limit(
    s: Any, out: Output, threshold: int | None, duration: int | None, off: bool
) -> int:
    changed = []
    if threshold is not None or off:
        current = await s.get(*LIMITER.threshold_normal)
        kind = current["type"]
        limit = _INT_MAX.get(kind)
        if limit is None:
            raise OperationFailed(f"threshold_normal is a {kind}; this tool writes integers only")
        value = limit if off else threshold
        assert value is not None
        if value > limit:
            raise UsageError(
                f"limit: --threshold {value} does not fit the meter's {kind} (max {limit})"
            )
        await s.set(*LIMITER.threshold_normal, {"type": kind, "value": value})
        changed.append("threshold_normal")
    if duration is not None:
        current = await s.get(*LIMITER.min_over_threshold_duration)
        await s.set(
            *LIMITER.min_over_threshold_duration, {"type": current["type"], "value": duration}
        )
        changed.append("min_over_threshold_duration")
    shown = (
        LIMITER.threshold_active,
        LIMITER.threshold_normal,
        LIMITER.threshold_emergency,
        LIMITER.min_over_threshold_duration,
        LIMITER.min_under_threshold_duration,
        LIMITER.emergency_profile_active,
    )
    values = {ref.name: (await s.get(*ref))["value"] for ref in shown}
    monitored = (await s.get(*LIMITER.monitored_value))["value"]
    mon = (
        f"{monitored[0]['value']}/{console.obis_text(monitored[1]['value'])}/"
        f"{monitored[2]['value']}"
    )
    if out.json:
        out.data({"changed": changed, "monitored_value": mon, **values})
        return EXIT_OK
    if changed:
        out.print(f"written: {', '.join(changed)}")
    rows = [("monitored_value", mon)] + [(k, _limit_text(k, v)) for k, v in values.items()]
    out.print(console.table(["Limiter 0.0.17.0.0.255", "value"], rows))
    return EXIT_OK


def _limit_text(name: str, value: Any) -> str:
    if "duration" in name:
        return f"{value} s"
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT_MAX.values():
        return f"{value} (off: never trips)"
    return str(value)


# ---------------------------------------------------------------- firmware
async def _firmware(s: Any, out: Output, image: bytes, ident: bytes, activate: bool) -> int:
    started = time.monotonic()
    bar = console.progress(out.err) if (not out.json and out.err.is_terminal) else None
    task = bar.add_task("image transfer", total=len(image)) if bar else None
    last_pct = [-1]
    last_done = [0]

    def progress(done: int, total: int) -> None:
        last_done[0] = done
        if bar is not None and task is not None:
            bar.update(task, completed=done)
            return
        pct = done * 100 // total
        if not out.json and pct // 10 != last_pct[0] // 10:
            last_pct[0] = pct
            out.err.print(f"[dim]image transfer {pct:3d}% ({done}/{total} bytes)[/dim]")

    try:
        if bar is not None:
            bar.start()
        report = await push_image(s, image, ident, activate=activate, progress=progress)
    except ImageTransferFailed as exc:
        raise OperationFailed(f"firmware push: {exc}") from None
    except (LinkLost, MeterTimeout) as exc:
        raise OperationFailed(
            f"firmware push interrupted at {max(last_done[0], 0)} of {len(image)} bytes: {exc}; "
            "run the same command again: the meter keeps the blocks and the transfer resumes"
        ) from None
    finally:
        if bar is not None:
            bar.stop()
    elapsed = time.monotonic() - started
    if out.json:
        out.data(_report_json(report, elapsed))
        return EXIT_OK
    resumed = (
        f", resumed: {report.blocks_already_there} blocks were already there"
        if report.blocks_already_there
        else ""
    )
    out.print(
        f"image {ident.decode(errors='replace')!r}: {report.size} bytes in "
        f"{report.blocks_total} blocks of {report.block_size}{resumed}"
    )
    out.print(f"sent {report.blocks_sent} blocks in {elapsed:.1f} s")
    for step in report.steps[1:]:
        out.print(step)
    out.print(f"status: {STATUS_NAMES.get(report.final_status, report.final_status)}")
    return EXIT_OK


def _report_json(r: PushReport, elapsed: float) -> dict[str, Any]:
    return {
        "identifier": r.identifier.decode(errors="replace"),
        "size": r.size,
        "block_size": r.block_size,
        "blocks_total": r.blocks_total,
        "blocks_already_there": r.blocks_already_there,
        "blocks_sent": r.blocks_sent,
        "status": STATUS_NAMES.get(r.final_status, r.final_status),
        "steps": r.steps,
        "seconds": round(elapsed, 3),
    }


__all__ = ["prepare"]
