"""Shared pieces of the CLI: exit codes, the two error kinds, output redaction.

Exit codes (CLI.md): 0 ok; 1 the meter or the bytes said no (the operation
failed, or `decode` was given bytes that are not a valid frame/APDU); 2 usage or
input error, with a message saying what was wrong and what is expected.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments or input: exit 2. The message says what was wrong and what is expected."""


class OperationFailed(Exception):
    """The meter said no or the operation failed: exit 1, with the meter's reason."""


class Redactor:
    """Replaces every known secret (in every spelling we know) by ``***`` in text."""

    def __init__(self) -> None:
        self._needles: set[str] = set()

    def add_text(self, secret: str) -> None:
        if len(secret) >= 3:
            self._needles.add(secret)

    def add_bytes(self, secret: bytes) -> None:
        if len(secret) < 2:
            return
        h = secret.hex()
        self._needles.update({h, h.upper()})
        try:
            text = secret.decode()
        except UnicodeDecodeError:
            return
        if len(text) >= 3:
            self._needles.add(text)

    def __call__(self, text: str) -> str:
        for needle in sorted(self._needles, key=len, reverse=True):
            text = text.replace(needle, "***")
        return text

    def scrub(self, value: Any) -> Any:
        """Redact inside a JSON-able structure (strings only)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


REDACT = Redactor()
"""The process-wide redactor: secrets are registered as soon as they are read."""


def print_json(value: Any, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(REDACT(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)))
    out.write("\n")
    out.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def error(message: str, hints: Iterable[str] = ()) -> None:
    """An error line on stderr, secrets redacted."""
    sys.stderr.write(REDACT(f"smmc-gateway: error: {message}\n"))
    for hint in hints:
        sys.stderr.write(REDACT(f"  {hint}\n"))
    sys.stderr.flush()
