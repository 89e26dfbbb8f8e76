"""More scenarios behind the profiles: the daily bulk export (2), the tariff calendar and
demand response (8), a firmware campaign (9), the technician at the optical port (5, 15)
and one observed exception per aspect.

Same lab and style as :mod:`~smmc_gateway.profiles.scenarios`. The technician scenarios
run the real ``smmc-gateway meter --optical`` CLI (a subprocess) against meter A's optical
port (mode E, then HDLC, served by the simulator on a socat pseudo-terminal pair); its
audit spool is then dropped into the gateway's audit inbox, as a technician does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smmc_gateway.profiles.observe import CLIENT, GATEWAY, SCHEDULER, TECHNICIAN, Step
from smmc_gateway.profiles.scenarios import STEP_TIMEOUT_S, Context, _control, _stored_window
from smmc_gateway.simulator.serve import serve_serial


# -- aspect 2: the daily export ---------------------------------------------------------
async def bulk_export(c: Context) -> None:
    c.recorder.add(Step(SCHEDULER, GATEWAY, "daily bulk export due (bulk_export_at)", "internal"))
    await c.gateway.headend.bulk_export()
    await c.wait_for("bulk/readings")


# -- aspect 8: tariff calendar and demand response (utility side) ------------------------
CALENDAR = {
    "calendarName": "TOU-2027",
    "seasons": [{"name": "S1", "start": "01-01", "week": "W1"}],
    "weeks": [{"name": "W1", "days": [1, 1, 1, 1, 1, 2, 2]}],
    "dayProfiles": [
        {
            "id": 1,
            "actions": [
                {"start": "00:00", "tariff": 1},
                {"start": "18:00", "tariff": 2},
                {"start": "23:00", "tariff": 1},
            ],
        },
        {"id": 2, "actions": [{"start": "00:00", "tariff": 1}]},
    ],
    "activation": "now",
}


async def tariff_calendar(c: Context) -> None:
    await c.command(
        "PricingStructureConfig",
        "create",
        "tou-1",
        {"PricingStructure": CALENDAR, "EndDevices": [{"mRID": c.ids[0]}]},
        "time-of-use calendar TOU-2027 to meter A, activate now",
    )
    await c.wait_for("reply/tou-1")


async def demand_response(c: Context) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    window = {
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
    }
    await c.command(
        "EndDeviceControls",
        "create",
        "drp-1",
        _control(
            "demandResponse",
            [c.ids[0]],
            demandLimit={"value": 3, "unit": "kW"},
            scheduledInterval=window,
        ),
        "demandResponse 3 kW for 2 h to meter A (Limiter emergency profile)",
    )
    await c.wait_for("reply/drp-1")


# -- aspect 9: firmware (the campaign itself is scenarios._firmware) ---------------------
async def firmware_unknown_image(c: Context) -> None:
    body = {
        "EndDeviceFirmware": {"imageIdentifier": "NO-SUCH-IMAGE"},
        "EndDevices": [{"mRID": c.ids[0]}],
    }
    await c.command("EndDeviceFirmware", "create", "fw-bad", body, "image NO-SUCH-IMAGE to meter A")
    await c.wait_for("reply/fw-bad")


# -- one exception per aspect: requests the gateway refuses, answered FAILED -------------
async def _refused(
    c: Context, noun: str, verb: str, cid: str, payload: dict[str, Any], what: str
) -> None:
    await c.command(noun, verb, cid, payload, what)
    await c.wait_for(f"reply/{cid}")


async def config_unknown_meter(c: Context) -> None:
    await _refused(
        c,
        "EndDeviceConfig",
        "get",
        "cfg-bad",
        {"EndDevices": [{"mRID": "no-such-meter"}]},
        "discovered configuration of a meter not configured",
    )


async def read_unknown_meter(c: Context) -> None:
    await _refused(
        c,
        "MeterReadings",
        "get",
        "read-bad",
        {"EndDevices": [{"mRID": "no-such-meter"}]},
        "a meter not configured",
    )


async def customer_bad_window(c: Context) -> None:
    window = _stored_window()
    await _refused(
        c,
        "CustomerMeterDataSet",
        "get",
        "cust-bad",
        {
            "EndDevices": [{"mRID": c.ids[0]}],
            "timeSchedule": {"start": window["end"], "end": window["start"]},
        },
        "meter A, a window whose end is before its start",
    )


async def han_remove_unknown(c: Context) -> None:
    await _refused(
        c,
        "MasterDataLinkageConfig",
        "change",
        "han-bad",
        {
            "ConfigurationEvent": {"reason": "hanRemove"},
            "Meter": [{"mRID": c.ids[0]}],
            "EndDevice": [{"mRID": "no-such-device"}],
        },
        "hanRemove of a HAN device meter A does not have",
    )


async def tariff_invalid(c: Context) -> None:
    bad = {**CALENDAR, "weeks": [{"name": "W1", "days": [1, 1, 1, 1, 1, 9, 2]}]}
    await _refused(
        c,
        "PricingStructureConfig",
        "create",
        "tou-bad",
        {"PricingStructure": bad, "EndDevices": [{"mRID": c.ids[0]}]},
        "a calendar whose week names a day profile 9 that is not defined",
    )


async def programming_not_allowed(c: Context) -> None:
    setting = {
        "EndDevices": [{"mRID": c.ids[0]}],
        "class_id": 8,
        "obis": "0.0.1.0.0.255",
        "attribute": 3,
        "value": {"type": "long", "value": -180},
    }
    await _refused(
        c,
        "MeterConfig",
        "change",
        "mc-bad",
        {"Settings": [setting]},
        "set the clock time zone of meter A (not on the allowlist)",
    )


async def report_unknown_group(c: Context) -> None:
    await _refused(
        c,
        "ReadingsReport",
        "get",
        "rep-bad",
        {"EndDeviceGroups": [{"mRID": "no-such-group"}], "timeSchedule": _stored_window()},
        "a group not configured",
    )


async def move_bad_reason(c: Context) -> None:
    await _refused(
        c,
        "MasterDataLinkageConfig",
        "create",
        "move-bad",
        {
            "ConfigurationEvent": {"reason": "moveSideways"},
            "Meter": [{"mRID": c.ids[0]}],
            "CustomerAccount": {"mRID": "account-1"},
        },
        "reason moveSideways for meter A",
    )


async def clock_unsynchronised(c: Context) -> None:
    source = c.gateway_time
    clock = c.fleet.meters[0].meter.clock
    now = c.fleet.now()
    c.recorder.add(Step("Meter A", "Meter A", "its clock drifts 40 s ahead", "local"))
    clock.set_meter_time(now, clock.meter_time(now) + timedelta(seconds=40))
    c.recorder.add(
        Step(GATEWAY, GATEWAY, "the gateway's own clock loses NTP synchronisation", "local")
    )
    source.synced = False
    try:
        await _refused(
            c,
            "EndDeviceControls",
            "create",
            "clock-bad",
            _control("clockSync", [c.ids[0]]),
            "clockSync meter A",
        )
    finally:
        source.synced = True


async def limit_bad_unit(c: Context) -> None:
    await _refused(
        c,
        "EndDeviceControls",
        "create",
        "limit-bad",
        _control("limit", [c.ids[0]], demandLimit={"value": 10, "unit": "MW"}),
        "limit meter A to 10 MW (unit not W or kW)",
    )


async def poll_with_meter_down(c: Context) -> None:
    """Meter B loses its supply; the OMS polls A and B: B is reported unreachable."""
    c.recorder.add(
        Step(
            "Meter B",
            "Meter B",
            "supply lost (unpowered, the meter answers no APDU and drops its connections)",
            "local",
        )
    )
    c.fleet.power_outage(1)
    await c.wait_for(f"meter/{c.ids[1]}/events")
    c.seen.clear()
    await c.command(
        "EndDeviceControls",
        "create",
        "ping-down",
        _control("ping", c.ids, EndDeviceGroups=[{"mRID": "feeder"}]),
        "ping meters A and B (group feeder), meter B unpowered",
    )
    await c.wait_for("reply/ping-down", 60.0)


# -- aspects 5 and 15: the technician at the optical port --------------------------------
@contextlib.asynccontextmanager
async def optical_port(c: Context) -> AsyncIterator[str]:
    """Meter A's optical port on a socat pty pair; yields the technician's end."""
    if shutil.which("socat") is None:
        raise RuntimeError(
            "socat is not installed (apt-get install socat): the optical-port "
            "scenarios need a pseudo-terminal pair"
        )
    where = c.tmp / f"optical-{time.monotonic_ns()}"
    where.mkdir()
    meter_end, cli_end = where / "meter", where / "probe"
    args = ["socat", f"pty,raw,echo=0,link={meter_end}", f"pty,raw,echo=0,link={cli_end}"]
    # stopped in the finally below; it only makes the pty pair, nothing to wait for
    proc = subprocess.Popen(  # noqa: ASYNC220
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(10):
            while not (meter_end.exists() and cli_end.exists()):
                if proc.poll() is not None:
                    raise RuntimeError("socat exited before making the pty pair")
                await asyncio.sleep(0.02)
        served = contextvars.copy_context()
        served.run(CLIENT.set, TECHNICIAN)  # the meter's peer on this port
        server = asyncio.get_running_loop().create_task(
            serve_serial(c.fleet, str(meter_end), optical=True), context=served
        )
        yield str(cli_end)
    finally:
        if server is not None:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await server
        proc.terminate()
        proc.wait(5)


async def technician(c: Context, spool: Path, *args: str) -> tuple[int, str]:
    """Run ``smmc-gateway meter --optical <meter A's port> … ARGS`` as the technician does
    (HLS-GMAC with meter A's keys from the environment, the audit spool ``spool``); the
    exit code and the last line of its error output (the error, when it failed)."""
    creds = c.fleet.meters[0].credentials
    env = {
        **os.environ,
        "SMMC_EK": creds.guek.hex(),
        "SMMC_AK": creds.gak.hex(),
        "XDG_STATE_HOME": str(c.tmp / "technician-state"),
    }
    command = " ".join(("smmc-gateway meter --optical PORT --auth hls-gmac", *args))
    c.recorder.add(Step(TECHNICIAN, TECHNICIAN, f"{command}", "local"))
    async with optical_port(c) as port:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smmc_gateway.cli",
            "meter",
            "--optical",
            port,
            "--auth",
            "hls-gmac",
            "--timeout",
            "10",
            "--audit-dir",
            str(spool),
            "--ic-store",
            str(c.tmp / "technician-ic.json"),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    lines = err.decode(errors="replace").strip().splitlines()
    return proc.returncode or 0, (lines[-1] if lines else "")


async def drop_spool(c: Context, spool: Path) -> None:
    """The technician drops the spool's records into the gateway's audit inbox."""
    inbox = Path(c.gateway.config.gateway.state_dir) / "audit-inbox"
    inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    for f in sorted(spool.glob("*.jsonl")):  # noqa: ASYNC240 (a few small local files)
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            writes = ", ".join(
                f"{w.get('request')} {w.get('class')}/{w.get('obis')}/"
                f"{w.get('attribute', w.get('method'))} {w.get('result')}"
                for w in rec.get("writes", [])
            )
            c.recorder.add(
                Step(
                    TECHNICIAN,
                    GATEWAY,
                    f"audit record ({rec.get('command')}: {writes}) dropped into audit-inbox",
                    "file",
                )
            )
        shutil.move(str(f), inbox / f.name)
    await c.wait_for(f"meter/{c.ids[0]}/events")


async def optical_programming(c: Context) -> None:
    spool = c.tmp / "spool-5"
    code, err = await technician(
        c,
        spool,
        "set",
        "1/0.0.97.98.10.255/2",
        '{"type":"double-long-unsigned","value":4294967295}',
    )
    if code != 0:
        raise RuntimeError(f"the technician's CLI failed ({code}): {err}")
    await drop_spool(c, spool)


async def optical_refused(c: Context) -> None:
    """A write the meter refuses (its device id is read-only): recorded and uplinked."""
    spool = c.tmp / "spool-5b"
    code, err = await technician(
        c, spool, "set", "1/0.0.96.1.0.255/2", '{"type":"octet-string","value":"4142"}'
    )
    c.recorder.add(Step(TECHNICIAN, TECHNICIAN, f"exit code {code}: {err}", "local"))
    await drop_spool(c, spool)


async def local_limit_trip(c: Context) -> None:
    """The technician sets meter A's limiter to 0 W with no delay: the meter trips by
    itself (alarm push, disconnector event log); the next event-log poll reports it."""
    spool = c.tmp / "spool-15"
    code, err = await technician(c, spool, "limit", "--threshold", "0", "--duration", "0")
    if code != 0:
        raise RuntimeError(f"the technician's CLI failed ({code}): {err}")
    await c.wait_for(f"meter/{c.ids[0]}/events")  # the alarm push events
    c.seen.clear()
    await drop_spool(c, spool)
    c.seen.clear()
    c.recorder.add(Step(SCHEDULER, GATEWAY, "event-log poll due for meter A", "internal"))
    await c.gateway.headend.poll_events(c.ids[0])
    await c.wait_for(f"meter/{c.ids[0]}/events")


async def local_limit_refused(c: Context) -> None:
    """A negative threshold: the CLI refuses it before opening the port (nothing written,
    no audit record)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smmc_gateway.cli",
        "meter",
        "--optical",
        "/dev/null",
        "--auth",
        "hls-gmac",
        "limit",
        "--threshold",
        "-5",
        env={**os.environ, "SMMC_EK": "00" * 16, "SMMC_AK": "00" * 16},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT_S)
    c.recorder.add(
        Step(
            TECHNICIAN,
            TECHNICIAN,
            "smmc-gateway meter --optical PORT --auth hls-gmac limit --threshold -5",
            "local",
        )
    )
    first = (err.decode(errors="replace").strip().splitlines() or [""])[0]
    c.recorder.add(Step(TECHNICIAN, TECHNICIAN, f"exit code {proc.returncode}: {first}", "local"))
