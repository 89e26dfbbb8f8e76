"""The ``run`` and ``demo`` subcommands (``register(subparsers)`` is called by the main CLI).

smmc-gateway run --config /etc/smmc-gateway/gateway.toml
smmc-gateway demo [--meters N] [--for SECONDS] [--broker HOST:PORT]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from smmc_gateway import runtime


def _run(args: argparse.Namespace) -> int:
    from smmc_gateway.headend.daemon import DaemonOptions, run_daemon
    from smmc_gateway.headend.persistence import SchemaTooNew
    from smmc_gateway.ops.config import ConfigError, load_config
    from smmc_gateway.ops.logging import configure_logging
    from smmc_gateway.usecases.clock import FixedTimeSource

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(
        args.log_level or config.logging.level, args.log_format or config.logging.format
    )
    options = DaemonOptions()
    if args.assume_clock_synchronised:
        options.time_source = FixedTimeSource(synced=True)
    if args.first_read is not None:
        options.first_read_s = args.first_read
    try:
        return runtime.run(run_daemon(config, options))
    except SchemaTooNew as exc:  # a newer gateway's state file: restarting cannot help
        print(f"smmc-gateway run: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    from smmc_gateway.headend.demo import run_demo

    return run_demo(args)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the gateway daemon",
        description="Run the gateway daemon until SIGTERM/SIGINT.",
    )
    p.add_argument("--config", "-c", required=True, metavar="TOML", help="gateway.toml")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", choices=("auto", "json", "console"))
    p.add_argument(
        "--assume-clock-synchronised",
        action="store_true",
        help="treat this host's clock as NTP-synchronised (labs, containers "
        "without timedatectl); without it meter clocks are only set when "
        "timedatectl/adjtimex say the host clock is synchronised",
    )
    p.add_argument(
        "--first-read",
        type=float,
        metavar="S",
        help="history to collect from a meter never read before (default 1 day)",
    )
    p.set_defaults(handler=_run)

    d = subparsers.add_parser(
        "demo",
        help="run a local broker, a simulated fleet and the gateway, with a live view",
        description="Start Mosquitto (or use --broker), a simulated fleet and the gateway; "
        "show readings, events and replies as a central system sees them. "
        "Without a terminal, or with --for, it runs headless and prints a log.",
    )
    d.add_argument("--meters", type=int, default=10, help="simulated meters (default 10)")
    d.add_argument(
        "--for",
        dest="duration",
        type=float,
        metavar="SECONDS",
        help="stop after SECONDS and print a summary (exit 0 only if readings, "
        "events and replies were all seen)",
    )
    d.add_argument(
        "--broker", metavar="HOST:PORT", help="use this broker instead of a local Mosquitto"
    )
    d.add_argument("--keep", action="store_true", help="keep the temporary directory")
    d.set_defaults(handler=_demo)
