"""Association settings of the client session.

:class:`Security` holds the authentication level and keys; :class:`SessionSettings`
the client SAP, PDU size, proposed conformance and timeouts;
:func:`core_config` turns them into the configuration of the association
machine (``_core.ClientAssociation``), which builds the AARQ and checks the AARE.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import MAX_COUNTER_JUMP

if TYPE_CHECKING:
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

Level = Literal["none", "lls", "hls-gmac"]
Referencing = Literal["ln", "sn", "auto"]
REFERENCING: tuple[str, ...] = ("ln", "sn", "auto")

DEFAULT_CONFORMANCE: tuple[str, ...] = (
    "general-protection",
    "general-block-transfer",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "data-notification",
    "access",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
)
"""What the client proposes (Green Book conformance block bit names)."""

DEFAULT_QUIRKS: frozenset[str] = frozenset(n for n, _, default in _core.known_quirks() if default)
"""The quirks a session tolerates unless told otherwise: the structural ones (trailing
bytes, an ACSE field's outer length, an InitiateResponse length off by one, an AARE
rejection without user-information); ``plain-initiate-response`` (security) is opt-in."""


@dataclass(frozen=True)
class Security:
    """Authentication level and keys of an association.

    ``level``: ``"none"`` (lowest), ``"lls"`` (password), ``"hls-gmac"``
    (mechanism 5, suite 0). ``ciphered`` (default for HLS): every xDLMS APDU
    after the AARQ is glo-ciphered with ``security_control`` (0x30:
    authenticated and encrypted). ``dedicated_key`` (16 bytes, or True for a
    fresh random one per association) is sent in the ciphered InitiateRequest
    and then protects the ded- APDUs. ``ic_store`` and ``ic_scope`` persist
    the outgoing invocation counter (scope: one name per key set, e.g. the
    meter id) and the servers' last seen counters; without a store the
    counters live in memory only (tests, a one-off CLI read with a fresh key).
    """

    level: Level = "none"
    password: bytes | None = None
    system_title: bytes = b"SMMCGW00"
    ek: bytes | None = None
    ak: bytes | None = None
    ciphered: bool = False
    security_control: int = 0x30
    dedicated_key: bytes | bool | None = None
    ic_store: InvocationCounterStore | None = field(default=None, compare=False)
    ic_scope: str = ""

    @classmethod
    def none(cls) -> Security:
        return cls()

    @classmethod
    def lls(cls, password: bytes) -> Security:
        return cls(level="lls", password=password)

    @classmethod
    def hls_gmac(
        cls,
        *,
        system_title: bytes,
        ek: bytes,
        ak: bytes,
        ciphered: bool = True,
        security_control: int = 0x30,
        dedicated_key: bytes | bool | None = None,
        ic_store: InvocationCounterStore | None = None,
        ic_scope: str = "",
    ) -> Security:
        return cls(
            level="hls-gmac",
            system_title=system_title,
            ek=ek,
            ak=ak,
            ciphered=ciphered,
            security_control=security_control,
            dedicated_key=dedicated_key,
            ic_store=ic_store,
            ic_scope=ic_scope,
        )

    def __post_init__(self) -> None:
        if self.level not in ("none", "lls", "hls-gmac"):
            raise ValueError(f"security level {self.level!r}: expected none, lls or hls-gmac")
        if self.level == "lls" and not self.password:
            raise ValueError("security level lls needs a password")
        if len(self.system_title) != 8:
            raise ValueError(f"client system title must be 8 bytes, got {len(self.system_title)}")
        if self.level == "hls-gmac" or self.ciphered:
            for name in ("ek", "ak"):
                key = getattr(self, name)
                if key is None or len(key) != 16:
                    raise ValueError(f"{name} must be 16 bytes for {self.level}/ciphering")
        if self.security_control not in (0x10, 0x20, 0x30):
            raise ValueError(
                f"security control 0x{self.security_control:02x}: expected 0x10, 0x20 or 0x30"
            )
        if isinstance(self.dedicated_key, bytes) and len(self.dedicated_key) != 16:
            raise ValueError("dedicated key must be 16 bytes")

    def __repr__(self) -> str:  # never show keys or passwords
        return f"Security(level={self.level!r}, ciphered={self.ciphered})"

    def new_dedicated_key(self) -> bytes | None:
        if self.dedicated_key is True:
            return os.urandom(16)
        if isinstance(self.dedicated_key, bytes):
            return self.dedicated_key
        return None


@dataclass(frozen=True)
class SessionSettings:
    """Client SAP, PDU size, conformance and timeouts of a session.

    ``response_timeout``: how long to wait for each response APDU;
    ``operation_timeout``: the deadline of one whole service (all its
    blocks); ``association_timeout``: open() as a whole (link + AARQ + HLS).

    Limits on what the meter sends: every received APDU (each block of a
    block transfer included) is at most ``max_pdu_size`` bytes, one answer
    reassembled from blocks at most ``max_block_transfer``; a counter hint
    (exception-response with an invocation counter) is followed at most
    ``max_counter_jump`` ahead of our confirmed counter. ``quirks``: the
    meter model's quirks tolerated (default :data:`DEFAULT_QUIRKS`; empty: strict).
    """

    client_sap: int = 16
    security: Security = field(default_factory=Security)
    max_pdu_size: int = 0xFFFF
    """Our max receive PDU size, proposed in the InitiateRequest."""
    max_send_pdu: int | None = None
    """A cap on the APDUs we send (None: the server's max receive PDU size);
    larger SETs/ACTIONs go out in blocks. For meters that advertise more than
    they take."""
    conformance: tuple[str, ...] = DEFAULT_CONFORMANCE
    response_timeout: float = 10.0
    operation_timeout: float = 120.0
    association_timeout: float = 30.0
    keep_alive_interval: float | None = None
    """When set, an idle association is kept open by reading the clock every
    this many seconds (keep it below the meter's inactivity timeout)."""
    release: bool = True
    """Send RLRQ in close() (some meters do not implement release; DISC still follows)."""
    invoke_priority_high: bool = True
    max_block_transfer: int = 8 << 20
    """Ceiling in bytes on one answer reassembled from blocks (GBT, DataBlock-G, pblocks)."""
    max_counter_jump: int = MAX_COUNTER_JUMP
    """How far ahead of our confirmed invocation counter a meter's hint is followed."""
    quirks: frozenset[str] = DEFAULT_QUIRKS
    """The meter's quirks tolerated, by name (``ModelConfig.quirks``; ``_core.known_quirks()``):
    by default the structural ones; ``frozenset()`` is strict (every quirk refused)."""
    referencing: Referencing = "ln"
    """``ln`` (logical names, GET/SET/ACTION), ``sn`` (short names,
    Read/Write; ``CLASS/OBIS/ATTR`` resolved through the meter's object list)
    or ``auto`` (LN; a meter that refuses the LN application context is
    associated again with SN). See :mod:`smmc_gateway.dlms.sn`."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_pdu_size <= 0xFFFF:
            raise ValueError(f"max_pdu_size {self.max_pdu_size}: must be 1..65535")
        if self.max_block_transfer < 1:
            raise ValueError(f"max_block_transfer {self.max_block_transfer}: must be >= 1")
        if self.max_counter_jump < 1:
            raise ValueError(f"max_counter_jump {self.max_counter_jump}: must be >= 1")
        if self.referencing not in REFERENCING:
            raise ValueError(f"referencing {self.referencing!r}: expected ln, sn or auto")


def challenge(length: int = 16) -> bytes:
    """A fresh random HLS challenge (Green Book: 8 to 64 bytes)."""
    return os.urandom(length)


@functools.lru_cache(maxsize=1024)
def core_config(settings: SessionSettings, referencing: str = "ln") -> _core.AssociationConfig:
    """The association machine's configuration for ``settings`` (the keys go
    into the core; the invocation counters are granted by the session). Both
    are immutable: one configuration per settings, however many sessions.
    ``referencing`` ("ln" or "sn"): with "sn" the default LN conformance is
    replaced by the SN one (read, write, unconfirmed-write, …)."""
    sec = settings.security
    keyed = sec.level == "hls-gmac" or sec.ciphered
    dedicated = sec.ciphered and sec.dedicated_key not in (None, False)
    return _core.AssociationConfig(
        authentication=sec.level,
        password=sec.password if sec.level == "lls" else None,
        system_title=sec.system_title if keyed else None,
        ek=sec.ek if keyed else None,
        ak=sec.ak if keyed else None,
        security_control=sec.security_control if sec.ciphered else None,
        cipher_mode="ded" if dedicated else "glo",
        conformance=(
            None
            if referencing == "sn" and settings.conformance == DEFAULT_CONFORMANCE
            else settings.conformance
        ),
        referencing=referencing,
        max_receive_pdu=settings.max_pdu_size,
        max_send_pdu=settings.max_send_pdu,
        response_timeout=settings.response_timeout,
        max_block_transfer=settings.max_block_transfer,
        invoke_priority_high=settings.invoke_priority_high,
        max_counter_hint_jump=settings.max_counter_jump,
        quirks=sorted(settings.quirks),
    )
