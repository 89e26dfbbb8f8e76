"""Helpers for the uplink tests: load the JSON Schemas of docs/schemas/ and validate."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
from referencing import Registry, Resource
from smmc_gateway.uplink import Uplink

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


@functools.cache
def registry() -> Registry[Any]:
    """Every schema of docs/schemas/ under its $id, so relative $refs between them resolve
    (end-device-events -> the event-type pair schemas) without any network access."""
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of docs/schemas/{name}.schema.json (the schema itself checked first)."""
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return jsonschema.Draft202012Validator(data, registry=registry())


def validate(doc: Any, name: str) -> None:
    validator(name).validate(doc)


@functools.lru_cache(maxsize=100_000)
def message_id(payload: bytes) -> str:
    """header.messageId of an outbound message (parsed once per payload)."""
    return str(json.loads(payload)["header"]["messageId"])


NOUN_SCHEMA = {"MeterReadings": "meter-readings", "EndDeviceEvents": "end-device-events"}


def validate_message(raw: bytes) -> dict[str, Any]:
    """Validate an outbound message (envelope + payload by noun); return it parsed."""
    doc: dict[str, Any] = json.loads(raw)
    validate(doc, "envelope")
    noun = doc["header"]["noun"]
    if doc["header"]["verb"] == "reply":
        validate(doc["reply"], "reply")
        if noun == "EndDeviceControls" and doc["payload"]:
            validate(doc["payload"], "end-device-controls-reply")
    else:
        validate(doc["payload"], NOUN_SCHEMA[noun])
    return doc


@contextlib.asynccontextmanager
async def running(
    uplink: Uplink, stop_deadline_s: float = 10.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``uplink`` in a task until the block ends; then stop it (flushing the outbox)."""
    task = asyncio.get_running_loop().create_task(uplink.run())
    try:
        await asyncio.wait_for(uplink.connected.wait(), 15)
        yield task
    finally:
        await uplink.stop(stop_deadline_s)
        await asyncio.wait_for(task, stop_deadline_s + 10)


def ids_on(messages: list[aiomqtt.Message], suffix: str = "") -> list[str]:
    """messageIds of the collected messages whose topic ends with ``suffix``."""
    out = []
    for m in messages:
        if str(m.topic).endswith(suffix) and not str(m.topic).endswith("/status"):
            assert isinstance(m.payload, bytes)
            out.append(message_id(m.payload))
    return out


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait for a condition on plain counters (they have no event), failing after ``timeout``."""

    async def loop() -> None:
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout}s") from None
