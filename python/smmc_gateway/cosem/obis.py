"""OBIS codes (IEC 62056-6-1): parse, format and validate "a.b.c.d.e.f" and 6 bytes.

An :class:`Obis` is an immutable value of six groups 0..255. Text forms accepted:
``"1.0.1.8.0.255"`` (dots) and the common reduced IEC form ``"1-0:1.8.0*255"``.
Errors are :class:`ObisError` (a ``ValueError``) naming the group and the bad text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_GROUPS = "abcdef"
_IEC_FORM = re.compile(r"^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)\*(\d+)$")


class ObisError(ValueError):
    """A malformed OBIS code; the message names the group (A..F) or the length."""


@dataclass(frozen=True, order=True)
class Obis:
    """One OBIS code: the six value groups A..F."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int

    def __post_init__(self) -> None:
        for name, value in zip(_GROUPS, self.groups, strict=True):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ObisError(f"OBIS group {name.upper()} must be an integer, got {value!r}")
            if not 0 <= value <= 255:
                raise ObisError(f"OBIS group {name.upper()} is {value}, allowed 0..255")

    @property
    def groups(self) -> tuple[int, int, int, int, int, int]:
        return (self.a, self.b, self.c, self.d, self.e, self.f)

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse ``"a.b.c.d.e.f"`` or ``"a-b:c.d.e*f"`` (memoised: codes repeat)."""
        if not isinstance(text, str):
            raise ObisError(f"OBIS code must be text, got {type(text).__name__}")
        return _parse(text)

    @classmethod
    def _parse_text(cls, text: str) -> Obis:
        stripped = text.strip()
        match = _IEC_FORM.match(stripped)
        parts = list(match.groups()) if match else stripped.split(".")
        if len(parts) != 6:
            raise ObisError(
                f"OBIS code {text!r} has {len(parts)} groups, expected 6 as 'a.b.c.d.e.f'"
            )
        values: list[int] = []
        for name, part in zip(_GROUPS, parts, strict=True):
            if not part.isascii() or not part.isdigit():
                raise ObisError(
                    f"OBIS code {text!r}: group {name.upper()} is {part!r}, expected 0..255"
                )
            values.append(int(part))
        return cls(*values)

    @classmethod
    def from_bytes(cls, data: bytes) -> Obis:
        """Six bytes (a logical_name octet-string) to an OBIS code."""
        if len(data) != 6:
            raise ObisError(f"OBIS logical name has {len(data)} bytes, expected 6")
        return cls(*data)

    @classmethod
    def from_hex(cls, text: str) -> Obis:
        """The typed-JSON octet-string form (12 lowercase hex digits)."""
        try:
            data = bytes.fromhex(text)
        except ValueError as exc:
            raise ObisError(f"OBIS logical name {text!r} is not hex") from exc
        return cls.from_bytes(data)

    @classmethod
    def coerce(cls, value: Obis | str | bytes) -> Obis:
        """Accept an :class:`Obis`, its text form or its 6 bytes."""
        if isinstance(value, Obis):
            return value
        if isinstance(value, bytes | bytearray):
            return cls.from_bytes(bytes(value))
        return cls.parse(value)

    def to_bytes(self) -> bytes:
        return bytes(self.groups)

    def hex(self) -> str:
        return self.to_bytes().hex()

    def __str__(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Obis:
    return Obis._parse_text(text)
