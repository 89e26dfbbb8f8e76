"""Argument parsing of `smmc-gateway meter`: the connection, the subcommands and
their values (CLASS/OBIS/ATTR references, ISO-8601 times, typed JSON).

Every parse error is a :class:`UsageError` whose message names the argument, what
was given (never for secrets) and what is expected.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from smmc_gateway import _core
from smmc_gateway.cli.common import UsageError
from smmc_gateway.cli.secrets import add_key_options
from smmc_gateway.cosem.obis import Obis, ObisError
from smmc_gateway.cosem.values import TypedValue, as_typed

EVENT_LOGS = {
    "standard": "0.0.99.98.0.255",
    "fraud": "0.0.99.98.1.255",
    "disconnector": "0.0.99.98.2.255",
    "power-quality": "0.0.99.98.4.255",
}
LOAD_PROFILE = "1.0.99.1.0.255"
BILLING_PROFILE = "0.0.98.1.0.255"


@dataclass(frozen=True)
class Reference:
    """CLASS/OBIS/MEMBER, e.g. 8/0.0.1.0.0.255/2 (MEMBER: attribute or method id)."""

    class_id: int
    obis: Obis
    member: int

    def __str__(self) -> str:
        return f"{self.class_id}/{self.obis}/{self.member}"


def parse_reference(text: str, what: str = "attribute") -> Reference:
    example = "8/0.0.1.0.0.255/2" if what == "attribute" else "70/0.0.96.3.10.255/1"
    parts = text.split("/")
    if len(parts) != 3:
        raise UsageError(
            f"{text!r} is not CLASS/OBIS/{what.upper()}; expected three parts like {example}"
        )
    cls_text, obis_text, member_text = parts
    if not cls_text.isdigit() or not 0 <= int(cls_text) <= 65535:
        raise UsageError(f"{text!r}: class {cls_text!r} is not a number 0..65535 (e.g. {example})")
    try:
        obis = Obis.parse(obis_text)
    except ObisError as exc:
        raise UsageError(f"{text!r}: {exc}") from None
    m = member_text.removeprefix("m") if what == "method" else member_text
    if not m.isdigit() or not 1 <= int(m) <= 255:
        raise UsageError(
            f"{text!r}: {what} {member_text!r} is not a number 1..255 (e.g. {example})"
        )
    return Reference(int(cls_text), obis, int(m))


def parse_time(text: str, option: str) -> datetime:
    """ISO-8601; a time without offset is local time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO-8601 time; expected e.g. 2026-11-27T00:00 "
            "or 2026-11-27T00:00:00+01:00"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def parse_typed(text: str, what: str) -> TypedValue:
    """Typed JSON (CLI.md), checked by encoding it; ``@FILE`` reads it from a file."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"{what}: cannot read {text[1:]} ({exc.strerror})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what}: not JSON ({exc.msg} at character {exc.pos + 1}); expected typed JSON "
            """like '{"type": "long-unsigned", "value": 5}'"""
        ) from None
    if isinstance(value, dict) and "value" in value and "type" not in value and "result" in value:
        value = value["value"]  # `get --json` output fed back
    typed_value = as_typed(value)
    if typed_value is None:
        raise UsageError(
            f'{what}: expected a typed value object with "type" and "value", '
            """like '{"type": "long-unsigned", "value": 5}'"""
        )
    try:
        _core.encode(typed_value)
    except (_core.DlmsError, TypeError, ValueError) as exc:
        raise UsageError(f"{what}: not a valid typed value: {exc}") from None
    return typed_value


def _port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 192.0.2.7:4059")
    return host.strip("[]"), int(port)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
    return value


def add_connection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (one of --tcp, --serial, --optical)")
    how = g.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        type=_port,
        help="TCP with the wrapper (IEC 62056-47), or HDLC with --hdlc",
    )
    how.add_argument("--serial", metavar="DEV", help="serial or RS-485 line, HDLC")
    how.add_argument(
        "--optical", metavar="DEV", help="optical head (IEC 62056-21 mode E sign-on, then HDLC)"
    )
    g.add_argument("--hdlc", action="store_true", help="HDLC over TCP instead of the wrapper")
    g.add_argument(
        "--mode-e",
        action="store_true",
        help="with --tcp --hdlc: IEC 62056-21 mode E sign-on before HDLC (a meter port behind "
        "an optical- or serial-to-TCP converter; --baud caps the rate the ACK names)",
    )
    g.add_argument("--baud", type=int, default=9600, metavar="N", help="serial speed (9600)")
    g.add_argument(
        "--client",
        type=int,
        metavar="N",
        help="client SAP (default 16 public without security, 1 management otherwise)",
    )
    g.add_argument(
        "--server",
        type=int,
        metavar="N",
        help="server lower HDLC address (physical device, RS-485 multi-drop)",
    )
    g.add_argument(
        "--logical-device",
        type=int,
        default=1,
        metavar="N",
        help="server logical device (default 1, management)",
    )
    g.add_argument(
        "--auth",
        choices=("none", "lls", "hls-gmac"),
        default=None,
        help="authentication (default: none; lls with a password; hls-gmac with keys)",
    )
    g.add_argument(
        "--referencing",
        choices=("ln", "sn", "auto"),
        default="auto",
        help="logical names (GET/SET/ACTION), short names (Read/Write; CLASS/OBIS/ATTR "
        "resolved through the meter's object list) or auto (default: LN, SN when the "
        "meter refuses the LN context)",
    )
    g.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="seconds to wait for each answer (10)",
    )
    g.add_argument(
        "--strict",
        action="store_true",
        help="refuse every quirk of the meter (by default harmless ones, such as bytes "
        "after a complete answer, are tolerated and named once in the log)",
    )
    g.add_argument(
        "--ic-store",
        metavar="FILE",
        help="HLS invocation counter store (default under $XDG_STATE_HOME)",
    )
    g.add_argument(
        "--audit-dir",
        metavar="DIR",
        help="audit spool for records of writes (default $SMMC_AUDIT_DIR, else "
        "$XDG_STATE_HOME/smmc-gateway/audit; on a concentrator: the daemon's "
        "state_dir/audit-inbox)",
    )
    add_key_options(p, with_password=True)


def add_output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="typed JSON on stdout, for scripts",
    )


def add_subcommands(meter: argparse.ArgumentParser) -> None:
    sub = meter.add_subparsers(dest="action", required=True, metavar="SUBCOMMAND")

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_output_option(p)
        return p

    p = cmd("get", "read an attribute: CLASS/OBIS/ATTR, e.g. 8/0.0.1.0.0.255/2")
    p.add_argument("ref", metavar="CLASS/OBIS/ATTR")
    p.add_argument("--from", dest="start", metavar="T", help="selective access by range: start")
    p.add_argument("--to", dest="end", metavar="T", help="selective access by range: end")
    p.add_argument(
        "--entries",
        nargs=2,
        type=int,
        metavar=("A", "B"),
        help="selective access by entry: entries A..B (1-based, B 0 = last)",
    )
    p = cmd("set", "write an attribute with a typed JSON value")
    p.add_argument("ref", metavar="CLASS/OBIS/ATTR")
    p.add_argument(
        "value",
        metavar="VALUE",
        help="""typed JSON, e.g. '{"type":"long-unsigned","value":5}', or @FILE""",
    )
    p = cmd("action", "invoke a method, with an optional typed JSON parameter")
    p.add_argument("ref", metavar="CLASS/OBIS/METHOD")
    p.add_argument("param", metavar="PARAM", nargs="?", help="typed JSON or @FILE")
    cmd("objects", "list the objects the association sees (class, OBIS, version, access)")
    p = cmd("clock", "read the clock and its deviation from this machine's clock")
    p.add_argument(
        "--sync",
        action="store_true",
        help="set it from the local clock (shift_time for small deviations)",
    )
    cmd("connect", "reconnect the supply (Disconnect control) and read the state back")
    cmd("disconnect", "disconnect the supply (Disconnect control) and read the state back")
    p = cmd("limit", "read or change the Limiter (0.0.17.0.0.255)")
    p.add_argument("--threshold", type=int, metavar="W", help="normal threshold")
    p.add_argument(
        "--duration",
        type=int,
        metavar="S",
        help="min over-threshold duration in seconds before it trips",
    )
    p.add_argument(
        "--off",
        action="store_true",
        help="never trip: set the normal threshold to its type's maximum",
    )
    p = cmd("events", "read an event log")
    p.add_argument("--log", choices=tuple(EVENT_LOGS), default="standard")
    p.add_argument("--from", dest="start", metavar="T")
    p.add_argument("--to", dest="end", metavar="T")
    p = cmd("profile", "read the load or billing profile")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--load", action="store_true", help="load profile 1.0.99.1.0.255 (default)")
    kind.add_argument("--billing", action="store_true", help="billing profile 0.0.98.1.0.255")
    p.add_argument("--from", dest="start", metavar="T")
    p.add_argument("--to", dest="end", metavar="T")
    p.add_argument("--csv", action="store_true", help="CSV on stdout")
    fw = cmd("firmware", "firmware image transfer")
    fsub = fw.add_subparsers(dest="fw_action", required=True, metavar="push")
    push = fsub.add_parser(
        "push",
        help="transfer, verify and activate a signed image (resumable)",
        description=(
            "Transfer, verify and activate an image. The image must have a signed manifest "
            "(IMAGE.manifest.json, see 'smmc-gateway firmware sign') verified with a trusted "
            "key before anything is sent; trusted keys come from --trusted-key, else "
            "SMMC_FIRMWARE_TRUST (paths separated by ':'), else "
            "$XDG_CONFIG_HOME/smmc-gateway/firmware-trusted-keys/*.pub "
            "(~/.config/smmc-gateway/...). An image that does not verify is refused (exit 2)."
        ),
    )
    add_output_option(push)
    push.add_argument("image", type=Path, metavar="IMAGE")
    push.add_argument(
        "--identifier",
        metavar="TEXT",
        help="image identifier; signed images: the manifest's (a different one is refused); "
        "--unsigned: default the file name without extension",
    )
    push.add_argument(
        "--manifest", metavar="FILE", help="the signed manifest (default IMAGE.manifest.json)"
    )
    push.add_argument(
        "--trusted-key",
        "--trust",
        dest="trusted_key",
        action="append",
        metavar="KEY.pub|DIR",
        help="trusted Ed25519 public key (PEM), or a directory of *.pub; repeatable",
    )
    push.add_argument(
        "--unsigned",
        action="store_true",
        help="push without signature verification, on purpose (the audit record says "
        '"unsigned": true)',
    )
    push.add_argument("--no-activate", action="store_true", help="stop after verification")
