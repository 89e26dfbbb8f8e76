"""What the noun handlers share: the invalid-request exception, FAILED replies, error text.

A handler raises :class:`Invalid` (every problem named with its JSON path) or
:class:`~smmc_gateway.headend.request_limits.LimitExceeded` before any meter is touched;
:class:`~smmc_gateway.headend.dispatcher.Dispatcher` turns them into the FAILED reply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.request_limits import target_meters
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.usecases.connect import SwitchNotConfirmed
from smmc_gateway.usecases.limiter import LimiterNotConfirmed

METER_ERRORS = (SessionError, OSError, TimeoutError, SwitchNotConfirmed, LimiterNotConfirmed)
"""What a meter operation may raise that fails that meter only (the others go on)."""


class Invalid(Exception):
    """The request payload is invalid; ``problems`` name path and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def control_items(
    items: Sequence[Any], problems: list[str]
) -> Iterator[tuple[int, str, dict[str, Any], Any]]:
    """(index, JSON path, item, EndDeviceControlType.ref) of each EndDeviceControl item
    that is an object; the others are named in ``problems``."""
    for i, item in enumerate(items):
        where = f"payload.EndDeviceControl[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        ctype = item.get("EndDeviceControlType")
        yield i, where, item, ctype.get("ref") if isinstance(ctype, dict) else None


def failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class NounHandler:
    """Base of the handlers of the dispatcher's table: the head-end and the meter targets."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    def _meters(
        self,
        item: dict[str, Any],
        where: str,
        problems: list[str],
        groups: bool = False,
        key: str = "EndDevices",
        refused: str = "",
    ) -> list[str]:
        return target_meters(
            self.headend.fleet,
            item,
            where,
            problems,
            key=key,
            groups=groups,
            groups_refused=refused,
        )
