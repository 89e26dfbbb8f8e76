"""Validation of [[meters]] entries (from the main file, included files or a CSV file)
and of the key files they reference.

A key file is a separate TOML file, readable by the service only, with one table per
key id:

    [group-a]                       # key_id
    password = "..."                # LLS
    ek = "000102...0f"              # 16 bytes hex
    ak = "..."                      # 16 bytes hex
    master_key = "..."              # 16 bytes hex (KEK)
    system_title = "4d4d4d0000bc614e"  # 8 bytes hex (the meter's)
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_model import (
    Addresses,
    Connection,
    MeterConfig,
    MeterKeys,
    OpticalConnection,
    PushProtection,
    Referencing,
    Secret,
    SecurityLevel,
    SerialConnection,
    TcpConnection,
)
from smmc_gateway.ops.config_sections import check_private_file, resolve_path
from smmc_gateway.ops.config_values import Problems, Table, join

METER_KEYS = ("id", "model", "connection", "addresses", "security", "groups")
KEY_FIELDS = ("password", "ek", "ak", "master_key", "system_title")
_KEY_LENGTHS = {"ek": 16, "ak": 16, "master_key": 16, "system_title": 8}

#: CSV column -> key path in a [[meters]] table.
CSV_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "model": ("model",),
    "kind": ("connection", "kind"),
    "host": ("connection", "host"),
    "port": ("connection", "port"),
    "framing": ("connection", "framing"),
    "mode_e": ("connection", "mode_e"),
    "bus": ("connection", "bus"),
    "device": ("connection", "device"),
    "client": ("addresses", "client"),
    "server_logical": ("addresses", "server_logical"),
    "server_physical": ("addresses", "server_physical"),
    "address_size": ("addresses", "size"),
    "referencing": ("addresses", "referencing"),
    "security": ("security", "level"),
    "key_id": ("security", "key_id"),
    "key_file": ("security", "key_file"),
    "push_protection": ("security", "push_protection"),
    "groups": ("groups",),
}
_CSV_INT = {"port", "client", "server_logical", "server_physical", "address_size"}
_CSV_BOOL = {"mode_e"}


@dataclass(slots=True)
class KeyStore:
    """Key files read so far (each file is read and checked once)."""

    files: dict[Path, dict[str, MeterKeys] | None] = field(default_factory=dict)

    def load(self, path: Path, where: str, probs: Problems) -> dict[str, MeterKeys] | None:
        if path in self.files:
            return self.files[path]
        self.files[path] = None
        if not check_private_file(path, where, probs, "key file"):
            return None
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            probs.add(str(path), f"cannot parse key file: {exc}")
            return None
        sets: dict[str, MeterKeys] = {}
        for key_id, entry in data.items():
            kp = f"{path}: {key_id}"
            et = v.table(entry, kp, probs)
            v.check_keys(et, kp, KEY_FIELDS, probs)
            secrets: dict[str, bytes | None] = {}
            for name in KEY_FIELDS:
                if name not in et:
                    secrets[name] = None
                elif name == "password":
                    pw = et[name]
                    if not isinstance(pw, str) or not pw:
                        probs.add(join(kp, name), "is not a non-empty string (value not shown)")
                    secrets[name] = pw.encode() if isinstance(pw, str) else None
                else:
                    secrets[name] = v.get_hex(et[name], join(kp, name), probs, _KEY_LENGTHS[name])

            def sec(name: str, s: dict[str, bytes | None] = secrets) -> Secret | None:
                raw = s[name]
                return Secret(raw) if raw is not None else None

            sets[key_id] = MeterKeys(
                key_id=key_id,
                password=sec("password"),
                ek=sec("ek"),
                ak=sec("ak"),
                master_key=sec("master_key"),
                system_title=secrets["system_title"],
            )
        self.files[path] = sets
        return sets


@dataclass(slots=True)
class MeterContext:
    """What a meter entry is checked against."""

    base: Path
    default_key_file: Path | None
    models: set[str]
    buses: set[str]
    keys: KeyStore


def _connection(t: Table, p: str, ctx: MeterContext, probs: Problems) -> Connection | None:
    kind = v.get_choice(t, "kind", p, probs, ("tcp", "serial", "optical"), "tcp")
    if kind == "tcp":
        v.check_keys(t, p, ("kind", "host", "port", "framing", "mode_e"), probs)
        framing = v.get_choice(t, "framing", p, probs, ("wrapper", "hdlc"), "wrapper")
        mode_e = t.get("mode_e", False)
        if not isinstance(mode_e, bool):
            probs.add(join(p, "mode_e"), f"{v.show(mode_e)} is not true or false")
            mode_e = False
        if mode_e and framing != "hdlc":
            probs.add(
                join(p, "mode_e"),
                'needs framing = "hdlc" (the IEC 62056-21 mode E '
                "sign-on hands the line to HDLC, never to the wrapper)",
            )
        return TcpConnection(
            host=v.get_str(t, "host", p, probs) or "",
            port=v.get_int(t, "port", p, probs, 4059, 1, 65535),
            framing=cast(Literal["wrapper", "hdlc"], framing),
            mode_e=mode_e,
        )
    if kind == "serial":
        v.check_keys(t, p, ("kind", "bus"), probs)
        bus = v.get_str(t, "bus", p, probs) or ""
        if bus and bus not in ctx.buses:
            hint = v.suggest(bus, ctx.buses)
            known = ", ".join(sorted(ctx.buses)) or "none defined"
            probs.add(join(p, "bus"), f"{v.show(bus)} is not a [[buses]] name{hint} ({known})")
        return SerialConnection(bus=bus)
    v.check_keys(t, p, ("kind", "device"), probs)
    raw = v.get_str(t, "device", p, probs) or ""
    device = resolve_path(raw, ctx.base, join(p, "device"), probs) if raw else None
    return OpticalConnection(device=device or Path("/dev/null"))


def _addresses(t: Table, p: str, conn: Connection | None, probs: Problems) -> Addresses:
    v.check_keys(
        t, p, ("client", "server_logical", "server_physical", "size", "referencing"), probs
    )
    referencing = cast(
        Referencing, v.get_choice(t, "referencing", p, probs, ("ln", "sn", "auto"), "auto")
    )
    wrapper = isinstance(conn, TcpConnection) and conn.framing == "wrapper"
    if wrapper:
        for key in ("server_physical", "size"):
            if key in t:
                probs.add(
                    join(p, key),
                    'is not used with the wrapper (TCP framing "wrapper" '
                    "addresses by client and server_logical only)",
                )
        return Addresses(
            client=v.get_int(t, "client", p, probs, 1, 0, 0xFFFF),
            server_logical=v.get_int(t, "server_logical", p, probs, 1, 0, 0xFFFF),
            server_physical=None,
            address_size=None,
            referencing=referencing,
        )
    client = v.get_int(t, "client", p, probs, 1, 0, 0x7F)
    physical_given = t.get("server_physical") is not None
    size = v.get_int(t, "size", p, probs, 4 if physical_given else 1, 1, 4)
    if size == 3:
        probs.add(join(p, "size"), "3 is not an HDLC server address size (1, 2 or 4)")
        size = 4
    hi = 0x3FFF if size == 4 else 0x7F
    logical = v.get_int(t, "server_logical", p, probs, 1, 0, hi)
    physical = None
    if size == 1 and physical_given:
        probs.add(
            join(p, "server_physical"),
            "a 1-byte HDLC address has no physical part (set size = 2 or 4)",
        )
    elif size > 1:
        if not physical_given:
            probs.add(join(p, "server_physical"), f"is required with a {size}-byte HDLC address")
        physical = v.get_opt_int(t, "server_physical", p, probs, 0, hi)
    if isinstance(conn, SerialConnection) and size == 1 and not physical_given:
        probs.add(
            join(p, "server_physical"),
            "is required on a shared bus (each meter on a bus answers to its own physical address)",
        )
    return Addresses(client, logical, physical, size, referencing)


def meter_entry(t: Table, p: str, source: str, ctx: MeterContext, probs: Problems) -> MeterConfig:
    v.check_keys(t, p, METER_KEYS, probs)
    if "id" not in t:
        probs.add(join(p, "id"), "is required")
        meter_id = ""
    else:
        meter_id = v.check_id(t["id"], join(p, "id"), probs, "meter id") or ""
    model = v.get_str(t, "model", p, probs, "default") or "default"
    if model not in ctx.models:
        hint = v.suggest(model, ctx.models)
        probs.add(
            join(p, "model"),
            f"{v.show(model)} is not a [models.NAME] section "
            f"or a shipped model{hint} (known: {', '.join(sorted(ctx.models))})",
        )
    conn = _connection(
        v.table(t.get("connection"), join(p, "connection"), probs),
        join(p, "connection"),
        ctx,
        probs,
    )
    if "connection" not in t:
        probs.add(join(p, "connection"), "is required")
    addrs = _addresses(
        v.table(t.get("addresses"), join(p, "addresses"), probs), join(p, "addresses"), conn, probs
    )
    sp = join(p, "security")
    st = v.table(t.get("security"), sp, probs)
    v.check_keys(st, sp, ("level", "key_id", "key_file", "push_protection"), probs)
    level = v.get_choice(st, "level", sp, probs, ("none", "lls", "hls-gmac"), "none")
    push_protection = v.get_choice(
        st,
        "push_protection",
        sp,
        probs,
        ("authenticated-encrypted", "encrypted"),
        "authenticated-encrypted",
    )
    if addrs.referencing == "sn" and level == "hls-gmac":
        probs.add(
            join(join(p, "addresses"), "referencing"),
            '"sn" is not supported with '
            'security level "hls-gmac" (short names with none or lls; use "ln")',
        )
    if "push_protection" in st and level != "hls-gmac":
        probs.add(
            join(sp, "push_protection"),
            f'applies to ciphered pushes: needs level "hls-gmac" (level is {v.show(level)})',
        )
    keys = None
    if level != "none":
        key_id = v.get_str(st, "key_id", sp, probs, meter_id) or meter_id
        raw_file = v.get_opt_str(st, "key_file", sp, probs)
        key_file = (
            resolve_path(raw_file, ctx.base, join(sp, "key_file"), probs)
            if raw_file
            else ctx.default_key_file
        )
        if key_file is None:
            probs.add(
                join(sp, "key_file"),
                f"security {level} needs keys: set key_file here or [gateway].key_file",
            )
        else:
            sets = ctx.keys.load(key_file, join(sp, "key_file"), probs)
            if sets is not None:
                keys = sets.get(key_id)
                if keys is None:
                    probs.add(
                        join(sp, "key_id"),
                        f"{v.show(key_id)} is not in key file {key_file}{v.suggest(key_id, sets)}",
                    )
                elif level == "lls" and keys.password is None:
                    probs.add(
                        join(sp, "key_id"),
                        f"key set {v.show(key_id)} has no password (needed for lls)",
                    )
                elif level == "hls-gmac" and (keys.ek is None or keys.ak is None):
                    probs.add(
                        join(sp, "key_id"), f"key set {v.show(key_id)} needs ek and ak for hls-gmac"
                    )
    groups = []
    for i, g in enumerate(v.get_str_list(t, "groups", p, probs)):
        gid = v.check_id(g, join(join(p, "groups"), i), probs, "group name")
        if gid:
            groups.append(gid)
    return MeterConfig(
        id=meter_id,
        model=model,
        connection=conn or TcpConnection("", 4059, "wrapper"),
        addresses=addrs,
        security=cast(SecurityLevel, level),
        keys=keys,
        groups=tuple(groups),
        source=source,
        push_protection=cast(PushProtection, push_protection),
    )


def meters_from_csv(
    path: Path, label: str, ctx: MeterContext, probs: Problems
) -> list[MeterConfig]:
    """Meters from a CSV file with a header row; errors name the file, line and column."""
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        probs.add(label, f"cannot read meters CSV {path}: {exc}")
        return []
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not header:
        probs.add(label, "is empty; expected a header row (id, model, kind, host, port, ...)")
        return []
    bad = False
    for col in header:
        if col not in CSV_COLUMNS:
            probs.add(
                f"{label}:1",
                f"unknown column {v.show(col)}{v.suggest(col, CSV_COLUMNS)}; "
                f"allowed: {', '.join(CSV_COLUMNS)}",
            )
            bad = True
    for col in {c for c in header if header.count(c) > 1}:
        probs.add(f"{label}:1", f"column {v.show(col)} appears more than once")
        bad = True
    if "id" not in header:
        probs.add(f"{label}:1", "the header has no id column")
        bad = True
    if bad:
        return []
    reverse = {".".join(keys): col for col, keys in CSV_COLUMNS.items()}
    meters = []
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{label}:{line_no}"
        if len(row) != len(header):
            probs.add(where, f"has {len(row)} fields, the header has {len(header)}")
            continue
        entry: Table = {}
        for col, cell in zip(header, row, strict=True):
            cell = cell.strip()
            if not cell:
                continue
            value: object = cell
            if col in _CSV_INT:
                value = int(cell) if cell.lstrip("-").isdigit() else cell
            elif col in _CSV_BOOL:
                value = {"true": True, "false": False}.get(cell.lower(), cell)
            elif col == "groups":
                value = [g.strip() for g in cell.split(";") if g.strip()]
            keys = CSV_COLUMNS[col]
            target = entry
            for k in keys[:-1]:
                target = cast(Table, target.setdefault(k, {}))
            target[keys[-1]] = value
        row_probs = Problems()
        meter = meter_entry(entry, "", where, ctx, row_probs)
        for prob in row_probs.items:
            if prob.where in reverse:
                place = f"{where}: column {reverse[prob.where]}"
            else:
                place = f"{where}: {prob.where}" if prob.where else where
            probs.add(place, prob.message)
        meters.append(meter)
    return meters
