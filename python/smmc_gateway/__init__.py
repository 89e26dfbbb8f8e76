"""smmc-gateway: a head-end gateway for smart electricity meters (DLMS/COSEM).

The protocol core is the Rust extension :mod:`smmc_gateway._core`; this package
is the asyncio shell around it.

The public API for scripts (``docs/api.md``): :func:`connect` (a :class:`Meter`),
:func:`decode`, :func:`decode_profile_buffer`, the named COSEM objects
(``Register``, ``ProfileGeneric``, ``Clock``, ``DisconnectControl``, ... of
:mod:`smmc_gateway.cosem.objects`) and the errors. ``import smmc_gateway`` loads only
the core; the rest is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from smmc_gateway import _core

if TYPE_CHECKING:
    from smmc_gateway.api import ConfigurationError, Meter, connect
    from smmc_gateway.cosem.objects import (
        ActivityCalendar,
        AssociationLN,
        Clock,
        CosemAttribute,
        CosemMethod,
        Data,
        DisconnectControl,
        ExtendedRegister,
        ImageTransfer,
        Limiter,
        MBusClient,
        ProfileGeneric,
        PushSetup,
        ReferenceError_,
        Register,
        RegisterMonitor,
        ScriptTable,
        SecuritySetup,
    )
    from smmc_gateway.cosem.values import TypedValue, ValueTypeError
    from smmc_gateway.dlms.errors import (
        AssociationRefused,
        DataAccessError,
        LinkLost,
        MeterTimeout,
        ProtocolError,
        SecurityFailure,
        SessionError,
        TransportError,
    )

__version__ = _core.__version__

DlmsError = _core.DlmsError
"""Raised by :func:`decode` and :func:`decode_profile_buffer` on bytes that are not
what they should be; the message names the layer, field and byte offset."""


def decode(data: bytes) -> TypedValue:
    """One A-XDR value (tag, length, content) to its typed value, e.g.
    ``decode(bytes.fromhex("1200e6"))`` is ``{"type": "long-unsigned", "value": 230}``.
    A valid COSEM date-time octet-string also carries ``"datetime"`` (ISO-8601).
    Bytes after the value, or a truncated value, raise :class:`DlmsError`."""
    return _core.decode(bytes(data))


def decode_profile_buffer(data: bytes, capture_period: int | None = None) -> list[tuple[Any, ...]]:
    """A profile generic buffer (attribute 2: an array of structures, or a
    compact-array) to rows of plain values: date-times become ``datetime``
    (aware when the deviation is specified), integers ``int``, floats ``float``,
    other octet-strings ``bytes``, strings ``str``, null-data ``None``. A null clock
    (a row a meter left to be inferred) is the previous row's plus
    ``capture_period`` seconds; without a period such a row raises
    :class:`DlmsError`."""
    return _core.decode_profile_buffer(bytes(data), capture_period)


_API = ("ConfigurationError", "Meter", "connect")
_OBJECTS = (
    "ActivityCalendar",
    "AssociationLN",
    "Clock",
    "CosemAttribute",
    "CosemMethod",
    "Data",
    "DisconnectControl",
    "ExtendedRegister",
    "ImageTransfer",
    "Limiter",
    "MBusClient",
    "ProfileGeneric",
    "PushSetup",
    "ReferenceError_",
    "Register",
    "RegisterMonitor",
    "ScriptTable",
    "SecuritySetup",
)
_ERRORS = (
    "AssociationRefused",
    "DataAccessError",
    "LinkLost",
    "MeterTimeout",
    "ProtocolError",
    "SecurityFailure",
    "SessionError",
    "TransportError",
)
_LAZY: dict[str, str] = {
    **dict.fromkeys(_API, "smmc_gateway.api"),
    **dict.fromkeys(_OBJECTS, "smmc_gateway.cosem.objects"),
    **dict.fromkeys(_ERRORS, "smmc_gateway.dlms.errors"),
    "ValueTypeError": "smmc_gateway.cosem.values",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smmc_gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ActivityCalendar",
    "AssociationLN",
    "AssociationRefused",
    "Clock",
    "ConfigurationError",
    "CosemAttribute",
    "CosemMethod",
    "Data",
    "DataAccessError",
    "DisconnectControl",
    "DlmsError",
    "ExtendedRegister",
    "ImageTransfer",
    "Limiter",
    "LinkLost",
    "MBusClient",
    "Meter",
    "MeterTimeout",
    "ProfileGeneric",
    "ProtocolError",
    "PushSetup",
    "ReferenceError_",
    "Register",
    "RegisterMonitor",
    "ScriptTable",
    "SecurityFailure",
    "SecuritySetup",
    "SessionError",
    "TransportError",
    "ValueTypeError",
    "__version__",
    "connect",
    "decode",
    "decode_profile_buffer",
]
