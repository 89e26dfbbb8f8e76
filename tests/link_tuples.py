"""The HDLC link's typed events as ``(kind, value)`` pairs, for tests that compare
whole event sequences (not a test module)."""

from __future__ import annotations

from typing import Any

from smmc_gateway import _core


def parameters(p: _core.LinkParameters) -> dict[str, int]:
    return {
        "max_info_tx": p.max_info_tx,
        "max_info_rx": p.max_info_rx,
        "window_tx": p.window_tx,
        "window_rx": p.window_rx,
    }


def as_tuple(e: _core.LinkEvent) -> tuple[str, Any]:
    """``("connected", {parameters})``, ``("apdu", bytes)``, ``("ui", bytes)``,
    ``("disconnected", None)``, ``("refused" | "link_lost" | "frame_error", reason)``,
    ``("retransmit", attempt)``, ``("apdu_too_long", (received, limit))``."""
    if isinstance(e, _core.LinkConnected):
        return (e.kind, parameters(e.parameters))
    if isinstance(e, _core.LinkApdu):
        return (e.kind, e.apdu)
    if isinstance(e, _core.LinkUi):
        return (e.kind, e.data)
    if isinstance(e, _core.LinkDisconnected):
        return (e.kind, None)
    if isinstance(e, _core.LinkRetransmit):
        return (e.kind, e.attempt)
    if isinstance(e, _core.LinkApduTooLong):
        return (e.kind, (e.received, e.limit))
    return (e.kind, e.reason)


def next_tuple(link: _core.HdlcLink) -> tuple[str, Any] | None:
    e = link.next_event()
    return None if e is None else as_tuple(e)
