"""`smmc-gateway decode`: the translator from bytes to a readable tree of layers.

Input is hex on the command line or on stdin (`-`): HDLC frames (several, with
noise between them), wrapper frames, or a bare APDU, plain or ciphered. Exit 0
when every layer decoded, 1 when some layer is not valid (the tree still shows
everything up to the error, with field and byte offset), 2 for bad hex or usage.

The decode is strict. An APDU that only decodes with a quirk of tolerant reception
(bytes after the value, an ACSE field or InitiateResponse length off, …) is still
not valid (exit 1), but its value is shown and the quirk named (the error, a note,
and ``"quirks"`` in the JSON): it is what a session with that quirk allowed takes.
An input that holds no frame or APDU at all (``7ea0``) is an error too.
"""

from __future__ import annotations

import argparse
import sys

from smmc_gateway import console, translate
from smmc_gateway.cli.common import EXIT_FAILED, EXIT_OK, REDACT, UsageError, print_json
from smmc_gateway.cli.secrets import add_key_options, resolve_keys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "decode",
        help="translate an HDLC frame, a wrapper frame or an APDU into a readable tree",
        description=(
            "Show every layer of an HDLC frame (or several), a wrapper frame or a bare "
            "APDU, every field named. Ciphered APDUs are deciphered when --ek and --ak "
            "are given (and --system-title, the sender's, for glo-/ded- APDUs). "
            "Exit status: 0 decoded, 1 not a valid frame/APDU (the error is shown at its "
            "layer, with field and byte offset; an APDU that decodes only with a quirk of "
            "tolerant reception is not valid either, its value is shown and the quirk "
            "named), 2 bad hex or usage."
        ),
    )
    p.add_argument("hex", metavar="HEX|-", help="the bytes in hex (spaces allowed), or - for stdin")
    add_key_options(p, with_password=False)
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.hex == "-" else args.hex
    try:
        data = translate.parse_hex(text)
    except ValueError as exc:
        raise UsageError(f"decode: {exc}") from None
    creds = resolve_keys(args)
    keys = None
    if creds.ek is not None and creds.ak is not None:
        st = creds.system_title
        keys = translate.Keys(creds.ek.reveal(), creds.ak.reveal(), st)
    elif (creds.ek is None) != (creds.ak is None):
        raise UsageError("decode: give both --ek and --ak (or SMMC_EK and SMMC_AK) to decipher")
    layers = translate.translate(data, keys)
    failed = translate.any_error(layers)
    if args.json:
        print_json(
            {
                "input_length": len(data),
                "valid": not failed,
                "quirks": translate.quirks_taken(layers),
                "layers": [layer.to_json() for layer in layers],
            }
        )
    else:
        out = console.make_console()
        with out.capture() as cap:
            out.print(console.layer_tree(layers, f"{len(data)} bytes"))
        sys.stdout.write(REDACT(cap.get()))
    return EXIT_FAILED if failed else EXIT_OK
