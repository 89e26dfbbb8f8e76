"""Use case 9, remote firmware update campaign: one verified image to many meters.

:func:`run_campaign` transfers an image (already verified against its signed
manifest by the caller) to each meter with at most ``max_parallel`` transfers at a
time. Per meter: :func:`~smmc_gateway.usecases.firmware_push.push_image` (initiate,
only the blocks the meter does not hold — so a transfer resumes after a dropped
connection or a gateway restart — verify), then activation now (method 4), or at
``activation`` by writing the Image activation single action schedule
(0.0.15.0.2.255 attribute 4, meter local time from the clock's time_zone) and
waiting for that time; finally the active firmware identifier (1.0.0.2.0.255) is
read and must equal the image identifier. A dropped session is retried up to
``attempts`` times, each attempt resuming. Every step is reported through ``emit``
(started, progress at each ``progress_step`` percent, verified, activationScheduled,
activated, failed with the reason); the outcome per meter is returned. A meter already
running the image's identifier is not updated again (a campaign served a second time
after a restart does not re-flash the meters it had finished).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.cosem.datetime import CosemDate, CosemTime
from smmc_gateway.cosem.objects import Clock, Data, SingleActionSchedule
from smmc_gateway.cosem.values import TypedValue, octet_string, structure
from smmc_gateway.dlms.errors import DataAccessError, SessionError
from smmc_gateway.usecases.firmware_push import ImageSession, ImageTransferFailed, push_image

ACTIVATION_SCHEDULE = "0.0.15.0.2.255"
FIRMWARE_ID = "1.0.0.2.0.255"
CLOCK = "0.0.1.0.0.255"

OpenSession = Callable[[str], AbstractAsyncContextManager[Any]]
Emit = Callable[[str, str, str], Coroutine[Any, Any, None]]
"""(meter id, step: started|progress|verified|activationScheduled|activated|failed, details)"""


@dataclass(frozen=True)
class CampaignObjects:
    """The logical names used on one meter (its model may move them)."""

    image_transfer: str = "0.0.44.0.0.255"
    activation_schedule: str = ACTIVATION_SCHEDULE
    firmware_id: str = FIRMWARE_ID
    clock: str = CLOCK


@dataclass(frozen=True)
class CampaignImage:
    identifier: str
    data: bytes


@dataclass
class MeterOutcome:
    meter_id: str
    ok: bool
    step: str  # the last step reached: started, transferring, verified, activationScheduled,
    # activated
    details: str
    version: str | None = None
    blocks_sent: int = 0  # over all attempts
    attempts: int = 0


def execution_time(at: datetime, time_zone_min: int) -> TypedValue:
    """The single action schedule entry for UTC ``at`` in meter local time
    (COSEM convention: UTC = local + time_zone minutes)."""
    local = at.astimezone(UTC).replace(tzinfo=None) - timedelta(minutes=time_zone_min)
    t = CosemTime(local.hour, local.minute, local.second, 0).to_bytes()
    d = CosemDate(local.year, local.month, local.day, None).to_bytes()
    return structure([octet_string(t), octet_string(d)])


def _text(value: TypedValue) -> str:
    raw = value.get("value")
    if value.get("type") == "octet-string" and isinstance(raw, str):
        return bytes.fromhex(raw).decode("ascii", errors="replace")
    return str(raw)


async def _read_version(s: ImageSession, objects: CampaignObjects) -> str:
    return _text(await s.get(*Data(objects.firmware_id).value))


async def update_meter(
    open_session: OpenSession,
    meter_id: str,
    image: CampaignImage,
    emit: Emit,
    *,
    activation: datetime | None = None,
    attempts: int = 3,
    progress_step: int = 25,
    retry_delay_s: float = 1.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    objects: CampaignObjects | None = None,
    confirm_grace_s: float = 120.0,
) -> MeterOutcome:
    obj = objects or CampaignObjects()
    out = MeterOutcome(meter_id, False, "started", "")
    ident = image.identifier.encode("ascii")
    last_pct = [-progress_step]
    pending: list[asyncio.Task[None]] = []

    first_call = [True]

    def progress(done: int, total: int) -> None:
        # the first call of an attempt reports what the meter already holds; each later
        # call is one block sent
        if first_call[0]:
            first_call[0] = False
        else:
            out.blocks_sent += 1
        pct = done * 100 // total
        if pct >= last_pct[0] + progress_step or (pct == 100 and last_pct[0] != 100):
            last_pct[0] = pct
            pending.append(
                asyncio.get_running_loop().create_task(
                    emit(meter_id, "progress", f"{pct}% ({done} of {total} bytes)")
                )
            )

    await emit(meter_id, "started", f"image {image.identifier}, {len(image.data)} bytes")
    while True:
        out.attempts += 1
        first_call[0] = True
        try:
            async with open_session(meter_id) as s:
                try:
                    running: str | None = await _read_version(s, obj)
                except DataAccessError:
                    running = None  # not readable before: confirmed after activation instead
                if running == image.identifier:  # e.g. a campaign served again after restart
                    out.version = running
                    out.ok, out.step = True, "activated"
                    out.details = f"firmware {running} already active; nothing sent"
                    await emit(meter_id, "activated", out.details)
                    return out
                out.step = "transferring"
                report = await push_image(
                    s,
                    image.data,
                    ident,
                    activate=activation is None,
                    progress=progress,
                    obis=obj.image_transfer,
                )
                for p in pending:
                    await p
                pending.clear()
                out.step = "verified"
                await emit(
                    meter_id,
                    "verified",
                    f"{report.blocks_total} blocks of {report.block_size} bytes, "
                    f"{report.blocks_already_there} already held (resumed), "
                    f"{report.blocks_sent} sent",
                )
                if activation is None:
                    out.version = await _read_version(s, obj)
                else:
                    tz = (await s.get(*Clock(obj.clock).time_zone)).get("value")
                    entry = execution_time(activation, tz if isinstance(tz, int) else 0)
                    schedule = SingleActionSchedule(obj.activation_schedule)
                    await s.set(*schedule.execution_time, {"type": "array", "value": [entry]})
                    out.step = "activationScheduled"
                    await emit(
                        meter_id,
                        "activationScheduled",
                        f"activation at {activation.isoformat()} ({obj.activation_schedule})",
                    )
            break
        except (SessionError, OSError, TimeoutError) as exc:
            for p in pending:
                await p
            pending.clear()
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, DataAccessError) or out.attempts >= attempts:
                return await _failed(out, emit, reason)
            await asyncio.sleep(retry_delay_s)
        except ImageTransferFailed as exc:
            return await _failed(out, emit, str(exc))
    if activation is not None:
        wait = (activation - now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # the meter activates by its own clock: allow it confirm_grace_s to get there
        deadline = asyncio.get_running_loop().time() + confirm_grace_s
        failures = 0
        while True:
            try:
                async with open_session(meter_id) as s:
                    out.version = await _read_version(s, obj)
            except (SessionError, OSError, TimeoutError) as exc:
                failures += 1
                if failures >= attempts:
                    return await _failed(out, emit, f"version not confirmed: {exc}")
            if out.version == image.identifier or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(retry_delay_s)
    if out.version != image.identifier:
        return await _failed(
            out,
            emit,
            f"after activation the meter reports firmware "
            f"{out.version!r}, expected {image.identifier!r}",
        )
    out.ok, out.step = True, "activated"
    out.details = f"firmware {out.version} active"
    await emit(meter_id, "activated", out.details)
    return out


async def _failed(out: MeterOutcome, emit: Emit, reason: str) -> MeterOutcome:
    out.ok, out.details = False, reason
    await emit(out.meter_id, "failed", f"{reason} (last step: {out.step})")
    return out


async def run_campaign(
    open_session: OpenSession,
    meters: Sequence[str],
    image: CampaignImage,
    emit: Emit,
    *,
    activation: datetime | None = None,
    max_parallel: int = 4,
    objects_for: Callable[[str], CampaignObjects] | None = None,
    **kw: Any,
) -> list[MeterOutcome]:
    """Update every meter, at most ``max_parallel`` at once; one outcome per meter."""
    gate = asyncio.Semaphore(max(1, max_parallel))

    async def one(m: str) -> MeterOutcome:
        async with gate:
            objects = objects_for(m) if objects_for is not None else None
            return await update_meter(
                open_session, m, image, emit, activation=activation, objects=objects, **kw
            )

    return list(await asyncio.gather(*(one(m) for m in meters)))
