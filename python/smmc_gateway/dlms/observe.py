"""What a client session reports about a meter's behaviour beyond its answers: the
quirks taken (tolerant reception, ``_core.QuirkTaken``) and the stale associations
recovered (:mod:`smmc_gateway.dlms.client`).

Each is counted by the session's :class:`SessionObserver` (the daemon's metrics:
``smmc_protocol_quirks_total{meter,quirk}``,
``smmc_association_recoveries_total{meter,cause}``) every time, and logged once per
meter and quirk (or cause) per process: a meter that pads every answer does not fill
the log.
"""

from __future__ import annotations

import threading
from typing import Protocol

import structlog

log = structlog.get_logger("smmc_gateway.dlms")


class SessionObserver(Protocol):
    """Counts what sessions report (``GatewayMetrics`` is one)."""

    def protocol_quirk(self, meter: str, quirk: str) -> None: ...

    def association_recovery(self, meter: str, cause: str) -> None: ...


_logged: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


def _first(kind: str, meter: str, name: str) -> bool:
    with _lock:
        if (kind, meter, name) in _logged:
            return False
        _logged.add((kind, meter, name))
        return True


def quirk_taken(observer: SessionObserver | None, meter: str, quirk: str, detail: str) -> None:
    """A quirk of ``meter`` was taken: counted, logged the first time in this process."""
    if observer is not None:
        observer.protocol_quirk(meter, quirk)
    if _first("quirk", meter, quirk):
        log.warning(
            "protocol_quirk_tolerated",
            meter_id=meter,
            quirk=quirk,
            detail=detail,
            note="logged once per meter and quirk; counted in smmc_protocol_quirks_total",
        )


def association_recovered(
    observer: SessionObserver | None, meter: str, cause: str, detail: str
) -> None:
    """A stale association of ``meter`` was released and the association retried."""
    if observer is not None:
        observer.association_recovery(meter, cause)
    if _first("recovery", meter, cause):
        log.warning(
            "stale_association_recovery",
            meter_id=meter,
            cause=cause,
            detail=detail,
            note="logged once per meter and cause; counted in smmc_association_recoveries_total",
        )


def forget_logged() -> None:
    """Log every (meter, quirk) again (tests)."""
    with _lock:
        _logged.clear()
