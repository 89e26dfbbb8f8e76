"""``smmc-gateway simulate``: serve simulated meters until SIGINT/SIGTERM.

    smmc-gateway simulate --tcp PORT [--hdlc [--optical]] [--shared] [--meters N]
    smmc-gateway simulate --serial DEV [--create-pty] [--optical] [--baud N]

with the security options of ``meter`` (--auth none|lls|hls-gmac,
--password, --ek HEX --ak HEX, --system-title HEX: the credentials the
meters accept; left out, they are derived per meter from --seed and
printed), time (--speed, --time-offset), pushes (--push HOST:PORT) and
faults (--drop PCT, --corrupt PCT, --delay S, --hang-after N,
--reset-after N, --wrong-keys, --outage-after S [--outage-for S]) and the
customer side (--han-devices N [--han-join-after S] [--han-leave-after S],
--opt-out-after S [--opt-out-from ihd|local], --cip-period S).
``register(subparsers)`` adds the subcommand to the main CLI; ``python -m
smmc_gateway.simulator`` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smmc_gateway import runtime
from smmc_gateway.jsonvalue import JsonObject
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.ops.logging import configure_logging
from smmc_gateway.simulator.faults import STALE_MODES, FaultOptions
from smmc_gateway.simulator.fleet import FleetSpec, SimulatedFleet
from smmc_gateway.simulator.serve import (
    close_servers,
    open_line,
    serve_serial,
    start_tcp_per_meter,
    start_tcp_shared,
)


def _hex(length: int, what: str) -> Any:
    def parse(text: str) -> bytes:
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not hex") from None
        if len(data) != length:
            raise argparse.ArgumentTypeError(
                f"{what} must be {length} bytes ({2 * length} hex digits), got {len(data)}"
            )
        return data

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        help="listen on PORT (meter i on PORT+i; 0 = any free port each)",
    )
    where.add_argument("--serial", metavar="DEV", help="serve on a serial device / pty")
    p.add_argument("--host", default="127.0.0.1", help="TCP address to listen on")
    p.add_argument("--hdlc", action="store_true", help="HDLC over TCP instead of the wrapper")
    p.add_argument(
        "--shared",
        action="store_true",
        help="all meters on one HDLC port, chosen by server lower address",
    )
    p.add_argument("--meters", type=int, default=1, help="number of meters (default 1)")
    p.add_argument("--seed", type=int, default=1, help="fleet seed (serials, keys, loads)")
    p.add_argument(
        "--optical",
        action="store_true",
        help="IEC 62056-21 mode E sign-on before HDLC (serial; or TCP with --hdlc: a meter "
        "port behind an optical- or serial-to-TCP converter)",
    )
    p.add_argument(
        "--baud",
        type=int,
        help="line speed to emulate (serial: default 9600; TCP: none unless given, "
        "e.g. a meter behind a serial-to-TCP converter)",
    )
    p.add_argument(
        "--create-pty",
        action="store_true",
        help="with --serial PATH: create a socat pty pair; PATH is the client end",
    )
    p.add_argument(
        "--auth",
        choices=("none", "lls", "hls-gmac"),
        default="hls-gmac",
        help="management client (SAP 1) authentication",
    )
    p.add_argument("--password", help="LLS password (default: derived per meter)")
    p.add_argument("--ek", type=_hex(16, "--ek"), help="global unicast encryption key")
    p.add_argument("--ak", type=_hex(16, "--ak"), help="authentication key")
    p.add_argument(
        "--system-title",
        type=_hex(8, "--system-title"),
        help="system title of meter 0 (others count up)",
    )
    p.add_argument("--push", default="127.0.0.1:4059", metavar="HOST:PORT", help="push destination")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument(
        "--timezone",
        metavar="ZONE",
        help="the meters keep local time of this tz database zone, summer time included "
        "(e.g. America/Santiago); default: UTC, no summer time",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="play this shipped device model (alarm bit map, push layout, event codes, "
        "limiter unit and scaler, FLAG id; docs/models.md); default: the simulator's own",
    )
    p.add_argument(
        "--deviation-not-specified",
        action="store_true",
        help="the meters write 0x8000 (not specified) in the deviation of their date-times",
    )
    p.add_argument(
        "--time-offset",
        type=float,
        default=0.0,
        metavar="S",
        help="simulated time = now + S seconds",
    )
    p.add_argument("--history-days", type=int, default=2, help="load profile history")
    p.add_argument(
        "--gbt",
        action="store_true",
        help="offer general-block-transfer (long answers in GBT blocks when the client agrees)",
    )
    p.add_argument(
        "--referencing",
        choices=("ln", "sn"),
        default="ln",
        help="logical-name (default) or short-name referencing (ReadRequest/WriteRequest, "
        "base names in the Association SN object list)",
    )
    p.add_argument(
        "--drift",
        type=float,
        metavar="PPM",
        help="clock drift of every meter (default: each its own within ±20 ppm)",
    )
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--drop",
        type=float,
        default=0.0,
        metavar="PCT",
        help="drop PCT%% of the frames the meters send",
    )
    faults.add_argument(
        "--corrupt",
        type=float,
        default=0.0,
        metavar="PCT",
        help="flip a byte in PCT%% of the frames the meters send",
    )
    faults.add_argument(
        "--delay", type=float, default=0.0, metavar="S", help="answer S seconds late"
    )
    faults.add_argument(
        "--hang-after", type=int, metavar="N", help="go silent after N received frames"
    )
    faults.add_argument(
        "--reset-after", type=int, metavar="N", help="close a connection after N received frames"
    )
    faults.add_argument(
        "--wrong-keys", action="store_true", help="meters hold other keys than the ones printed"
    )
    faults.add_argument(
        "--outage-after",
        type=float,
        metavar="S",
        help="power outage (last-gasp push) S seconds after start",
    )
    faults.add_argument(
        "--stale-association",
        choices=STALE_MODES,
        metavar="MODE",
        help="the meters keep an association dropped without RLRQ and refuse the next "
        "AARQ: aare-rejected, exception (service-not-allowed) or first-request",
    )
    faults.add_argument(
        "--outage-for",
        type=float,
        default=60.0,
        metavar="S",
        help="outage length before the power-restored push",
    )
    han = p.add_argument_group("HAN devices and the customer (use cases 4 and 8)")
    han.add_argument(
        "--han-devices",
        type=int,
        default=0,
        metavar="N",
        help="M-Bus devices per meter, 0..4 (a display, then gas, water, heat meters; "
        "identities and default keys derived from --seed, printed in the listing)",
    )
    han.add_argument(
        "--han-join-after",
        type=float,
        default=0.0,
        metavar="S",
        help="the HAN devices join the meter's bus S seconds after start (default 0)",
    )
    han.add_argument(
        "--han-leave-after",
        type=float,
        metavar="S",
        help="the HAN devices leave the bus S seconds after start (default: never)",
    )
    han.add_argument(
        "--opt-out-after",
        type=float,
        metavar="S",
        help="the customer opts out of the DR event S seconds after start",
    )
    han.add_argument(
        "--opt-out-from",
        choices=("ihd", "local"),
        default="ihd",
        help="where the customer opts out: the in-home display or the meter's local interface",
    )
    han.add_argument(
        "--cip-period",
        type=float,
        default=10.0,
        metavar="S",
        help="consumer information push period (feeds the display; default 10 s)",
    )
    p.add_argument("--json", action="store_true", help="print the meter list as one JSON line")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="what the meters log on stderr (associations, faults, pushes)",
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``simulate`` to the main CLI's subparsers (handler in ``func``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="serve simulated meters",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def _played_model(name: str | None) -> ModelConfig | None:
    if name is None:
        return None
    from smmc_gateway.models.catalog import shipped_model

    try:
        return shipped_model(name)
    except KeyError as exc:
        raise SystemExit(f"--model: {exc.args[0]}") from None


def spec_from_args(args: argparse.Namespace) -> FleetSpec:
    return FleetSpec(
        meters=args.meters,
        seed=args.seed,
        auth=args.auth,
        password=args.password.encode() if args.password else None,
        ek=args.ek,
        ak=args.ak,
        system_title=args.system_title,
        push_destination=args.push,
        history_days=args.history_days,
        speed=args.speed,
        time_offset_s=args.time_offset,
        timezone=args.timezone,
        deviation_not_specified=args.deviation_not_specified,
        model=_played_model(args.model),
        drift_ppm=args.drift,
        general_block_transfer=args.gbt,
        referencing=args.referencing,
        han_devices=args.han_devices,
        han_join_after_s=args.han_join_after,
        han_leave_after_s=args.han_leave_after,
        opt_out_after_s=args.opt_out_after,
        opt_out_source=args.opt_out_from,
        cip_period_s=args.cip_period,
        baud=args.baud or (9600 if args.serial else None),
        faults=FaultOptions(
            drop_percent=args.drop,
            corrupt_percent=args.corrupt,
            delay_s=args.delay,
            hang_after=args.hang_after,
            reset_after=args.reset_after,
            wrong_keys=args.wrong_keys,
            stale_association=args.stale_association,
            seed=args.seed,
        ),
    )


def run(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
        spec.validate()
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if args.serial and args.meters > 1 and args.optical:
        print("simulate: --optical serves one meter (the optical port)", file=sys.stderr)
        return 2
    if args.tcp is not None and args.optical and (args.shared or not args.hdlc):
        print(
            "simulate: --optical over TCP needs --hdlc (mode E hands the line to HDLC) "
            "and one port per meter (not --shared)",
            file=sys.stderr,
        )
        return 2
    configure_logging(level=args.log_level)
    try:
        return runtime.run(_main(args, spec))
    except runtime.EventLoopChoiceError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


@contextlib.contextmanager
def _pty(client_path: str) -> Any:
    if shutil.which("socat") is None:
        raise SystemExit("simulate: --create-pty needs socat installed")
    tmp = Path(tempfile.mkdtemp(prefix="smmc-sim-"))
    meter_end = tmp / "meter"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={meter_end}", f"pty,raw,echo=0,link={client_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (meter_end.exists() and Path(client_path).exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("simulate: socat could not create the pty pair")
            time.sleep(0.01)
        yield str(meter_end)
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


async def _main(args: argparse.Namespace, spec: FleetSpec) -> int:
    fleet = SimulatedFleet(spec)
    runtime.settle_heap()  # the meters and their histories live as long as the simulator
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [loop.create_task(fleet.run())]
    servers: list[asyncio.Server] = []
    listing = [m.describe() for m in fleet.meters]
    with contextlib.ExitStack() as stack:
        if args.tcp is not None:
            try:
                servers.extend(await _listen(fleet, args))
            except OSError as exc:
                print(f"simulate: cannot listen on {args.host}:{args.tcp}: {exc}", file=sys.stderr)
                await close_servers(servers)
                await fleet.stop()
                tasks[0].cancel()
                return 1
            ports = [int(s.sockets[0].getsockname()[1]) for s in servers]
            for i, entry in enumerate(listing):
                entry["port"] = ports[0] if args.shared else ports[i]
                entry["framing"] = (
                    "optical+hdlc"
                    if args.optical
                    else "hdlc"
                    if args.hdlc or args.shared
                    else "wrapper"
                )
        else:
            device = args.serial
            if args.create_pty:
                device = stack.enter_context(_pty(args.serial))
            for entry in listing:
                entry["serial_device"] = args.serial
                entry["framing"] = "optical+hdlc" if args.optical else "hdlc"
                entry["baud"] = spec.baud
            baud = spec.baud or 9600
            try:
                line = await open_line(device, baud)
            except Exception as exc:
                print(f"simulate: cannot open {device}: {exc}", file=sys.stderr)
                await fleet.stop()
                tasks[0].cancel()
                return 1
            tasks.append(
                loop.create_task(
                    serve_serial(fleet, device, optical=args.optical, baud=baud, line=line)
                )
            )
        if args.outage_after is not None:
            tasks.append(loop.create_task(_outages(fleet, args.outage_after, args.outage_for)))
        _mask_given_secrets(listing, args)
        _print_listing(listing, as_json=args.json)
        done = loop.create_task(stop.wait())
        code = 0
        waiting = {done, *tasks[1:]}
        # Run until asked to stop or a service fails; a task that simply ends (the
        # scripted outage after the power comes back) does not end the simulator.
        while done in waiting and code == 0:
            finished, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not done and task.exception() is not None:
                    print(f"simulate: {task.exception()}", file=sys.stderr)
                    code = 1
        await fleet.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_servers(servers)
    return code


async def _listen(fleet: SimulatedFleet, args: argparse.Namespace) -> list[asyncio.Server]:
    if args.shared:
        return [await start_tcp_shared(fleet, args.tcp, host=args.host)]
    return await start_tcp_per_meter(
        fleet, args.tcp, hdlc=args.hdlc, host=args.host, optical=args.optical
    )


async def _outages(fleet: SimulatedFleet, after: float, length: float) -> None:
    await asyncio.sleep(after)
    for i in range(len(fleet.meters)):
        fleet.power_outage(i)
    await asyncio.sleep(length)
    for i in range(len(fleet.meters)):
        fleet.power_restored(i)


def _mask_given_secrets(listing: list[JsonObject], args: argparse.Namespace) -> None:
    """Secrets the operator typed are never echoed; derived ones are shown so
    a trainee can use them (they are the simulated meters' own test keys)."""
    for key in ("ek", "ak", "password"):
        if getattr(args, key, None):
            for m in listing:
                m[key] = "(as given)"


def _print_listing(listing: list[JsonObject], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"meters": listing}), flush=True)
        return
    for m in listing:
        where = (
            f"tcp {m['port']}" if "port" in m else f"serial {m['serial_device']} @ {m['baud']} baud"
        )
        print(
            f"{m['meter_id']}: {where} ({m['framing']}, HDLC address {m['hdlc_address']}), "
            f"auth {m['auth']}, system title {m['system_title']}, ek {m['ek']}, "
            f"ak {m['ak']}, password {m['password']}",
            flush=True,
        )
        han = m.get("han")
        for d in han if isinstance(han, list) else []:
            if not isinstance(d, dict):
                continue
            print(
                f"  HAN device {d['identification']} ({d['manufacturer']}, type "
                f"0x{d['device_type']:02x}), default key {d['default_key']}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smmc-gateway simulate",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
