"""Broker TLS: ``[broker.tls]`` turns TLS on (system CAs without ``ca``), never a plaintext
CONNECT; a TLS set-up that cannot work stops the start with a message naming the file or
the broker, instead of a retry loop; a later verification failure is retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import Broker, make_tls
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from smmc_gateway.headend.daemon import DaemonOptions, run_daemon, uplink_config
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.uplink import TlsFiles, Uplink, UplinkConfig
from smmc_gateway.uplink.config import TlsSetupError
from smmc_gateway.uplink.reasons import BrokerRefused
from smmc_gateway.usecases.clock import FixedTimeSource
from test_uplink_tls import tls_config
from uplink_helpers import running, wait_until

from tests.support_sim import free_ports


def lab(tmp: Path, port: int, tls_table: str) -> Path:
    dead = free_ports(1)[0]
    meters = [{"meter_id": "m-0000", "port": dead, "auth": "none"}]
    return write_lab_config(
        tmp / "gw", meters, broker=("127.0.0.1", port), gateway_id="gw-0001", extra=tls_table
    )


async def test_the_first_bytes_are_a_tls_client_hello_never_an_mqtt_connect(
    tmp_path: Path,
) -> None:
    """[broker.tls] without ca (the system's CAs): the old daemon dropped TLS then."""
    first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(16)
        if not first.done():
            first.set_result(data)
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = load_config(lab(tmp_path, port, "[broker.tls]\n"))
    assert cfg.broker.tls is not None and cfg.broker.tls.ca is None
    ucfg = dataclasses.replace(uplink_config(cfg), backoff_min_s=0.05)
    assert ucfg.tls is not None
    up = Uplink(ucfg)
    task = asyncio.get_running_loop().create_task(up.run())
    try:
        data = await asyncio.wait_for(first, 10)
    finally:
        await up.stop(0)
        await asyncio.wait_for(task, 10)
        server.close()
    assert data[:2] == b"\x16\x03", f"not a TLS handshake record: {data!r}"
    assert data[0] != 0x10  # MQTT CONNECT


async def test_no_ca_against_a_private_ca_fails_at_once_not_in_a_retry_loop(
    mosquitto_tls: Broker, tmp_path: Path
) -> None:
    assert mosquitto_tls.tls is not None
    cfg = dataclasses.replace(
        tls_config(mosquitto_tls, tmp_path, "gw-0001", "gw-0001"),
        tls=TlsFiles(None, mosquitto_tls.tls.client_cert, mosquitto_tls.tls.client_key),
        backoff_min_s=0.05,
    )
    up = Uplink(cfg)
    with pytest.raises(TlsSetupError) as err:
        await asyncio.wait_for(up.run(), 20)
    text = str(err.value)
    assert f"broker 127.0.0.1:{mosquitto_tls.port}" in text
    assert "certificate fails verification" in text
    assert "self-signed certificate in certificate chain" in text  # OpenSSL's reason
    assert "system's CA certificates" in text
    assert up.counters.connect_failures == 1 and up.counters.connects == 0


async def test_the_daemon_stops_with_exit_2_on_a_broker_it_cannot_verify(
    mosquitto_tls: Broker, tmp_path: Path
) -> None:
    assert mosquitto_tls.tls is not None
    t = mosquitto_tls.tls
    cfg = load_config(
        lab(
            tmp_path,
            mosquitto_tls.port,
            f'[broker.tls]\ncert = "{t.client_cert}"\nkey = "{t.client_key}"\n',
        )
    )
    opts = DaemonOptions(
        time_source=FixedTimeSource(synced=True), stop_deadline_s=1, flush_deadline_s=0.5
    )
    with structlog.testing.capture_logs() as logs:
        code = await asyncio.wait_for(run_daemon(cfg, opts), 60)
    assert code == 2
    (fatal,) = [e for e in logs if e["event"] == "broker_tls_unworkable"]
    assert f"127.0.0.1:{mosquitto_tls.port}" in fatal["error"]
    assert sum(1 for e in logs if e["event"] == "uplink_disconnected") == 1  # no retry loop


async def test_a_ca_file_that_cannot_be_used_stops_the_start_naming_it(
    tmp_path: Path,
) -> None:
    good = make_tls(tmp_path)
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("-----BEGIN NOTHING-----\nhello\n")
    # at load time (smmc-gateway run exits 2 with the problem)
    with pytest.raises(ConfigError) as err:
        load_config(lab(tmp_path / "a", 1883, f'[broker.tls]\nca = "{bad}"\n'))
    assert f"broker.tls.ca: {bad} is not a usable CA bundle: it is not in PEM format" in str(
        err.value
    )
    # the uplink's own check names the file too
    with pytest.raises(TlsSetupError, match=f"broker.tls.ca: {bad} is not a usable CA bundle"):
        TlsFiles(bad).context()
    # a file spoiled after the configuration was read: the daemon stops before it starts
    ca = tmp_path / "ca-copy.pem"
    shutil.copy(good.ca, ca)
    cfg = load_config(lab(tmp_path / "b", 1883, f'[broker.tls]\nca = "{ca}"\n'))
    ca.write_text("garbage\n")
    with structlog.testing.capture_logs() as logs:
        code = await asyncio.wait_for(run_daemon(cfg, DaemonOptions()), 10)
    assert code == 2
    (fatal,) = [e for e in logs if e["event"] == "broker_tls_unworkable"]
    assert str(ca) in fatal["error"]
    assert not (tmp_path / "b" / "gw" / "state" / "fleet.sqlite").exists()  # nothing started


def test_certificate_and_key_problems_are_named(tmp_path: Path) -> None:
    t = make_tls(tmp_path)
    enc = tmp_path / "encrypted.key"
    enc.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    cases: list[tuple[TlsFiles, str]] = [
        (
            TlsFiles(t.ca, t.client_cert, t.server_key),
            f"the certificate {t.client_cert} and the key {t.server_key} do not match",
        ),
        (TlsFiles(t.ca, t.client_cert, enc), f"broker.tls.key: {enc} is encrypted"),
        (TlsFiles(t.ca, junk, t.client_key), f"broker.tls.cert: {junk} is not a usable cert"),
        (TlsFiles(t.ca, t.client_cert, junk), f"broker.tls.key: {junk} is not a usable private"),
        (
            TlsFiles(t.ca, t.client_cert, tmp_path / "absent.key"),
            f"broker.tls.key: {tmp_path / 'absent.key'} cannot be read: No such file",
        ),
        (
            TlsFiles(tmp_path / "absent.pem"),
            f"broker.tls.ca: {tmp_path / 'absent.pem'} is not a usable CA bundle: No such file",
        ),
    ]
    for files, message in cases:
        with pytest.raises(TlsSetupError) as err:
            files.context()
        assert message in str(err.value), (files, str(err.value))
    with pytest.raises(TlsSetupError):  # made at construction: nothing half-started
        Uplink(
            UplinkConfig(
                gateway_id="gw", db_path=tmp_path / "u.db", tls=TlsFiles(t.ca, t.client_cert, enc)
            )
        )
    assert not (tmp_path / "u.db").exists()
    ctx = TlsFiles(t.ca, t.client_cert, t.client_key).context()
    assert ctx.check_hostname and ctx.verify_mode.name == "CERT_REQUIRED"


async def test_a_verification_failure_after_a_good_connection_is_retried(
    mosquitto_tls: Broker, tmp_path: Path
) -> None:
    """The broker comes back with a certificate of another CA (a botched re-deployment):
    retried with backoff, and served again once the broker is fixed."""
    assert mosquitto_tls.tls is not None
    t = mosquitto_tls.tls
    saved = {p: p.read_bytes() for p in (t.server_cert, t.server_key)}
    (tmp_path / "other").mkdir()
    other = make_tls(tmp_path / "other")  # a CA the gateway does not trust
    cfg = dataclasses.replace(
        tls_config(mosquitto_tls, tmp_path, "gw-0001", "gw-0001"),
        backoff_min_s=0.05,
        backoff_max_s=0.2,
    )
    up = Uplink(cfg)
    async with running(up) as task:
        t.server_cert.write_bytes(other.server_cert.read_bytes())
        t.server_key.write_bytes(other.server_key.read_bytes())
        mosquitto_tls.restart()
        await wait_until(lambda: up.counters.connect_failures >= 3, timeout=20)
        assert not task.done() and up.counters.connects == 1
        for p, data in saved.items():
            p.write_bytes(data)
        mosquitto_tls.restart()
        await wait_until(lambda: up.counters.connects == 2, timeout=20)


async def test_a_refused_connect_is_logged_with_its_reason(
    mosquitto_tls: Broker, tmp_path: Path
) -> None:
    pw = tmp_path / "wrong"
    pw.write_text("not-the-password\n")
    cfg: Any = dataclasses.replace(
        tls_config(mosquitto_tls, tmp_path, "gw-0001", "gw-0001"),
        password_file=pw,
        backoff_min_s=0.05,
    )
    up = Uplink(cfg)
    # retrying cannot fix a refused password: the uplink ends (issue 11 item 11)
    with structlog.testing.capture_logs() as logs, pytest.raises(BrokerRefused):
        await asyncio.wait_for(up.run(), 10)
    reasons = [(e["code"], e["reason"]) for e in logs if e["event"] == "uplink_connack"]
    # the CONNACK's v5 reason code by name (repr() of aiomqtt's error showed nothing)
    assert reasons == [("0x87", "Not authorized")], reasons
    assert [e["reason"] for e in logs if e["event"] == "broker_refused"] == ["Not authorized"]
    assert up.counters.connect_failures == 1
