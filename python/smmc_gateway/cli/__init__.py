"""The `smmc-gateway` command: parser, dispatch, exit codes.

Subcommands owned here: ``decode`` (the translator) and ``meter`` (the
technician's tool). ``simulate``, ``run`` and ``demo`` are registered by their
own packages (``smmc_gateway.simulator.cli``, ``smmc_gateway.headend.cli``),
imported lazily so a missing or broken one only affects its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import cast

from smmc_gateway.cli import decode_cmd, meter_cmd
from smmc_gateway.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    REDACT,
    OperationFailed,
    UsageError,
    error,
)
from smmc_gateway.runtime import EventLoopChoiceError

# (module, subcommands it registers, who provides it)
_PLUGINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("smmc_gateway.simulator.cli", ("simulate",)),
    ("smmc_gateway.headend.cli", ("run", "demo")),
    ("smmc_gateway.firmware.cli", ("firmware",)),
    ("smmc_gateway.profiles.cli", ("profiles",)),
    ("smmc_gateway.cli.export_cmd", ("export",)),
)


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and our error format (no secret ever echoed)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        error(f"{self.prog}: {message}", [f"see '{self.prog} --help'"])
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="smmc-gateway",
        description="Head-end gateway for smart electricity meters (DLMS/COSEM).",
        epilog="Exit status: 0 ok, 1 the meter (or the bytes) said no, 2 usage or input error.",
    )
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    decode_cmd.register(sub)
    meter_cmd.register(sub)
    for module, names in _PLUGINS:
        _register_plugin(sub, module, names)
    return parser


def _register_plugin(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], module: str, names: tuple[str, ...]
) -> None:
    try:
        mod = importlib.import_module(module)
        register: Callable[..., None] = mod.register
    except (ImportError, AttributeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        for name in names:
            p = sub.add_parser(
                name, help=f"(not available in this build: {module} missing)", add_help=False
            )
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(handler=_unavailable(name, module, reason), accepts_extra=True)
        return
    register(sub)


def _unavailable(name: str, module: str, reason: str) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        raise OperationFailed(
            f"'{name}' is not available in this build: {module} could not be loaded ({reason})"
        )

    return handler


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        try:
            args, extra = parser.parse_known_args(argv)
            if extra and not getattr(args, "accepts_extra", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as exc:  # --help (0) or a usage error (2, already reported)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        # Our subcommands set `handler`; plug-ins may set `func` instead.
        handler: Callable[[argparse.Namespace], int] | None = getattr(
            args, "handler", None
        ) or getattr(args, "func", None)
        if handler is None:
            raise UsageError(f"'{args.command}' has no handler (a plug-in registration bug)")
        return handler(args)
    except (UsageError, EventLoopChoiceError) as exc:
        error(str(exc))
        return EXIT_USAGE
    except OperationFailed as exc:
        error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # the last line of defence: no traceback with secrets
        error(
            f"internal error: {type(exc).__name__}: {exc}",
            ["set SMMC_DEBUG=1 for the traceback (secrets redacted)"],
        )
        if os.environ.get("SMMC_DEBUG"):
            sys.stderr.write(REDACT(traceback.format_exc()))
        return EXIT_FAILED


__all__ = ["build_parser", "main"]
