"""Helpers for the provisioning, reload and key escrow tests (issue 11 items 5, 6, 10)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.usecases.key_bundle import ClearKeys, wrap_bundle
from uplink_helpers import validate

from tests.support_sim import RunningFleet

GW_KEK = bytes(range(0x40, 0x50))
CENTRAL_KEK = bytes(range(0x70, 0x90))  # AES-256 KEK
CENTRAL_KEK_ID = "central-2026"


def private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def meters_of(sim: RunningFleet) -> list[dict[str, Any]]:
    return [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]


def lab_with_keks(
    sim: RunningFleet,
    tmp: Path,
    broker: Broker,
    gw: str,
    file_meters: list[int],
    *,
    enable: tuple[str, ...] = ("provisioning", "keyEscrow"),
    escrow: bool = True,
    **kw: Any,
) -> Path:
    """A lab configuration whose files define ``file_meters`` (indexes into the fleet),
    with the gateway's KEK and (``escrow``) the central KEK."""
    meters = meters_of(sim)
    d = tmp / "gw"
    d.mkdir(parents=True, exist_ok=True)
    private(d / "gateway-kek.hex", GW_KEK.hex() + "\n")
    private(d / "central-kek.hex", "# the central key store's KEK\n" + CENTRAL_KEK.hex() + "\n")
    extra = kw.pop("extra", "")
    if escrow:
        extra += f'\n[escrow]\nkek_file = "central-kek.hex"\nkek_id = "{CENTRAL_KEK_ID}"\n'
    path = write_lab_config(
        d,
        [meters[i] for i in file_meters],
        broker=(broker.host, broker.port),
        gateway_id=gw,
        enable=enable,
        extra=extra,
        schedules='load_profile_every = "60s"\nload_profile_jitter = "2s"',
        **kw,
    )
    text = path.read_text().replace(
        "[gateway]\n", '[gateway]\nkey_encryption_key_file = "gateway-kek.hex"\n', 1
    )
    path.write_text(text)
    return path


def item(
    sim: RunningFleet,
    i: int,
    *,
    kek: bytes = GW_KEK,
    port: int | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    """An EndDeviceConfig create item for simulated meter ``i`` (keys wrapped with ``kek``)."""
    info = sim.info[i]
    keys = ClearKeys(
        ek=bytes.fromhex(info["ek"]),
        ak=bytes.fromhex(info["ak"]),
        system_title=bytes.fromhex(info["system_title"]),
    )
    out: dict[str, Any] = {
        "mRID": info["meter_id"],
        "model": "default",
        "connection": {
            "kind": "tcp",
            "host": "127.0.0.1",
            "port": port or sim.ports[i],
            "framing": "wrapper",
        },
        "addresses": {"client": 1, "server_logical": 1},
        "security": {"level": "hls-gmac", "keys": wrap_bundle(keys, kek, "gw-kek")},
    }
    if groups is not None:
        out["groups"] = groups
    return out


def registries(col: Collector, gw: str) -> list[dict[str, Any]]:
    out = []
    for m in col.messages:
        if str(m.topic) == f"smmc/v1/{gw}/registry" and m.payload:
            doc = json.loads(m.payload)  # type: ignore[arg-type]
            validate(doc, "envelope")
            validate(doc["payload"], "gateway-registry")
            out.append(doc["payload"])
    return out


async def registry_where(col: Collector, gw: str, pred: Any, within: float = 30) -> dict[str, Any]:
    await col.wait(lambda ms: any(pred(r) for r in registries(col, gw)), within)
    return [r for r in registries(col, gw) if pred(r)][-1]


def served(reg: dict[str, Any]) -> dict[str, str]:
    return {d["mRID"]: d["origin"] for d in reg["EndDevices"]}
