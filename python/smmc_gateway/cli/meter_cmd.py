"""`smmc-gateway meter CONNECTION … SUBCOMMAND`: the technician's tool.

Arguments are checked before connecting (a typo costs no 9600-baud sign-on);
then one session is opened, one job runs, and the session is released. Session
errors become exit 1 with the meter's reason and a hint; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.status import Status

from smmc_gateway import _core, console, runtime
from smmc_gateway.cli import meter_args, meter_jobs, meter_session
from smmc_gateway.cli.common import EXIT_OK, OperationFailed, UsageError, print_json
from smmc_gateway.cli.trace import TracingTransport
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    DataAccessError,
    LinkLost,
    MeterTimeout,
    SecurityFailure,
    SessionError,
    TransportError,
)
from smmc_gateway.ops.logging import configure_logging


@dataclass
class Output:
    """Where results go: typed JSON or human tables on stdout, status on stderr."""

    json: bool
    out: Console
    err: Console
    spinner: Status | None = None

    def data(self, value: Any) -> None:
        self.stop_spinner()
        print_json(value)

    def print(self, *objects: Any) -> None:
        """Human output on stdout (the spinner stops first, so nothing interleaves)."""
        self.stop_spinner()
        self.out.print(*objects)

    def stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None

    def status(self, text: str) -> None:
        if not self.json:
            self.err.print(f"[dim]{text}[/dim]")


Job = Callable[[Any, Output], Awaitable[int]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "meter",
        help="one meter, one job: get/set/action, objects, clock, disconnect, profile, firmware…",
        description=(
            "The technician's tool. Give the connection, then the subcommand, e.g. "
            "'smmc-gateway meter --tcp 192.0.2.7:4059 get 8/0.0.1.0.0.255/2'. Secrets may come "
            "from SMMC_PASSWORD, SMMC_EK, SMMC_AK or --secrets-file and are never printed. "
            "Exit status: 0 ok, 1 the meter said no or did not answer, 2 usage error."
        ),
    )
    meter_args.add_connection_options(p)
    p.add_argument(
        "--json", action="store_true", default=False, help="typed JSON on stdout, for scripts"
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="show every APDU exchanged, decoded, on stderr (keys are never used for it)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log the session on stderr (-v info, -vv debug)",
    )
    meter_args.add_subcommands(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    job = meter_jobs.prepare(args)  # every argument checked before connecting
    # Logs go to stderr (stdout is for results; --json must stay parseable), secrets redacted.
    level = "debug" if args.verbose > 1 else "info" if args.verbose else "warning"
    configure_logging(level, "console")
    transport, settings, target = meter_session.build(args)
    if args.trace:
        transport = TracingTransport(transport)
    out = Output(bool(args.json), console.make_console(), console.make_console(sys.stderr))
    label = "image transfer" if args.action == "firmware" else f"{args.action}"
    return runtime.run(_session(job, transport, settings, target, out, label))


async def _session(
    job: Job,
    transport: Any,
    settings: Any,
    target: meter_session.Target,
    out: Output,
    label: str,
) -> int:
    from smmc_gateway.dlms.session import ClientSession

    started = time.monotonic()
    who = f"{target.description}, client {target.client}, {_level_text(target.level)}"
    session = ClientSession(transport, settings)
    try:
        with out.err.status(f"connecting to {who}…", spinner="dots") if _live(out) else _null():
            await session.open()
        out.status(f"associated: {who} ({time.monotonic() - started:.1f} s)")
        try:
            if label == "image transfer" or not _live(out):
                return await job(session, out)  # the transfer shows its own progress bar
            out.spinner = out.err.status(f"{label}…", spinner="dots")
            out.spinner.start()
            try:
                return await job(session, out)
            finally:
                out.stop_spinner()
        finally:
            await _close(session)
    except AssociationRefused as exc:
        raise OperationFailed(f"{target.description}: {exc}{_refusal_hint(exc, target)}") from None
    except DataAccessError as exc:
        raise OperationFailed(f"the meter refused {exc}{_access_hint(exc, target)}") from None
    except MeterTimeout as exc:
        raise OperationFailed(
            f"{target.description}: {exc}; check the cable/address, --server, --logical-device "
            "or raise --timeout"
        ) from None
    except TransportError as exc:
        raise OperationFailed(f"{exc}{_open_hint(exc, target)}") from None
    except LinkLost as exc:
        text = str(exc)
        hint = (
            "; the meter stopped answering: check the cable/head, --server and "
            "--logical-device, or raise --timeout"
            if "no response" in text
            else ""
        )
        raise OperationFailed(f"{text}{hint}") from None
    except SecurityFailure as exc:
        raise OperationFailed(
            f"{target.description}: security check failed: {exc} (wrong keys or system title?)"
        ) from None
    except SessionError as exc:
        raise OperationFailed(f"{target.description}: {exc}") from None
    except _core.DlmsError as exc:  # bytes from the meter the core could not decode
        raise OperationFailed(
            f"{target.description}: the meter sent something that does not decode: {exc} "
            "(--trace shows the exchange)"
        ) from None


async def _close(session: Any) -> None:
    # The job's result stands; a failed release is not the technician's problem.
    # A malformed RLRE from the meter may surface as a core DlmsError: same treatment.
    with contextlib.suppress(SessionError, _core.DlmsError):
        await session.close()


def _live(out: Output) -> bool:
    return not out.json and out.err.is_terminal


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _open_hint(exc: TransportError, target: meter_session.Target) -> str:
    text = str(exc)
    if target.kind == "tcp":
        return "; is the meter (or converter) listening there?"
    if "No such file" in text or "could not open port" in text:
        return "; check the device name (ls /dev/tty*) and that no other program holds it"
    return ""


def _level_text(level: str) -> str:
    return {"none": "no security", "lls": "LLS", "hls-gmac": "HLS-GMAC"}.get(level, level)


def _refusal_hint(exc: AssociationRefused, target: meter_session.Target) -> str:
    diag = exc.diagnostic
    if target.level == "hls-gmac" and "initiate" in str(exc):
        return (
            "; if the keys are right, our invocation counter may be behind the meter's: "
            "use the --ic-store of earlier runs against this meter"
        )
    if "authentication" in diag:
        return f"; check the password or keys for client {target.client}"
    if "application-context" in diag:
        return "; the meter wants a different context: try --auth hls-gmac with keys, or none"
    if "calling-AP-title" in diag or "ap-title" in diag.lower():
        return "; check --system-title"
    return ""


def _access_hint(exc: DataAccessError, target: meter_session.Target) -> str:
    if exc.result == "read-write-denied":
        if target.client == 16:
            return (
                " (the public client 16 may only read a few objects: try --client 1 with a "
                "password or keys)"
            )
        return " (this association has no such access right; see 'objects')"
    if exc.result == "object-undefined":
        return " (the meter has no such object or member; see 'objects')"
    if exc.result == "type-unmatched":
        return " (the value's type is not what the meter expects; 'get --json' shows it)"
    return ""


__all__ = ["EXIT_OK", "UsageError", "register"]
