"""``smmc-gateway simulate`` as a process: it lists its meters (--json), serves
them, creates a pty pair on request, refuses bad options with a clear
message, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import serial_asyncio_fast
from smmc_gateway import _core
from smmc_gateway.simulator.events import ALARM_POWER_DOWN, ALARM_POWER_UP

from tests.support_sim import REPO, MiniClient, PushListener, simulator_process

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

DEVICE_ID = (1, "0.0.96.1.0.255", 2)


async def test_tcp_fleet_listing_serving_and_sigterm() -> None:
    args = ["--tcp", "0", "--meters", "2", "--auth", "lls", "--password", "abcdefgh"]
    args += ["--history-days", "0"]
    with simulator_process(args) as sim:
        meters = sim.info["meters"]
        assert [m["index"] for m in meters] == [0, 1]
        assert len({m["port"] for m in meters}) == 2
        assert len({m["serial"] for m in meters}) == 2
        # a secret the operator typed is never echoed back
        assert meters[1]["password"] == "(as given)"
        assert "abcdefgh" not in json.dumps(sim.info)
        client = await MiniClient.tcp(meters[1]["port"], client=1)
        await client.connect()
        assert (await client.associate(mechanism="lls", secret=b"abcdefgh"))["result"] == (
            "accepted"
        )
        serial = await client.get(*DEVICE_ID)
        assert bytes.fromhex(serial["value"]).decode() == meters[1]["serial"]
        await client.close()
        sim.proc.terminate()
        assert sim.proc.wait(10) == 0


async def test_create_pty_serves_hdlc_on_the_printed_device() -> None:
    client_end = str(Path(tempfile.mkdtemp(prefix="smmc-cli-")) / "meter-client")
    args = ["--serial", client_end, "--create-pty", "--baud", "9600", "--history-days", "0"]
    with simulator_process(args) as sim:
        meter = sim.info["meters"][0]
        assert meter["serial_device"] == client_end
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=client_end, baudrate=9600
        )
        client = MiniClient(reader, writer, hdlc=True, server_lower=meter["hdlc_address"])
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        await client.release()
        writer.close()
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tcp", "0", "--ek", "zz"], "--ek 'zz' is not hex"),
        (["--tcp", "0", "--ak", "00"], "--ak must be 16 bytes"),
        (["--tcp", "0", "--drop", "150"], "drop_percent 150.0: allowed 0..100"),
        (["--serial", "/dev/null", "--optical", "--meters", "2"], "--optical serves one meter"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.simulator", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr


async def test_outage_option_pushes_last_gasp_then_power_restored() -> None:
    async with PushListener() as listener:
        args = ["--tcp", "0", "--auth", "none", "--history-days", "0"]
        args += ["--push", f"127.0.0.1:{listener.port}", "--outage-after", "0.2"]
        args += ["--outage-for", "0.5"]
        with simulator_process(args) as sim:
            serial = sim.info["meters"][0]["serial"].encode().hex()
            kinds = []
            for _ in range(2):
                _source, _dest, apdu = await listener.next(15.0)
                note = _core.decode_apdu(apdu)  # auth none: pushes are not ciphered
                assert note["apdu"] == "data-notification"
                body = _core.decode(note["body_raw"])["value"]
                assert body[1]["value"] == serial
                kinds.append(body[2]["value"] & (ALARM_POWER_DOWN | ALARM_POWER_UP))
            assert kinds[0] & ALARM_POWER_DOWN
            assert kinds[1] & ALARM_POWER_UP
            # the scripted outage is over, the simulator is not: the meter answers again
            await asyncio.sleep(0.3)
            assert sim.proc.poll() is None
            client = await MiniClient.tcp(sim.info["meters"][0]["port"], client=16)
            await client.connect()
            assert (await client.associate())["result"] == "accepted"
            await client.close()


def test_busy_port_and_missing_device_are_clear_errors() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, message in (
            (["--tcp", str(port)], f"cannot listen on 127.0.0.1:{port}"),
            (["--serial", "/nonexistent/tty"], "cannot open /nonexistent/tty"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "smmc_gateway.simulator", *args, "--history-days", "0"],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=60,
            )
            assert done.returncode == 1
            assert message in done.stderr
            assert done.stdout == ""  # nothing listed: nothing is served
