"""structlog set-up for the gateway: JSON lines in the daemon, human output in a terminal.

    configure_logging(level="info", fmt="auto")     # auto: console on a TTY, else JSON
    log = meter_logger("m-0001")                    # every line carries meter_id
    log.info("read_ok", use_case="load_profile")

A processor redacts secrets before anything is rendered: values of keys named like
password / ek / ak / key / secret / token / credential become "[REDACTED]" (nested
dicts and lists too), and `Secret` objects never render. Event names are snake_case.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from smmc_gateway.ops.config_model import Secret

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|pw|ek|ak|kek|key|keys|secret|token|credential|credentials|"
    r"master_key|authorization)($|_)",
    re.IGNORECASE,
)
_NOT_SECRET = frozenset({"key_id", "key_file", "meter_id", "keepalive"})
_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")

Format = Literal["auto", "json", "console"]


def is_secret_key(name: str) -> bool:
    return name not in _NOT_SECRET and _SECRET_KEY.search(name) is not None


def _scrub(value: object, depth: int = 0) -> object:
    if isinstance(value, Secret):
        return REDACTED
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace secret values before rendering."""
    for key in list(event_dict):
        if key == "event":
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def check_event_name(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Mark (not drop) event names that are not snake_case, so they are found and fixed."""
    event = event_dict.get("event")
    if isinstance(event, str) and not _SNAKE.fullmatch(event):
        event_dict["event_name_invalid"] = True
    return event_dict


def _want_console(fmt: Format, stream: TextIO) -> bool:
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return fmt == "console"


class _CurrentStderr:
    """``sys.stderr`` as it is at each write, not as it was at configuration time:
    whoever swaps or closes the stream (a test runner, a daemon re-opening its
    output) never leaves logging writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    level: str = "info", fmt: Format = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog (and route stdlib logging through the same redaction)."""
    out = stream if stream is not None else cast(TextIO, _CurrentStderr())
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        check_event_name,
        redact_secrets,
    ]
    renderer: Processor
    if _want_console(fmt, out):
        # Plain tracebacks: rich's traceback formatter shows local variables, which may
        # hold secrets.
        renderer = structlog.dev.ConsoleRenderer(
            colors=_isatty(out), exception_formatter=structlog.dev.plain_traceback
        )
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                *shared,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def get_logger(**context: Any) -> Any:
    """A bound logger with `context` on every line."""
    return structlog.get_logger().bind(**context)


def meter_logger(meter_id: str, **context: Any) -> Any:
    """A logger for one meter: every line carries `meter_id`."""
    return structlog.get_logger().bind(meter_id=meter_id, **context)


def bind_meter(meter_id: str) -> MutableMapping[str, Any]:
    """Bind meter_id in the current asyncio task's context (for code that logs without a
    bound logger); returns the tokens-free context for inspection."""
    structlog.contextvars.bind_contextvars(meter_id=meter_id)
    return structlog.contextvars.get_contextvars()
