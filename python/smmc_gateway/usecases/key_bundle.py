"""Wrapped key bundles: a meter's keys as they may leave or enter the gateway (issue 11).

Clear keys never leave the gateway, and keys provisioned over MQTT never arrive in
clear. Both directions use one shape, every key wrapped (RFC 3394 AES key wrap,
``_core.aes_key_wrap``) with a key-encryption key (KEK) named by ``kekId``::

    {"mRID": "m-0001", "kekId": "central-2026", "wrap": "rfc3394",
     "ek": "<hex, 24 bytes>", "ak": "<hex>", "masterKey": "<hex>", "password": "<hex>",
     "systemTitle": "4d4d4d0000bc614e",
     "state": "confirmed", "previous": {"ek": "<hex>", "ak": "<hex>"}}

* ``ek``/``ak``: the global unicast encryption and authentication keys (16 bytes each,
  24 bytes wrapped); ``masterKey`` the meter's KEK for key transfer; ``password`` an LLS
  password, right-padded with 0x00 to a multiple of 8 bytes and at least 16 before
  wrapping (RFC 3394 wraps whole 8-byte blocks; trailing 0x00 are removed after
  unwrapping, so a password cannot end in 0x00). ``systemTitle`` (the meter's, 8 bytes) is
  not secret and travels in clear.
* Out of the gateway (key escrow): wrapped with the central KEK of ``[escrow]``; ``state``
  says where the keys come from (``configured``: the key file or provisioning, no remote
  change; ``confirmed``: the last remote key change, proven by an association;
  ``pending``: a change not settled yet, the meter holds ``ek``/``ak`` or ``previous``).
* Into the gateway (provisioning, ``security.keys`` of EndDeviceConfig create/change):
  wrapped with the gateway's own KEK (``[gateway] key_encryption_key_file``).

A key that does not unwrap (wrong KEK, damaged) is an error naming the field, never
the value. :func:`unwrap_bundle` and :func:`wrap_bundle` are pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smmc_gateway import _core
from smmc_gateway.jsonvalue import JsonObject

WRAP = "rfc3394"
KEY_FIELDS = ("ek", "ak", "masterKey")
SECRET_FIELDS = (*KEY_FIELDS, "password")
MAX_PASSWORD = 64


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the field (never a value)."""


@dataclass(frozen=True)
class ClearKeys:
    """A meter's keys after unwrapping (inside the gateway or the CLI only)."""

    ek: bytes | None = None
    ak: bytes | None = None
    master_key: bytes | None = None
    password: bytes | None = None
    system_title: bytes | None = None

    def __repr__(self) -> str:  # never show secrets
        have = [n for n in ("ek", "ak", "master_key", "password") if getattr(self, n)]
        return f"ClearKeys({', '.join(have)}: ***)"


def pad_password(password: bytes) -> bytes:
    if not password or len(password) > MAX_PASSWORD or password.endswith(b"\x00"):
        raise BundleError(f"password: 1..{MAX_PASSWORD} bytes, not ending in 0x00")
    size = max(16, -(-len(password) // 8) * 8)
    return password.ljust(size, b"\x00")


def _hex(doc: Mapping[str, Any], name: str, where: str) -> bytes | None:
    raw = doc.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BundleError(f"{where}.{name}: not a hex string")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise BundleError(f"{where}.{name}: not valid hex (value not shown)") from None


def _unwrap(kek: bytes, doc: Mapping[str, Any], name: str, where: str) -> bytes | None:
    wrapped = _hex(doc, name, where)
    if wrapped is None:
        return None
    if len(wrapped) < 24 or len(wrapped) % 8:
        raise BundleError(
            f"{where}.{name}: {len(wrapped)} bytes is not an RFC 3394 wrapped "
            "key (a multiple of 8 bytes, at least 24)"
        )
    try:
        clear = _core.aes_key_unwrap(kek, wrapped)
    except (_core.SecurityError, ValueError):
        raise BundleError(
            f"{where}.{name}: does not unwrap with the key-encryption key "
            "(a different KEK, or the value is damaged)"
        ) from None
    if name == "password":
        clear = clear.rstrip(b"\x00")
        if not clear:
            raise BundleError(f"{where}.password: empty after unwrapping")
    elif len(clear) != 16:
        raise BundleError(f"{where}.{name}: unwraps to {len(clear)} bytes; a suite 0 key is 16")
    return clear


def unwrap_bundle(doc: Any, kek: bytes, where: str = "keys") -> ClearKeys:
    """The clear keys of a bundle (see the module doc); BundleError naming the field."""
    if not isinstance(doc, Mapping):
        raise BundleError(f"{where}: not an object of wrapped keys")
    allowed = {
        *SECRET_FIELDS,
        "systemTitle",
        "kekId",
        "wrap",
        "mRID",
        "state",
        "previous",
        "keyId",
        "createdDateTime",
        "reason",
    }
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise BundleError(
            f"{where}: unknown field(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
    if doc.get("wrap", WRAP) != WRAP:
        raise BundleError(f"{where}.wrap: only {WRAP!r} (RFC 3394 AES key wrap)")
    title = _hex(doc, "systemTitle", where)
    if title is not None and len(title) != 8:
        raise BundleError(f"{where}.systemTitle: {len(title)} bytes; a system title is 8")
    return ClearKeys(
        ek=_unwrap(kek, doc, "ek", where),
        ak=_unwrap(kek, doc, "ak", where),
        master_key=_unwrap(kek, doc, "masterKey", where),
        password=_unwrap(kek, doc, "password", where),
        system_title=title,
    )


def unwrap_previous(doc: Mapping[str, Any], kek: bytes, where: str = "keys") -> ClearKeys | None:
    """The ``previous`` key set of a pending bundle (None when there is none)."""
    prev = doc.get("previous")
    if prev is None:
        return None
    if not isinstance(prev, Mapping) or set(prev) - {"ek", "ak"}:
        raise BundleError(f"{where}.previous: an object of wrapped ek and ak")
    return ClearKeys(
        ek=_unwrap(kek, prev, "ek", f"{where}.previous"),
        ak=_unwrap(kek, prev, "ak", f"{where}.previous"),
    )


def wrap_bundle(
    keys: ClearKeys, kek: bytes, kek_id: str, *, previous: ClearKeys | None = None, **extra: Any
) -> JsonObject:
    """A bundle of ``keys`` wrapped with ``kek`` (``extra``: mRID, state, ... as they are)."""
    out: JsonObject = {**extra, "kekId": kek_id, "wrap": WRAP}
    for name, value in (("ek", keys.ek), ("ak", keys.ak), ("masterKey", keys.master_key)):
        if value is not None:
            out[name] = _core.aes_key_wrap(kek, value).hex()
    if keys.password is not None:
        out["password"] = _core.aes_key_wrap(kek, pad_password(keys.password)).hex()
    if keys.system_title is not None:
        out["systemTitle"] = keys.system_title.hex()
    if previous is not None and previous.ek is not None and previous.ak is not None:
        out["previous"] = {
            "ek": _core.aes_key_wrap(kek, previous.ek).hex(),
            "ak": _core.aes_key_wrap(kek, previous.ak).hex(),
        }
    return out
