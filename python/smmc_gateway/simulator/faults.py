"""Fault injection for simulated meters: what can go wrong on a real link.

:class:`FaultOptions` is the configuration (CLI options map onto it one to
one); :class:`FaultInjector` applies it to one meter's traffic, seeded so a
run can be repeated:

* ``drop_percent`` of the frames the meter sends are lost;
* ``corrupt_percent`` of them get one byte flipped (so the FCS fails, or the
  wrapper header lies);
* ``delay_s`` is added before every answer (a slow meter);
* ``hang_after`` frames received (and answered), the meter goes silent for
  good: its connections stay open, it reads and never answers again;
* ``reset_after``: the Nth frame received on a connection is not answered,
  the meter closes that connection instead (TCP reset / modem hang-up);
* ``wrong_keys``: the meter holds other keys than the ones it is configured
  (and advertised) with, so ciphered associations fail;
* ``stale_association``: the meter keeps an association its client dropped
  without releasing it (connection closed, HDLC link reset) and refuses the
  next AARQ of that client SAP until it gets an RLRQ: ``"aare-rejected"``
  (AARE rejected-permanent, no-reason-given, no user-information),
  ``"exception"`` (an exception-response service-not-allowed to the AARQ) or
  ``"first-request"`` (the AARQ is accepted, the first request is answered
  service-not-allowed). See :class:`StaleAssociations`.

Power outages are not a link fault: see ``SimulatedFleet.power_outage``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, get_args

from smmc_gateway.dlms.tags import TAGS

StaleMode = Literal["aare-rejected", "exception", "first-request"]
STALE_MODES: tuple[str, ...] = get_args(StaleMode)

TAG_AARQ, TAG_RLRQ = TAGS["aarq"], TAGS["rlrq"]
#: AARE rejected-permanent, acse-service-user no-reason-given, no user-information.
AARE_BUSY = bytes.fromhex("6117A109060760857405080101A203020101A305A103020101")
#: exception-response: state-error service-not-allowed, service-error operation-not-possible.
SERVICE_NOT_ALLOWED = bytes.fromhex("D80101")
RLRE = bytes.fromhex("6303800100")


@dataclass
class FaultOptions:
    drop_percent: float = 0.0
    corrupt_percent: float = 0.0
    delay_s: float = 0.0
    hang_after: int | None = None
    reset_after: int | None = None
    wrong_keys: bool = False
    stale_association: StaleMode | None = None
    seed: int = 0

    def validate(self) -> None:
        for name in ("drop_percent", "corrupt_percent"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name} {value}: allowed 0..100")
        if self.delay_s < 0:
            raise ValueError(f"delay_s {self.delay_s}: must be >= 0")
        for name in ("hang_after", "reset_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} {value}: must be >= 0 frames")
        if self.stale_association not in (None, *STALE_MODES):
            raise ValueError(
                f"stale_association {self.stale_association!r}: one of {', '.join(STALE_MODES)}"
            )


@dataclass
class StaleAssociations:
    """The associations one meter keeps after their client dropped them without an
    RLRQ (fault ``stale_association``), shared by all the meter's connections.
    :class:`~smmc_gateway.simulator.server.DlmsServer` reports an association still
    open when its connection ends (:meth:`dropped`) and lets :meth:`intercept` answer
    an APDU before its association machine does."""

    options: FaultOptions
    held: set[int] = field(default_factory=set)
    """Client SAPs whose association the meter still holds."""
    refusals: int = 0

    def dropped(self, client: int) -> None:
        """``client``'s association was open when its connection or link ended."""
        if self.options.stale_association is not None:
            self.held.add(client)

    def intercept(self, client: int, apdu: bytes, associated: bool) -> list[bytes] | None:
        """The meter's answer to ``apdu`` from ``client`` while it holds a stale
        association (None: the association machine answers). ``associated``: the
        machine of this connection has an open association for ``client``."""
        mode = self.options.stale_association
        if mode is None or client not in self.held or not apdu:
            return None
        if apdu[0] == TAG_RLRQ:  # the client releases what the meter holds
            self.held.discard(client)
            return None if associated else [RLRE]
        if apdu[0] == TAG_AARQ:
            if mode == "first-request":
                return None
            self.refusals += 1
            return [AARE_BUSY if mode == "aare-rejected" else SERVICE_NOT_ALLOWED]
        if mode == "first-request":
            self.refusals += 1
            return [SERVICE_NOT_ALLOWED]
        return None


class FaultInjector:
    """One meter's faults. The transport asks it about every frame."""

    def __init__(self, options: FaultOptions | None = None) -> None:
        self.options = options or FaultOptions()
        self.options.validate()
        self.stale = StaleAssociations(self.options)
        self._random = random.Random(self.options.seed)
        self.frames_in = 0
        self.dropped = 0
        self.corrupted = 0

    @property
    def hung(self) -> bool:
        limit = self.options.hang_after
        return limit is not None and self.frames_in >= limit

    def received(self) -> bool:
        """Count one received frame; False when the meter must ignore it (hung)."""
        if self.hung:
            return False
        self.frames_in += 1
        return True

    def recover(self) -> None:
        """Undo a hang: the meter answers again (counting starts over)."""
        self.options.hang_after = None
        self.frames_in = 0

    def should_reset(self, frames_on_connection: int) -> bool:
        limit = self.options.reset_after
        return limit is not None and frames_on_connection >= limit

    def outgoing(self, frame: bytes) -> bytes | None:
        """The frame as it goes on the wire: None when dropped, maybe corrupted."""
        opts = self.options
        if opts.drop_percent and self._random.random() * 100.0 < opts.drop_percent:
            self.dropped += 1
            return None
        if opts.corrupt_percent and frame and self._random.random() * 100.0 < opts.corrupt_percent:
            self.corrupted += 1
            data = bytearray(frame)
            # Not the HDLC flags: a flipped flag would just split the frame.
            lo, hi = (1, len(data) - 2) if len(data) > 2 else (0, len(data) - 1)
            at = self._random.randint(lo, hi)
            data[at] ^= 1 << self._random.randrange(8)
            return bytes(data)
        return frame


def split_hdlc(data: bytes) -> list[bytes]:
    """Split the concatenated frames of ``HdlcLink.data_to_send`` (each
    ``7E A0|len … 7E``) so faults apply per frame."""
    frames = []
    i = 0
    while i + 3 <= len(data) and data[i] == 0x7E:
        length = ((data[i + 1] & 0x07) << 8) | data[i + 2]
        end = i + length + 2
        frames.append(data[i:end])
        i = end
    if i < len(data):
        frames.append(data[i:])
    return frames
