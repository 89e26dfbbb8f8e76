"""Firmware image transfer (Image transfer, class 18) over a client session, resumable.

The Blue Book method sequence: enable the transfer (attribute 5) if needed, read
the block size (2), ``image_transfer_initiate`` (method 1) with the identifier
and size — a meter resumes when they equal those of an interrupted transfer —
then read which blocks it already holds (3, else 4) and send only the missing
ones (method 2), ``image_verify`` (3) and ``image_activate`` (4), following
``image_transfer_status`` (6) while the meter works (temporary-failure means
"in progress, ask again"). Progress is reported through a callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from smmc_gateway.cosem.objects import CosemMethod, ImageTransfer
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms.errors import DataAccessError

IMAGE_TRANSFER = ImageTransfer.default_obis or "0.0.44.0.0.255"
CLASS_ID = ImageTransfer.class_id
STATUS_NAMES = {
    0: "not initiated",
    1: "transfer initiated",
    2: "verification initiated",
    3: "verification successful",
    4: "verification failed",
    5: "activation initiated",
    6: "activation successful",
    7: "activation failed",
}


class ImageSession(Protocol):
    """What the transfer needs of a client session (:class:`ClientSession` has it)."""

    async def get(self, class_id: int, obis: str, attribute: int) -> TypedValue: ...
    async def set(self, class_id: int, obis: str, attribute: int, value: TypedValue) -> None: ...
    async def action(
        self, class_id: int, obis: str, method: int, parameters: TypedValue | None = None
    ) -> Any: ...


class ImageTransferFailed(Exception):
    """The meter refused a step or ended in a failed state; the message says which."""


@dataclass
class PushReport:
    identifier: bytes
    size: int
    block_size: int
    blocks_total: int
    blocks_already_there: int
    blocks_sent: int = 0
    final_status: int = 0
    steps: list[str] = field(default_factory=list)


Progress = Callable[[int, int], None]
"""(bytes transferred so far including resumed ones, total bytes)."""


def _int(value: TypedValue) -> int:
    v = value.get("value")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ImageTransferFailed(f"expected an integer, the meter sent {value.get('type')}")
    return v


def held_blocks(bits: TypedValue, count: int) -> set[int]:
    """The block numbers set in image_transferred_blocks_status (MSB first)."""
    raw = bytes.fromhex(str(bits.get("value", "")))
    n = min(int(bits.get("bits", len(raw) * 8)), count, len(raw) * 8)
    return {i for i in range(n) if raw[i // 8] & (0x80 >> (i % 8))}


async def push_image(
    session: ImageSession,
    image: bytes,
    identifier: bytes,
    *,
    activate: bool = True,
    progress: Progress | None = None,
    poll_interval: float = 1.0,
    poll_timeout: float = 120.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    obis: str = IMAGE_TRANSFER,
) -> PushReport:
    """Transfer ``image`` (resuming), verify, and activate unless told not to; ``obis`` is
    the meter's Image transfer object."""
    if not image:
        raise ImageTransferFailed("the image is empty")
    if not 1 <= len(identifier) <= 255:
        raise ImageTransferFailed("the image identifier must be 1..255 bytes")
    it = ImageTransfer(obis)
    enabled = await session.get(*it.image_transfer_enabled)
    if enabled.get("value") is False:
        await session.set(*it.image_transfer_enabled, {"type": "boolean", "value": True})
    block_size = _int(await session.get(*it.image_block_size))
    if block_size <= 0:
        raise ImageTransferFailed(f"the meter reports an image block size of {block_size}")
    count = -(-len(image) // block_size)
    await session.action(
        *it.image_transfer_initiate,
        {
            "type": "structure",
            "value": [
                {"type": "octet-string", "value": identifier.hex()},
                {"type": "double-long-unsigned", "value": len(image)},
            ],
        },
    )
    held = await _held(session, count, obis)
    report = PushReport(identifier, len(image), block_size, count, len(held))
    report.steps.append(f"initiated: {count} blocks of {block_size} bytes, {len(held)} held")
    done_bytes = sum(min(block_size, len(image) - n * block_size) for n in held)
    if progress is not None:
        progress(done_bytes, len(image))
    for number in range(count):
        if number in held:
            continue
        block = image[number * block_size : (number + 1) * block_size]
        await session.action(
            *it.image_block_transfer,
            {
                "type": "structure",
                "value": [
                    {"type": "double-long-unsigned", "value": number},
                    {"type": "octet-string", "value": block.hex()},
                ],
            },
        )
        report.blocks_sent += 1
        done_bytes += len(block)
        if progress is not None:
            progress(done_bytes, len(image))
    missing = count - len(await _held(session, count, obis))
    if missing:
        raise ImageTransferFailed(f"after the transfer the meter still misses {missing} blocks")
    await _step(
        session,
        it.image_verify,
        (3,),
        (4,),
        "verification",
        report,
        poll_interval,
        poll_timeout,
        sleep,
    )
    if activate:
        await _step(
            session,
            it.image_activate,
            (6,),
            (7,),
            "activation",
            report,
            poll_interval,
            poll_timeout,
            sleep,
        )
    report.final_status = _int(await session.get(*it.image_transfer_status))
    return report


async def _held(session: ImageSession, count: int, obis: str) -> set[int]:
    it = ImageTransfer(obis)
    bits = await session.get(*it.image_transferred_blocks_status)
    if bits.get("type") == "bit-string":
        return held_blocks(bits, count)
    first = _int(await session.get(*it.image_first_not_transferred_block_number))
    return set(range(min(first, count)))


async def _step(
    session: ImageSession,
    method: CosemMethod,
    ok: tuple[int, ...],
    failed: tuple[int, ...],
    name: str,
    report: PushReport,
    poll_interval: float,
    poll_timeout: float,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Invoke verify/activate; a temporary-failure means in progress: poll the status."""
    try:
        await session.action(*method, {"type": "integer", "value": 0})
    except DataAccessError as exc:
        if exc.result != "temporary-failure":  # temporary-failure: still working, poll
            raise ImageTransferFailed(f"{name} refused: {exc.result}") from exc
    deadline = time.monotonic() + poll_timeout
    while True:
        status = _int(await session.get(*ImageTransfer(method.obis).image_transfer_status))
        if status in ok:
            report.steps.append(f"{name}: {STATUS_NAMES[status]}")
            return
        if status in failed:
            raise ImageTransferFailed(f"{name} failed: the meter reports {STATUS_NAMES[status]}")
        if time.monotonic() > deadline:
            raise ImageTransferFailed(
                f"{name} still not finished after {poll_timeout:g} s "
                f"(status {STATUS_NAMES.get(status, status)})"
            )
        await sleep(poll_interval)
