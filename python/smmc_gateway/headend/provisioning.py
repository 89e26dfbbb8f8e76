"""Meters provisioned over MQTT (issue 11 item 5): validated like the TOML, kept in the
fleet database, keys only wrapped.

An ``EndDeviceConfig`` create/change item describes a meter with the keys of a
``[[meters]]`` table (``docs/configuration.md``), ``mRID`` for ``id``::

    {"mRID": "m-0001", "model": "default",
     "connection": {"kind": "tcp", "host": "10.1.2.3", "port": 4059, "framing": "wrapper"},
     "addresses": {"client": 1, "server_logical": 1},
     "security": {"level": "hls-gmac", "keys": {"ek": "<wrapped>", "ak": "<wrapped>",
                                                "masterKey": "<wrapped>",
                                                "systemTitle": "4d4d4d0000bc614e"}},
     "groups": ["feeder-7"]}

It is turned into the table a TOML entry would be and checked by the same
:func:`~smmc_gateway.ops.config_meters.meter_entry` (same rules, same messages, paths
named from ``payload.EndDevices[i]``), against the running configuration's models and
buses. ``connection.kind`` is ``tcp`` or ``serial`` (the optical port is the technician's).
``security.keys`` is a key bundle (:mod:`~smmc_gateway.usecases.key_bundle`) wrapped
with the gateway's KEK (``[gateway] key_encryption_key_file``): keys never come in clear,
and a key that does not unwrap refuses the request.

Storage: table ``provisioned_meter`` of ``fleet.sqlite`` (0600, in the 0700 state
directory): the item without its keys (JSON) and the bundle *as received*, still
wrapped with the gateway's KEK, so the database never holds a clear key; the keys are
unwrapped in memory when the meter is built (at start, and when it is provisioned).

Precedence (one owner per meter): a meter defined in the configuration files is the
files' — EndDeviceConfig create of its id is refused (``AlreadyExists``), change and
delete are refused (``NotProvisioned``: change it in the files and reload). The meters
provisioned over MQTT are the database's. Should the files later define an id the
database also holds, the files win: the provisioned entry is kept but not used (logged
``provisioned_meter_shadowed``) until the files drop that id again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_meters import KeyStore, MeterContext, meter_entry
from smmc_gateway.ops.config_model import MeterConfig, MeterKeys, Secret, SerialConnection
from smmc_gateway.ops.config_values import Problems
from smmc_gateway.uplink.store import Store
from smmc_gateway.usecases.key_bundle import BundleError, unwrap_bundle

# Table provisioned_meter: created by the migrations of smmc_gateway.headend.persistence (the
# fleet database is migrated when it is opened).
ITEM_KEYS = ("mRID", "model", "connection", "addresses", "security", "groups")
SECURITY_KEYS = ("level", "keys")
SOURCE = "EndDeviceConfig (MQTT)"
_KEYS_DIR = Path("/@provisioned")  # a name only: keys are given to the validator in memory


@dataclass(frozen=True)
class Provisioned:
    """One stored provisioned meter: its item (no keys) and its wrapped key bundle."""

    meter_id: str
    entry: Mapping[str, Any]
    keys: Mapping[str, Any] | None
    created: float
    changed: float


@dataclass(frozen=True)
class Context:
    """What a provisioned meter is checked against: the running configuration."""

    base: Path
    models: frozenset[str]
    buses: frozenset[str]
    kek: bytes | None


def merged(old: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """A change item over the stored one: each top-level field given replaces that
    field; ``security`` without ``keys`` keeps the stored keys (a level change alone)."""
    out = {**old, **change}
    if (
        "security" in change
        and isinstance(change["security"], Mapping)
        and "keys" not in change["security"]
        and isinstance(old.get("security"), Mapping)
        and "keys" in old["security"]
    ):
        out["security"] = {**change["security"], "keys": old["security"]["keys"]}
    return out


def build(item: Any, where: str, ctx: Context, probs: Problems) -> MeterConfig | None:
    """The MeterConfig of an item (with its ``security.keys`` still wrapped), or None with
    every problem named in ``probs`` (paths from ``where``)."""
    if not isinstance(item, Mapping):
        probs.add(where, f"{v.show(item)} is not an object")
        return None
    known = len(probs.items)
    v.check_keys(dict(item), where, ITEM_KEYS, probs)
    table: dict[str, Any] = {k: item[k] for k in ITEM_KEYS if k in item and k != "mRID"}
    if "mRID" not in item:
        probs.add(v.join(where, "mRID"), "is required")
    else:
        table["id"] = item["mRID"]
    conn = item.get("connection")
    if isinstance(conn, Mapping) and conn.get("kind") == "optical":
        probs.add(
            v.join(v.join(where, "connection"), "kind"),
            '"optical" is the technician\'s port, not provisioned: tcp or serial',
        )
        table["connection"] = {"kind": "tcp"}
    sp = v.join(where, "security")
    sec = item.get("security", {"level": "none"})
    keys_store = KeyStore()
    if not isinstance(sec, Mapping):
        probs.add(sp, f"{v.show(sec)} is not an object {{level, keys}}")
        sec = {"level": "none"}
    v.check_keys(dict(sec), sp, SECURITY_KEYS, probs)
    level = sec.get("level", "none")
    table["security"] = {"level": level}
    raw_id = item.get("mRID")
    meter_id = raw_id if isinstance(raw_id, str) else ""
    if level != "none" and level in ("lls", "hls-gmac"):
        if "keys" not in sec:
            probs.add(
                v.join(sp, "keys"),
                f"is required with level {level}: the meter's keys "
                "wrapped (RFC 3394) with this gateway's key-encryption key",
            )
        elif ctx.kek is None:
            probs.add(
                v.join(sp, "keys"),
                "this gateway has no key-encryption key "
                "([gateway] key_encryption_key_file): it cannot take provisioned keys",
            )
        else:
            try:
                clear = unwrap_bundle(sec["keys"], ctx.kek, v.join(sp, "keys"))
            except BundleError as exc:
                probs.add(
                    v.join(sp, "keys"),
                    str(exc).removeprefix(v.join(sp, "keys")).lstrip(".: ") or "cannot be used",
                )
            else:

                def secret(raw: bytes | None) -> Secret | None:
                    return Secret(raw) if raw is not None else None

                path = _KEYS_DIR / (meter_id or "meter")
                keys_store.files[path] = {
                    meter_id: MeterKeys(
                        key_id=meter_id,
                        password=secret(clear.password),
                        ek=secret(clear.ek),
                        ak=secret(clear.ak),
                        master_key=secret(clear.master_key),
                        system_title=clear.system_title,
                    )
                }
                table["security"] = {"level": level, "key_id": meter_id, "key_file": str(path)}
    inner = Problems()
    ctx_meters = MeterContext(ctx.base, None, set(ctx.models), set(ctx.buses), keys_store)
    meter = meter_entry(table, where, SOURCE, ctx_meters, inner)
    for p in inner.items:
        if p.where.startswith(v.join(sp, "key_")):
            continue  # the synthetic key file: its problems are the bundle's, named above
        place = v.join(where, "mRID") if p.where == v.join(where, "id") else p.where
        probs.add(place, p.message)
    if len(probs.items) > known:
        return None
    return meter


def check_fleet(meters: Iterable[MeterConfig], probs: Problems) -> None:
    """Unique ids; on each bus, unique physical addresses (as the configuration checks)."""
    seen: dict[str, str] = {}
    on_bus: dict[tuple[str, int | None], str] = {}
    for m in meters:
        if m.id in seen:
            probs.add(m.source, f"meter id {v.show(m.id)} is also used by {seen[m.id]}")
        seen.setdefault(m.id, m.source)
        if isinstance(m.connection, SerialConnection):
            slot = (m.connection.bus, m.addresses.server_physical)
            if slot in on_bus:
                probs.add(
                    m.source,
                    f"meter {m.id}: bus {v.show(m.connection.bus)} physical "
                    f"address {m.addresses.server_physical} is also used by {on_bus[slot]}",
                )
            on_bus.setdefault(slot, f"meter {m.id}")


class ProvisionStore:
    """The ``provisioned_meter`` table of the fleet database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self) -> dict[str, Provisioned]:
        def job(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    "SELECT meter_id, entry, keys, created, changed FROM "
                    "provisioned_meter ORDER BY created, meter_id"
                )
            )

        out: dict[str, Provisioned] = {}
        for meter_id, entry, keys, created, changed in await self.store.submit(job):
            out[str(meter_id)] = Provisioned(
                str(meter_id),
                json.loads(entry),
                json.loads(keys) if keys else None,
                float(created),
                float(changed),
            )
        return out

    async def write(self, put: Iterable[Provisioned], delete: Iterable[str]) -> None:
        """Store ``put`` and drop ``delete`` in one transaction."""
        rows = [
            (
                p.meter_id,
                json.dumps(p.entry, separators=(",", ":")),
                json.dumps(p.keys, separators=(",", ":")) if p.keys is not None else None,
                p.created,
                p.changed,
            )
            for p in put
        ]
        gone = [(m,) for m in delete]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO provisioned_meter (meter_id, entry, keys,"
                " created, changed) VALUES (?,?,?,?,?)",
                rows,
            )
            conn.executemany("DELETE FROM provisioned_meter WHERE meter_id = ?", gone)

        await self.store.submit(job)


def record(
    item: Mapping[str, Any], old: Provisioned | None, now: float | None = None
) -> Provisioned:
    """The stored form of an item: the keys apart, still wrapped."""
    now = time.time() if now is None else now
    entry = {k: val for k, val in item.items() if k != "security"}
    keys = None
    sec = item.get("security")
    if isinstance(sec, Mapping):
        entry["security"] = {k: val for k, val in sec.items() if k != "keys"}
        keys = sec.get("keys")
    return Provisioned(str(item["mRID"]), entry, keys, old.created if old else now, now)


def item_of(p: Provisioned) -> dict[str, Any]:
    """The item again (keys still wrapped), as it was provisioned."""
    item = dict(p.entry)
    if p.keys is not None:
        item["security"] = {**dict(item.get("security", {})), "keys": dict(p.keys)}
    return item
