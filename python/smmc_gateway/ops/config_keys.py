"""Key-encryption keys of the configuration (issue 11 items 5 and 6).

* ``[gateway] key_encryption_key_file``: the gateway's own KEK. Meter keys provisioned
  over MQTT (EndDeviceConfig create/change) arrive wrapped with it (RFC 3394) and are
  kept wrapped with it in the fleet database; only this gateway can unwrap them.
* ``[escrow]`` ``kek_file`` and ``kek_id``: the central key store's KEK. The gateway
  wraps a meter's current keys with it when it publishes them (key escrow), so a central
  key store and the technician's CLI can reach a meter after a remote key change.

A KEK file holds the key as hex (32, 48 or 64 hex digits: AES-128/192/256), spaces,
colons and line breaks ignored, ``#`` comment lines allowed. Like the key file it must
be a regular file readable by the service only (mode 0600), and its value is never put
in a message.
"""

from __future__ import annotations

from pathlib import Path

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_model import EscrowConfig, Secret
from smmc_gateway.ops.config_sections import check_private_file, resolve_path
from smmc_gateway.ops.config_values import Problems, Table, join

KEK_LENGTHS = (16, 24, 32)


def read_kek(path: Path, where: str, probs: Problems, what: str) -> Secret | None:
    """The KEK in ``path`` (see the module doc); a problem named at ``where`` if not."""
    if not check_private_file(path, where, probs, what):
        return None
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        probs.add(where, f"{what} {path} cannot be read: {exc}")
        return None
    digits = "".join(line.split("#", 1)[0] for line in text.splitlines())
    digits = digits.replace(" ", "").replace(":", "").replace("\t", "")
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        probs.add(where, f"{what} {path} is not hex (32, 48 or 64 hex digits; value not shown)")
        return None
    if len(raw) not in KEK_LENGTHS:
        probs.add(
            where,
            f"{what} {path} holds {len(raw)} bytes; an AES key-encryption key "
            "is 16, 24 or 32 bytes (value not shown)",
        )
        return None
    return Secret(raw)


def gateway_kek(t: Table, base: Path, probs: Problems) -> tuple[Path | None, Secret | None]:
    """``[gateway] key_encryption_key_file`` (optional)."""
    raw = v.get_opt_str(t, "key_encryption_key_file", "gateway", probs)
    if raw is None:
        return None, None
    where = join("gateway", "key_encryption_key_file")
    path = resolve_path(raw, base, where, probs)
    if path is None:
        return None, None
    return path, read_kek(path, where, probs, "key-encryption key file")


def escrow_section(t: Table, base: Path, probs: Problems) -> EscrowConfig | None:
    """``[escrow]``: absent, no escrow; present, ``kek_file`` and ``kek_id`` required."""
    p = "escrow"
    if not t:
        return None
    v.check_keys(t, p, ("kek_file", "kek_id", "on_key_change"), probs)
    raw = v.get_opt_str(t, "kek_file", p, probs)
    if raw is None:
        probs.add(
            join(p, "kek_file"),
            "is required: the central key store's key-encryption key (a 0600 file of hex)",
        )
    if "kek_id" not in t:
        probs.add(join(p, "kek_id"), "is required: the central key store's name for that KEK")
        kek_id = None
    else:
        kek_id = v.check_id(t["kek_id"], join(p, "kek_id"), probs, "kek_id")
    on_change = v.get_bool(t, "on_key_change", p, probs, True)
    if raw is None or kek_id is None:
        return None
    path = resolve_path(raw, base, join(p, "kek_file"), probs)
    kek = (
        read_kek(path, join(p, "kek_file"), probs, "escrow key-encryption key file")
        if path is not None
        else None
    )
    if path is None or kek is None:
        return None
    return EscrowConfig(kek=kek, kek_id=kek_id, kek_file=path, on_key_change=on_change)
