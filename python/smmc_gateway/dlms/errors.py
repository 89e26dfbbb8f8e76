"""The exceptions a DLMS client session raises, each naming what went wrong.

Every exception derives from :class:`SessionError`, so a head-end can catch one
type per meter read; the subclasses tell a retry (``MeterTimeout``,
``LinkLost``) from a configuration problem (``AssociationRefused``,
``SecurityFailure``) from a meter's answer (``DataAccessError``).
"""

from __future__ import annotations


class SessionError(Exception):
    """Base of every error of a DLMS client session or transport."""


class TransportError(SessionError):
    """The transport could not be opened (TCP refused, serial device missing, ...)."""


class MeterTimeout(SessionError):
    """The meter did not answer in time; ``awaited`` says what we were waiting for."""

    def __init__(self, awaited: str, timeout: float) -> None:
        super().__init__(f"meter did not answer within {timeout:g} s (awaiting {awaited})")
        self.awaited = awaited
        self.timeout = timeout


class LinkLost(SessionError):
    """The link went down: connection closed, HDLC retries exhausted, DM/FRMR."""


class ProtocolError(SessionError):
    """The meter answered something the protocol does not allow here: an
    unexpected APDU, an invoke-id mismatch, an exception-response, a
    confirmed-service-error, a block number out of sequence."""


class ServiceNotAllowed(ProtocolError):
    """The meter answered the AARQ or a request with an exception-response
    service-not-allowed: typically it still holds an association that a client
    dropped without releasing it (the session recovers once, see
    :mod:`smmc_gateway.dlms.client`)."""


class LimitExceeded(ProtocolError):
    """The meter sent more than a limit of the session allows: an APDU longer
    than the max receive PDU size we proposed, or an answer reassembled from
    blocks beyond the block-transfer ceiling. ``size`` is what was seen (so
    far), ``limit`` the limit and ``name`` its name."""

    def __init__(self, what: str, size: int, limit: int, name: str) -> None:
        super().__init__(f"{what}: {size} bytes exceed the {name} of {limit} bytes")
        self.size = size
        self.limit = limit
        self.name = name


class SecurityFailure(SessionError):
    """A security check failed: a bad GCM/GMAC tag, a replayed or non-increasing
    invocation counter, a response with less protection than the policy, or an
    exhausted invocation counter."""


class AssociationRefused(SessionError):
    """The AARE rejected the association; ``diagnostic`` is the AARE's
    result-source-diagnostic (e.g. ``authentication-failure``)."""

    def __init__(self, result: str, diagnostic: str, detail: str = "") -> None:
        text = f"association refused: {result} ({diagnostic})"
        super().__init__(text + (f": {detail}" if detail else ""))
        self.result = result
        self.diagnostic = diagnostic
        self.detail = detail
        """What else the AARE said (an initiate error in its user-information), or ""."""


class DataAccessError(SessionError):
    """The meter answered a GET/SET/ACTION with a data-access-result or
    action-result other than success; the message reads
    ``DataAccessError: 3/1.0.1.8.0.255/2: read-write-denied`` (a method is
    written ``m1``)."""

    def __init__(self, class_id: int, obis: str, member: int, result: str, *, method: bool = False):
        self.class_id = class_id
        self.obis = obis
        self.member = member
        self.method = method
        self.result = result
        ref = f"{class_id}/{obis}/{'m' if method else ''}{member}"
        super().__init__(f"{ref}: {result}")
