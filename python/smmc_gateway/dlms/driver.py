"""The asyncio adapter of one association machine over one transport.

``_core.ClientAssociation`` holds the protocol (AARQ/AARE, HLS-GMAC, invoke
ids, GET/SET/ACTION with-list and blocks both ways, general-block-transfer,
ciphering, counter checks, late answers, the response timeout). This module
only moves things, as :mod:`smmc_gateway.dlms.hdlc_transport` does for the
link: APDUs from the transport into ``receive_data``, ``data_to_send()``
onto the transport, the machine's ``next_deadline()`` and the operation's
deadline into one wait, the transport's progress into ``progress`` (the
response timeout is a silence timeout: a long answer still arriving on a
slow link keeps it alive), counters from the store
(:mod:`smmc_gateway.dlms.counters`), and the machine's typed events into the
exceptions of :mod:`smmc_gateway.dlms.errors`, each naming what was awaited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.association import SessionSettings, challenge, core_config
from smmc_gateway.dlms.counters import CounterGrants
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    LimitExceeded,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    SecurityFailure,
    ServiceNotAllowed,
    SessionError,
)
from smmc_gateway.dlms.observe import SessionObserver, quirk_taken
from smmc_gateway.dlms.stream import TIMER_SLACK, Transport

log = structlog.get_logger("smmc_gateway.dlms")

_CIPHER_REFUSALS = ("deciphering-error", "invocation-counter-error")
_EXCEPTION_FOR_AARQ = "exception-response to the AARQ"  # rust/src/assoc/client_rx.rs
_NOT_ALLOWED = "service-not-allowed"
_RECEIVED_TOO_LONG = "received APDU (our max receive PDU size)"
_CEILING = " (max_block_transfer)"
_Done = _core.Response | _core.Timeout
# the event kinds as tuples made once (a ``A | B`` written in the loop builds a union per event)
_DONE_EVENTS = (_core.Response, _core.Timeout)
_ACSE_EVENTS = (_core.Associated, _core.Refused, _core.AssociationFailed)


class Driver:
    """One ``_core.ClientAssociation`` driven over one transport."""

    def __init__(
        self,
        transport: Transport,
        settings: SessionSettings,
        meter_id: str,
        observer: SessionObserver | None = None,
        referencing: str | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.meter_id = meter_id
        self.observer = observer
        self.referencing = referencing or ("sn" if settings.referencing == "sn" else "ln")
        """The referencing of this association ("ln" or "sn")."""
        self.assoc = _core.ClientAssociation(core_config(settings, self.referencing))
        sec = settings.security
        self.counters: CounterGrants | None = None
        if sec.level == "hls-gmac" or sec.ciphered:
            self.counters = CounterGrants(sec, meter_id)
            self.counters.prime(self.assoc)
        self.agreement: _core.Agreement | None = None
        self._done: dict[int, _Done] = {}
        self._acse: _core.Associated | _core.Refused | _core.AssociationFailed | None = None
        self._released: _core.Released | None = None
        self._progress = transport.progress

    # ------------------------------------------------------------ the loop
    async def _pump(
        self, until: Callable[[], bool], deadline: float, what: str, budget: float
    ) -> None:
        """Move APDUs, time and events until ``until()``; MeterTimeout at ``deadline``."""
        assoc, tr = self.assoc, self.transport
        while True:
            events = assoc.events()
            if events:
                self._dispatch(events)
            for apdu in assoc.data_to_send():
                await tr.send_apdu(apdu)
            if until():
                return
            now = time.monotonic()
            due = assoc.next_deadline()
            # a wait may end up to TIMER_SLACK early (uvloop's clock is in whole
            # milliseconds): that is the deadline, not a reason to wait a sliver more
            if due is not None and now >= due - TIMER_SLACK:
                now = max(now, due)
                if tr.progress != self._progress:
                    self._progress = tr.progress
                    assoc.progress(now)
                else:
                    assoc.handle_timeout(now)
                continue
            if now >= deadline - TIMER_SLACK:
                raise MeterTimeout(f"{what} from {tr.description}", budget)
            wait = deadline - now if due is None else min(due, deadline) - now
            try:
                apdu = await tr.receive_apdu(wait)
            except MeterTimeout:
                continue  # the machine's timer or the deadline decides, above
            except LinkLost as exc:
                self.reset()
                raise LinkLost(f"{exc} (awaiting {what})") from exc
            self._progress = tr.progress
            assoc.receive_data(apdu, time.monotonic())

    def _dispatch(self, events: list[_core.ClientEvent]) -> None:
        for e in events:
            if isinstance(e, _DONE_EVENTS):
                self._done[e.id] = e
            elif isinstance(e, _core.NeedCounters):
                if self.counters is None:
                    raise SecurityFailure("the association asks for counters but has no keys")
                self.counters.grant(self.assoc)
            elif isinstance(e, _ACSE_EVENTS):
                self._acse = e
            elif isinstance(e, _core.Released):
                self._released = e
            elif isinstance(e, _core.LateAnswerDropped):
                log.info("late_answer_dropped", meter_id=self.meter_id, invoke_id=e.invoke_id)
            elif isinstance(e, _core.Unsolicited):
                log.info("unsolicited_apdu_ignored", meter_id=self.meter_id)
            elif isinstance(e, _core.CounterHint):
                log.debug("invocation_counter_hint", meter_id=self.meter_id, hint=e.expected)
            elif isinstance(e, _core.QuirkTaken):
                quirk_taken(
                    self.observer, self.meter_id or self.transport.description, e.quirk, e.detail
                )
            elif isinstance(e, _core.ProtocolError):
                log.info("apdu_dropped", meter_id=self.meter_id, why=e.error.message)
        if self.counters is not None:
            self.counters.confirm(self.assoc)

    # ------------------------------------------------------------ association
    async def associate(self, deadline: float, budget: float) -> _core.Agreement:
        """AARQ/AARE and for HLS-GMAC passes 3 and 4; raises AssociationRefused,
        ProtocolError, SecurityFailure, LimitExceeded, MeterTimeout, LinkLost."""
        sec = self.settings.security
        ctos = challenge() if sec.level == "hls-gmac" else None
        key = sec.new_dedicated_key() if sec.ciphered else None
        self._acse = None  # (a session recovering a stale association associates again)
        self.assoc.open(time.monotonic(), ctos, key)
        try:
            await self._pump(lambda: self._acse is not None, deadline, "AARE", budget)
        except MeterTimeout:
            self.reset()
            raise
        ended = self._acse
        if isinstance(ended, _core.Associated):
            self.agreement = ended.agreement  # its quirks were reported as QuirkTaken
            return ended.agreement
        if isinstance(ended, _core.Refused):
            result = ended.result_name if ended.result else "accepted-with-error"
            diagnostic = ended.diagnostic_name or str(ended.diagnostic)
            raise AssociationRefused(result, diagnostic, ended.detail)
        assert isinstance(ended, _core.AssociationFailed)
        raise self._association_error(ended.error)

    def _association_error(self, e: _core.ErrorInfo) -> SessionError:
        source = self.transport.description
        if e.field == _EXCEPTION_FOR_AARQ and _NOT_ALLOWED in e.message:
            return ServiceNotAllowed(f"association with {source}: {e.message}")
        if e.kind == "no-answer":
            return MeterTimeout(f"{e.field} from {source}", self.settings.response_timeout)
        if e.kind == "too-long" and e.length is not None and e.limit is not None:
            return _limit(f"association with {source}", e, e.length, e.limit)
        if e.layer == "security" or e.kind == "authentication-failed":
            return SecurityFailure(f"association with {source}: {e.message}")
        return ProtocolError(f"association with {source}: {e.message}")

    async def release(self, budget: float) -> None:
        """RLRQ and wait for the RLRE (or the response timeout)."""
        self.assoc.release(time.monotonic())
        await self._pump(
            lambda: self._released is not None, time.monotonic() + budget + 1.0, "RLRE", budget
        )
        if self._released is not None and not self._released.confirmed:
            log.debug("release_unconfirmed", meter_id=self.meter_id)

    def reset(self) -> None:
        """The link is gone: pending requests end, nothing more is sent."""
        self.assoc.reset()
        self._dispatch(self.assoc.events())

    def finish(self) -> None:
        """The session is over: persist what the counters became."""
        if self.counters is not None:
            title = self.agreement.peer_system_title if self.agreement is not None else None
            self.counters.finish(self.assoc, title)

    # ------------------------------------------------------------ requests
    def start(self, begin: Callable[[float], int]) -> int:
        """Queue a request (``begin(now)`` calls get/set/action); a refusal
        by the machine (conformance, state, size) is a ProtocolError."""
        try:
            return begin(time.monotonic())
        except _core.DlmsError as exc:
            raise ProtocolError(str(exc)) from exc

    async def send_unanswered(
        self, begin: Callable[[float], int], what: str, budget: float
    ) -> None:
        """Queue a request nothing answers (an SN UnconfirmedWriteRequest) and send it."""
        self.start(begin)
        await self._pump(lambda: True, time.monotonic() + budget, what, budget)

    async def request(self, rid: int, deadline: float, what: str, budget: float) -> _core.Outcome:
        """The outcome of request ``rid``; the failures raise (module doc)."""
        try:
            await self._pump(lambda: rid in self._done, deadline, what, budget)
        except BaseException:
            self.assoc.cancel(rid, time.monotonic())  # a late answer is dropped
            self._done.pop(rid, None)
            raise
        done = self._done.pop(rid)
        if isinstance(done, _core.Timeout):
            timeout = self.settings.response_timeout
            raise MeterTimeout(f"{what} from {self.transport.description}", timeout)
        if done.failure is not None:
            raise self._failure(done.failure, what)
        assert done.outcome is not None
        return done.outcome

    def _failure(self, f: _core.RequestFailure, what: str) -> SessionError:
        source = self.transport.description
        if f.kind == "exception":
            detail = f"{f.state_error_name}/{f.service_error_name}"
            if f.state_error_name == _NOT_ALLOWED and f.service_error_name not in _CIPHER_REFUSALS:
                return ServiceNotAllowed(f"{what}: exception-response {detail}")
            if f.service_error_name not in _CIPHER_REFUSALS:
                return ProtocolError(f"{what}: exception-response {detail}")
            hinted = f.invocation_counter
            if hinted is not None and self.counters is not None:
                try:
                    jump = self.settings.max_counter_jump
                    followed = self.counters.hint(self.assoc, hinted, jump)
                except SecurityFailure as exc:
                    return SecurityFailure(
                        f"{what} from {source}: meter refused our ciphering ({detail}); {exc}"
                    )
                log.warning(
                    "invocation_counter_hint",
                    meter_id=self.meter_id,
                    hint=hinted,
                    followed="tentatively" if followed else "no: not ahead of ours",
                )
            extra = f" (meter expects invocation counter {hinted})" if hinted is not None else ""
            return SecurityFailure(f"{what}: meter refused our ciphering: {detail}{extra}")
        if f.kind == "confirmed-service-error":
            return ProtocolError(
                f"{what}: confirmed-service-error {f.service_name}: {f.error_name} {f.value}"
            )
        info = f.error_info
        if f.kind == "security" and info is not None:
            return SecurityFailure(f"{what} from {source}: {info.message}")
        if info is not None and info.kind == "too-long" and info.length is not None:
            return _limit(what, info, info.length, info.limit or 0, source)
        if f.kind == "abandoned":
            return LinkLost(f"{what}: {f.message}")
        return ProtocolError(f"{what}: {info.message if info is not None else f.message}")


def _limit(what: str, e: _core.ErrorInfo, size: int, limit: int, source: str = "") -> LimitExceeded:
    """A size limit the machine enforced, named as the session names it."""
    if e.field == _RECEIVED_TOO_LONG:
        return LimitExceeded(f"{what}: APDU from {source}", size, limit, "max receive PDU size")
    if e.field.endswith(_CEILING):
        transfer = e.field.removesuffix(_CEILING)
        unit = "pblock" if transfer == "pblocks" else "block"
        where = f"{what}: {transfer} up to {unit} {e.block}"
        return LimitExceeded(where, size, limit, "block-transfer ceiling")
    name = e.field.split(" (", 1)[-1].rstrip(")") if " (" in e.field else e.field
    return LimitExceeded(f"{what}: {e.field.split(' (', 1)[0]}", size, limit, name)
