"""Helpers for the uplink tests: load the JSON Schemas of docs/schemas/ and validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def validate(doc: Any, name: str) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(doc)


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
