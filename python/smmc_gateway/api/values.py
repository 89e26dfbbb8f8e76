"""Plain Python values <-> typed values (the A-XDR value tree of the core).

Reading (:func:`to_python`): null-data -> ``None``; boolean -> ``bool``; every
integer type, enum and bcd -> ``int``; float32/float64 -> ``float``; visible- and
utf8-string -> ``str``; an octet-string that is a complete COSEM date-time ->
``datetime`` (aware when the deviation is specified), any other octet-string,
date, time and date-time with wildcards -> ``bytes``; bit-string -> ``str`` of
``0``/``1`` (first bit first); structure -> ``tuple``; array and compact-array ->
``list``. This is what :func:`smmc_gateway.decode_profile_buffer` gives for rows.

Writing (:func:`from_python`): a typed value (``{"type": ..., "value": ...}``) is
taken as it is; a plain value is encoded as ``type_name`` (a type the Blue Book
fixes for the attribute) or as the type of ``template`` (the attribute's current
value), element by element for structures and arrays. ``datetime`` becomes a
12-byte date-time. A value that does not fit raises
:class:`~smmc_gateway.cosem.values.ValueTypeError` naming the expected type and
what was given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smmc_gateway import _core
from smmc_gateway.cosem.objects import DATE_TIME
from smmc_gateway.cosem.values import INTEGER_RANGES, TypedValue, ValueTypeError, as_typed, typed

_INTEGERS = frozenset(INTEGER_RANGES) | {"bcd"}


def is_typed(value: Any) -> bool:
    return isinstance(value, dict) and "type" in value and "value" in value


def to_python(value: TypedValue) -> Any:
    """The plain Python value of a typed value (see the module doc)."""
    kind = value["type"]
    payload = value["value"]
    if kind in ("structure",):
        return tuple(to_python(v) for v in payload)
    if kind in ("array", "compact-array"):
        return [to_python(v) for v in payload]
    if kind in ("octet-string", "date-time"):
        data = bytes.fromhex(payload)
        if len(data) == 12:
            try:
                when = _core.decode_datetime(data)
            except _core.DlmsError:
                when = None
            if when is not None:
                return when
        return data
    if kind in ("date", "time"):
        return bytes.fromhex(payload)
    if kind == "bit-string":
        bits = int(value.get("bits", len(payload) * 4))
        number = int(payload, 16) if payload else 0
        text = format(number, f"0{len(payload) * 4}b") if payload else ""
        return text[:bits]
    return payload  # None, bool, int, float, str


def from_python(
    value: Any,
    *,
    type_name: str | None = None,
    template: TypedValue | None = None,
    what: str = "value",
) -> TypedValue:
    """A typed value for ``value`` (see the module doc)."""
    given = as_typed(value) if is_typed(value) else None
    if given is not None:
        try:  # checked: a malformed typed value fails here, not at the meter
            _core.encode(given)
        except (_core.DlmsError, TypeError, ValueError) as exc:
            raise ValueTypeError(f"{what}: not a valid typed value: {exc}") from None
        return given
    kind = type_name or (template["type"] if template is not None else None)
    if kind is None:
        return _infer(value, what)
    if kind == DATE_TIME:
        return _datetime(value, what)
    if kind in ("structure", "array"):
        return _sequence(value, kind, template, what)
    if kind in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueTypeError(f"{what}: {kind} needs an int, got {value!r}")
        if kind == "bcd":
            return {"type": "bcd", "value": value}
        return typed(kind, value)
    if kind in ("float32", "float64"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueTypeError(f"{what}: {kind} needs a number, got {value!r}")
        return {"type": kind, "value": float(value)}
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueTypeError(f"{what}: boolean needs True or False, got {value!r}")
        return {"type": "boolean", "value": value}
    if kind in ("visible-string", "utf8-string"):
        if not isinstance(value, str):
            raise ValueTypeError(f"{what}: {kind} needs a str, got {value!r}")
        return {"type": kind, "value": value}
    if kind in ("octet-string", "date-time"):
        if isinstance(value, datetime):
            return _datetime(value, what)
        if not isinstance(value, bytes | bytearray):
            raise ValueTypeError(f"{what}: {kind} needs bytes (or a datetime), got {value!r}")
        return {"type": kind, "value": bytes(value).hex()}
    if kind == "bit-string":
        if not isinstance(value, str) or set(value) - {"0", "1"}:
            raise ValueTypeError(f"{what}: bit-string needs a str of 0 and 1, got {value!r}")
        bits = [c == "1" for c in value]
        data = bytearray((len(bits) + 7) // 8)
        for i, bit in enumerate(bits):
            if bit:
                data[i // 8] |= 0x80 >> (i % 8)
        return {"type": "bit-string", "value": bytes(data).hex(), "bits": len(bits)}
    if kind == "null-data":
        if value is not None:
            raise ValueTypeError(f"{what}: null-data needs None, got {value!r}")
        return {"type": "null-data", "value": None}
    raise ValueTypeError(
        f"{what}: cannot write a plain value as {kind}; pass a typed value "
        '{"type": ..., "value": ...}'
    )


def _datetime(value: Any, what: str) -> TypedValue:
    if isinstance(value, datetime):
        return {"type": "octet-string", "value": _core.encode_datetime(value).hex()}
    if isinstance(value, bytes | bytearray) and len(value) == 12:
        return {"type": "octet-string", "value": bytes(value).hex()}
    raise ValueTypeError(f"{what}: a date-time needs a datetime (or 12 bytes), got {value!r}")


def _sequence(value: Any, kind: str, template: TypedValue | None, what: str) -> TypedValue:
    if not isinstance(value, list | tuple):
        raise ValueTypeError(f"{what}: {kind} needs a list or tuple, got {value!r}")
    items: list[TypedValue] = list(template["value"]) if template is not None else []
    if kind == "structure":
        if template is None or len(items) != len(value):
            raise ValueTypeError(
                f"{what}: structure of {len(items) if template else '?'} elements, "
                f"got {len(value)}; pass a typed value when the shape differs"
            )
        out = [
            from_python(v, template=t, what=f"{what}[{i}]")
            for i, (v, t) in enumerate(zip(value, items, strict=True))
        ]
        return {"type": "structure", "value": out}
    if value and not items:
        raise ValueTypeError(
            f"{what}: the meter's array is empty, so its element type is unknown; "
            "pass a typed value"
        )
    element = items[0] if items else None
    return {
        "type": "array",
        "value": [
            from_python(v, template=element, what=f"{what}[{i}]") for i, v in enumerate(value)
        ],
    }


def _infer(value: Any, what: str) -> TypedValue:
    """Without a type: only the types a Python value names unambiguously."""
    if value is None:
        return {"type": "null-data", "value": None}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, datetime):
        return _datetime(value, what)
    if isinstance(value, bytes | bytearray):
        return {"type": "octet-string", "value": bytes(value).hex()}
    if isinstance(value, str):
        return {"type": "visible-string", "value": value}
    raise ValueTypeError(
        f"{what}: {type(value).__name__} {value!r} has no single A-XDR type; pass a typed "
        'value like {"type": "long-unsigned", "value": 5}'
    )
