"""Key escrow (issue 11 item 6): after a remote key change, and on request, the gateway
publishes the meter's keys wrapped with the central KEK; the technician's CLI reads the
meter with that bundle. Clear keys never leave the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, Collector
from provisioning_helpers import CENTRAL_KEK, CENTRAL_KEK_ID, lab_with_keks, private
from smmc_gateway.usecases.key_bundle import (
    BundleError,
    ClearKeys,
    pad_password,
    unwrap_bundle,
    unwrap_previous,
    wrap_bundle,
)
from test_daemon_e2e import GW, gateway, on, online
from test_provisioning_daemon import ask
from test_usecase_key_change_mqtt import change, with_master_key
from uplink_helpers import validate

from tests.support_sim import FleetSpec, running_fleet

CLI = [sys.executable, "-m", "smmc_gateway.cli"]


def bundles(col: Collector, meter: str) -> list[dict[str, Any]]:
    out = []
    for doc in on(col, f"/meter/{meter}/keys"):
        validate(doc, "envelope")
        validate(doc["payload"], "key-bundle")
        assert doc["header"]["noun"] == "KeyBundle"
        out.extend(doc["payload"]["KeyBundle"])
    return out


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "meter",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode()


async def test_escrow_after_key_change_and_on_request_then_the_cli_reads(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.info[0]["meter_id"]
        creds = sim.fleet.meters[0].meter.credentials
        config = with_master_key(
            sim,
            lab_with_keks(
                sim, tmp_path, mosquitto, GW, [0], enable=("MeterConfig", "keyChange", "keyEscrow")
            ),
            creds.kek,
        )
        async with gateway(config):
            await online(col)
            await ask(
                mosquitto,
                col,
                "kc-1",
                "change",
                json.loads(change("x", meter))["payload"],
                noun="MeterConfig",
            )
            creds = sim.fleet.meters[0].meter.credentials  # the meter's keys now
            await col.wait(
                lambda ms: any(b["reason"] == "keyChange" for b in bundles(col, meter)), 30
            )
            (escrowed,) = [b for b in bundles(col, meter) if b["reason"] == "keyChange"]
            assert escrowed["state"] == "confirmed" and escrowed["kekId"] == CENTRAL_KEK_ID
            keys = unwrap_bundle(escrowed, CENTRAL_KEK)
            assert (keys.ek, keys.ak, keys.master_key) == (creds.guek, creds.gak, creds.kek)

            doc = await ask(
                mosquitto, col, "kb-1", "get", {"EndDevices": [{"mRID": meter}], "keyBundle": True}
            )
            assert doc["reply"]["result"] == "OK", doc
            validate(doc["payload"], "key-bundle")
            (asked,) = doc["payload"]["KeyBundle"]
            assert asked["reason"] == "request" and asked["state"] == "confirmed"
            assert unwrap_bundle(asked, CENTRAL_KEK).ek == creds.guek
            await col.wait(lambda ms: any(b["reason"] == "request" for b in bundles(col, meter)))

            # the technician at the meter, with the escrowed bundle and the central KEK
            env = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(tmp_path / "cli")}
            for name in ("SMMC_PASSWORD", "SMMC_EK", "SMMC_AK"):
                env.pop(name, None)
            message = next(m for m in col.messages if str(m.topic).endswith(f"{meter}/keys"))
            bundle_file = private(tmp_path / "bundle.json", message.payload.decode())  # type: ignore[union-attr]
            kek_file = private(tmp_path / "central.hex", CENTRAL_KEK.hex() + "\n")
            where = ["--tcp", f"127.0.0.1:{sim.ports[0]}"]
            rc, out = await cli(
                env,
                *where,
                "--key-bundle",
                str(bundle_file),
                "--kek-file",
                str(kek_file),
                "get",
                "3/1.0.1.8.0.255/2",
            )
            assert rc == 0 and "Register.value" in out, out
            outputs = [out]
            os.chmod(bundle_file, 0o644)
            rc, out = await cli(
                env,
                *where,
                "--key-bundle",
                str(bundle_file),
                "--kek-file",
                str(kek_file),
                "get",
                "3/1.0.1.8.0.255/2",
            )
            assert rc == 2 and "chmod 600" in out, out
            outputs.append(out)
            os.chmod(bundle_file, 0o600)
            wrong = private(tmp_path / "wrong.hex", "00" * 32)
            rc, out = await cli(
                env,
                *where,
                "--key-bundle",
                str(bundle_file),
                "--kek-file",
                str(wrong),
                "get",
                "3/1.0.1.8.0.255/2",
            )
            assert rc == 2 and "--key-bundle.ek: does not unwrap" in out, out
            outputs.append(out)
            rc, out = await cli(
                env, *where, "--key-bundle", str(bundle_file), "get", "3/1.0.1.8.0.255/2"
            )
            assert rc == 2 and "go together" in out, out
    # no clear key anywhere: not on the broker, not in what the CLI printed
    seen = (
        "".join(
            m.payload.decode()
            for m in col.messages  # type: ignore[union-attr]
            if isinstance(m.payload, bytes)
        ).lower()
        + "".join(outputs).lower()
    )
    for secret in (creds.guek, creds.gak, creds.kek, CENTRAL_KEK):
        assert secret.hex() not in seen


def test_bundle_round_trip_and_refusals() -> None:
    keys = ClearKeys(
        ek=bytes(range(16)),
        ak=bytes(range(16, 32)),
        master_key=bytes(16),
        password=b"lls-pw",
        system_title=bytes(8),
    )
    old = ClearKeys(ek=bytes([9] * 16), ak=bytes([8] * 16))
    doc = wrap_bundle(keys, CENTRAL_KEK, "k1", previous=old, mRID="m1", state="pending")
    back = unwrap_bundle(doc, CENTRAL_KEK)
    assert back == keys and unwrap_previous(doc, CENTRAL_KEK) == old
    assert repr(back) == "ClearKeys(ek, ak, master_key, password: ***)"
    with pytest.raises(BundleError, match=r"keys\.ak: does not unwrap"):
        unwrap_bundle({**doc, "ak": doc["ek"][:-2] + "00"}, CENTRAL_KEK)
    with pytest.raises(BundleError, match=r"keys\.ek: 16 bytes is not an RFC 3394"):
        unwrap_bundle({**doc, "ek": "00" * 16}, CENTRAL_KEK)
    with pytest.raises(BundleError, match="unknown field"):
        unwrap_bundle({**doc, "clearEk": "00"}, CENTRAL_KEK)
    with pytest.raises(BundleError, match="ending in 0x00"):
        pad_password(b"x\x00")
    assert len(pad_password(b"12345678901234567")) == 24
