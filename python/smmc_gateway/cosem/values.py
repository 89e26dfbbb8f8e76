"""Typed values (the typed JSON of CLI.md) as plain dicts: builders and readers.

``{"type": "long-unsigned", "value": 5}``; arrays and structures hold lists of
typed values; octet-strings are lowercase hex. A bit-string additionally
carries ``"bits"`` (its length in bits), since hex alone cannot say it.
Readers raise :class:`ValueTypeError` naming the expected and found type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required, TypedDict

from smmc_gateway.cosem.datetime import unpack_datetime


class TypedValue(TypedDict, total=False):
    """One A-XDR value as the core decodes and encodes it (the typed JSON of the CLI):
    ``type`` (an A-XDR type name: ``long-unsigned``, ``octet-string``, ``structure``...)
    and ``value`` (an int, a float, a bool, None, text, lowercase hex for an
    octet-string, or a list of typed values for an array or a structure); a 12-byte
    octet-string or date-time that is a valid COSEM date-time also carries
    ``datetime`` (ISO 8601), a bit-string ``bits`` (its length in bits), a
    compact-array its ``description``. Only ``type`` and ``value`` are read on input."""

    type: Required[str]
    value: Required[Any]
    datetime: str
    bits: int
    description: Any


def as_typed(obj: object) -> TypedValue | None:
    """``obj`` (parsed JSON, a caller's dict) as a TypedValue when it has the shape of
    one (a string ``type`` and a ``value``; ``datetime``, ``bits``, ``description``
    kept), else None. Only the shape: the core's encoder checks the rest."""
    if not isinstance(obj, Mapping):
        return None
    kind = obj.get("type")
    if not isinstance(kind, str) or "value" not in obj:
        return None
    out: TypedValue = {"type": kind, "value": obj["value"]}
    if isinstance(stamp := obj.get("datetime"), str):
        out["datetime"] = stamp
    if isinstance(bits := obj.get("bits"), int):
        out["bits"] = bits
    if "description" in obj:
        out["description"] = obj["description"]
    return out


def text_of(value: Mapping[str, Any]) -> str:
    """A value as text for a person (an identifier, a name): printable ASCII
    octet-strings as such, other octet-strings as hex, numbers and strings as they are."""
    raw = value.get("value")
    if value.get("type") == "octet-string" and isinstance(raw, str):
        data = bytes.fromhex(raw)
        if data and all(0x20 <= b < 0x7F for b in data):
            return data.decode("ascii")
        return data.hex()
    return str(raw)


INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "integer": (-(2**7), 2**7 - 1),
    "long": (-(2**15), 2**15 - 1),
    "double-long": (-(2**31), 2**31 - 1),
    "long64": (-(2**63), 2**63 - 1),
    "unsigned": (0, 2**8 - 1),
    "enum": (0, 2**8 - 1),
    "long-unsigned": (0, 2**16 - 1),
    "double-long-unsigned": (0, 2**32 - 1),
    "long64-unsigned": (0, 2**64 - 1),
}


class ValueTypeError(ValueError):
    """A typed value is not of the expected type or shape."""


def typed(type_name: str, value: Any) -> TypedValue:
    """A typed value; integer types are range-checked."""
    bounds = INTEGER_RANGES.get(type_name)
    if bounds is not None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueTypeError(f"{type_name} needs an integer, got {value!r}")
        if not bounds[0] <= value <= bounds[1]:
            raise ValueTypeError(f"{type_name} value {value} outside {bounds[0]}..{bounds[1]}")
    return {"type": type_name, "value": value}


def null() -> TypedValue:
    return {"type": "null-data", "value": None}


def boolean(v: bool) -> TypedValue:
    return {"type": "boolean", "value": bool(v)}


def integer(v: int) -> TypedValue:
    return typed("integer", v)


def long(v: int) -> TypedValue:
    return typed("long", v)


