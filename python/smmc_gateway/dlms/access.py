"""References and selective access of the client services: attribute,
method and capture-object references, RangeAccess/EntryAccess (profile
generic selectors 1 and 2, Blue Book) and their access-selection encoding,
and the small A-XDR helpers the services share.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from smmc_gateway import _core
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import TypedValue

AttributeRef = tuple[int, "Obis | str", int]
"""(class_id, logical name, attribute_id)"""
MethodRef = tuple[int, "Obis | str", int]
"""(class_id, logical name, method_id)"""
ColumnRef = tuple[int, "Obis | str", int, int]
"""A capture object: (class_id, logical name, attribute_index, data_index)."""

CLOCK_COLUMN: ColumnRef = (8, "0.0.1.0.0.255", 2, 0)


@dataclass(frozen=True)
class RangeAccess:
    """Selective access by range (selector 1): rows whose ``restricting``
    column (default: the clock capture object) lies in ``start..end``;
    ``columns`` empty = all captured columns."""

    start: datetime
    end: datetime
    restricting: ColumnRef = CLOCK_COLUMN
    columns: Sequence[ColumnRef] = ()


@dataclass(frozen=True)
class EntryAccess:
    """Selective access by entry (selector 2): entries ``from_entry..to_entry``
    (1-based; ``to_entry`` 0 = the last) and columns ``from_column..to_column``
    (``to_column`` 0 = the last)."""

    from_entry: int = 1
    to_entry: int = 0
    from_column: int = 1
    to_column: int = 0


Access = RangeAccess | EntryAccess


def logical_name(obis: Obis | str) -> str:
    """The canonical "a.b.c.d.e.f" text of ``obis`` (memoised for text: codes repeat)."""
    if isinstance(obis, str):
        return _logical_name(obis)
    return str(Obis.coerce(obis))


@functools.lru_cache(maxsize=4096)
def _logical_name(text: str) -> str:
    return str(Obis.parse(text))


def _column(ref: ColumnRef) -> TypedValue:
    class_id, obis, attribute, data_index = ref
    return {
        "type": "structure",
        "value": [
            {"type": "long-unsigned", "value": class_id},
            {"type": "octet-string", "value": Obis.coerce(obis).hex()},
            {"type": "integer", "value": attribute},
            {"type": "long-unsigned", "value": data_index},
        ],
    }


class Selection(NamedTuple):
    """The access-selection of a GET/SET: selector and its parameters (one
    A-XDR value)."""

    selector: int
    parameters: bytes


def access_selection(access: Access | None) -> Selection | None:
    """The access-selection of a GET/SET for ``access`` (Blue Book, profile generic)."""
    if access is None:
        return None
    if isinstance(access, RangeAccess):
        params: TypedValue = {
            "type": "structure",
            "value": [
                _column(access.restricting),
                {"type": "octet-string", "value": _core.encode_datetime(access.start).hex()},
                {"type": "octet-string", "value": _core.encode_datetime(access.end).hex()},
                {"type": "array", "value": [_column(c) for c in access.columns]},
            ],
        }
        return Selection(1, _core.encode(params))
    params = {
        "type": "structure",
        "value": [
            {"type": "double-long-unsigned", "value": access.from_entry},
            {"type": "double-long-unsigned", "value": access.to_entry},
            {"type": "long-unsigned", "value": access.from_column},
            {"type": "long-unsigned", "value": access.to_column},
        ],
    }
    return Selection(2, _core.encode(params))


def raw_value(value: TypedValue | bytes | None) -> bytes:
    if value is None:
        return b"\x00"  # null-data
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return _core.encode(value)


def axdr_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