def double_long(v: int) -> TypedValue:
    return typed("double-long", v)


def unsigned(v: int) -> TypedValue:
    return typed("unsigned", v)


def long_unsigned(v: int) -> TypedValue:
    return typed("long-unsigned", v)


def double_long_unsigned(v: int) -> TypedValue:
    return typed("double-long-unsigned", v)


def long64_unsigned(v: int) -> TypedValue:
    return typed("long64-unsigned", v)


def enum(v: int) -> TypedValue:
    return typed("enum", v)


def octet_string(data: bytes) -> TypedValue:
    return {"type": "octet-string", "value": bytes(data).hex()}


def visible_string(text: str) -> TypedValue:
    return {"type": "visible-string", "value": text}


def bit_string(bits: list[bool]) -> TypedValue:
    """Most significant bit of the first byte first."""
    data = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            data[i // 8] |= 0x80 >> (i % 8)
    return {"type": "bit-string", "value": bytes(data).hex(), "bits": len(bits)}


def array(items: list[TypedValue]) -> TypedValue:
    return {"type": "array", "value": list(items)}


def structure(items: list[TypedValue]) -> TypedValue:
    return {"type": "structure", "value": list(items)}


# ------------------------------------------------------------------ readers
def type_of(value: Any) -> str:
    if not isinstance(value, dict) or "type" not in value or "value" not in value:
        raise ValueTypeError(f"not a typed value: {value!r}")
    return str(value["type"])


def expect(value: Any, *types: str) -> Any:
    """The payload of ``value`` after checking its type is one of ``types``."""
    found = type_of(value)
    if found not in types:
        raise ValueTypeError(f"expected {' or '.join(types)}, got {found}")
    return value["value"]


def as_int(value: Any, *types: str) -> int:
    allowed = types or tuple(INTEGER_RANGES)
    payload = expect(value, *allowed)
    if not isinstance(payload, int) or isinstance(payload, bool):
        raise ValueTypeError(f"{type_of(value)} payload is not an integer: {payload!r}")
    lo, hi = INTEGER_RANGES[type_of(value)]
    if not lo <= payload <= hi:
        raise ValueTypeError(f"{type_of(value)} value {payload} outside {lo}..{hi}")
    return payload


def as_bool(value: Any) -> bool:
    payload = expect(value, "boolean")
    if not isinstance(payload, bool):
        raise ValueTypeError(f"boolean payload is not a bool: {payload!r}")
    return payload


def as_bytes(value: Any) -> bytes:
    payload = expect(value, "octet-string")
    try:
        return bytes.fromhex(payload)
    except (TypeError, ValueError) as exc:
        raise ValueTypeError(f"octet-string payload is not hex: {payload!r}") from exc


def as_list(value: Any, *types: str) -> list[TypedValue]:
    payload = expect(value, *(types or ("array", "structure")))
    if not isinstance(payload, list):
        raise ValueTypeError(f"{type_of(value)} payload is not a list")
    for item in payload:
        type_of(item)
    return payload


def as_structure(value: Any, length: int) -> list[TypedValue]:
    items = as_list(value, "structure")
    if len(items) != length:
        raise ValueTypeError(f"structure has {len(items)} elements, expected {length}")
    return items


def as_datetime_bytes(value: Any) -> bytes:
    """A date-time: octet-string(12) (or the date-time type), validated."""
    payload = expect(value, "octet-string", "date-time")
    try:
        data = bytes.fromhex(payload)
    except (TypeError, ValueError) as exc:
        raise ValueTypeError(f"date-time payload is not hex: {payload!r}") from exc
    unpack_datetime(data)
    return data


def same_type(a: TypedValue, b: TypedValue) -> bool:
    """Whether ``b`` has the same type tree shape as ``a`` (for SET checks)."""
    if type_of(a) != type_of(b):
        return False
    if a["type"] in ("array", "structure"):
        return isinstance(b["value"], list)
    return True
