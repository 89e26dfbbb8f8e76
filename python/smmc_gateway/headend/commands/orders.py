"""Effective dates on requests (issue 11 item 7): scheduling and cancelling orders.

``EndDeviceControls`` ``connect`` / ``disconnect`` items and ``MasterDataLinkageConfig``
account moves (``moveOut`` / ``moveIn``) may carry an ``effectiveDateTime`` (UTC ISO-8601;
on the control item, on ``ConfigurationEvent`` for a move):

* in the future (at most ``[commands] order_horizon`` ahead): the request is answered
  at once, one entry per meter with ``status: "scheduled"``, the gateway's ``orderId``
  and the ``effectiveDateTime``; the operation runs then
  (:mod:`~smmc_gateway.headend.effective`), and its outcome is published as an
  ``smmc.order.*`` event on the meter's events topic (the event's ``mRID`` is the
  ``orderId``), beside the operation's own events;
* now, or in the past by at most ``order_grace``: the operation runs now, as without it;
* earlier: refused (InvalidRequest naming the grace).

Cancelling, as IEC 61968-9 does it, with verb ``cancel`` on the same noun naming the
order: ``EndDeviceControls`` ``{"EndDeviceControl": [{"mRID": ref}]}`` and
``MasterDataLinkageConfig`` ``{"ConfigurationEvent": {"mRID": ref}}``, where ``ref`` is
an ``orderId`` or the ``mRID`` the request gave its control / ConfigurationEvent (which
cancels every order of that request); ``EndDevices`` / ``Meter`` narrow it to some meters.
Reply: one entry per order found, ``status`` ``cancelled`` (OK) or the state it is in
(FAILED: it ran, failed, expired or is running); a ref that names no order: FAILED
``NotFound``. At most ``max_meters_per_request`` orders are cancelled per ref.

Listing, with verb ``get``: ``EndDeviceControls`` ``{}`` (the connect/disconnect orders)
or ``MasterDataLinkageConfig`` ``{"ConfigurationEvent": {"reason": "moveOut"}}`` (the
moves of that kind), narrowed by ``EndDevices`` / ``Meter`` and by ``status`` (an array of
pending, running, done, failed, expired, cancelled; default pending and running). The
reply holds the orders as the scheduling reply did (``status``, ``orderId``,
``effectiveDateTime``, the outcome in ``details``), by effective time, at most
``max_meters_per_request`` per page; a longer list answers PARTIAL with a ``Truncated``
error naming the ``after`` (the last orderId) that asks for the next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.headend.effective import (
    EVENT_OF,
    NewOrder,
    Order,
    Orders,
    OrdersFull,
    iso,
)
from smmc_gateway.headend.request_limits import (
    LimitExceeded,
    parse_utc,
    show,
    target_meters,
)
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError, event
from smmc_gateway.usecases.connect import SwitchNotConfirmed

EFFECTIVE_KINDS = ("connect", "disconnect")
MOVE_KINDS = ("moveOut", "moveIn")
ORDER_STATES = ("pending", "running", "done", "failed", "expired", "cancelled")
OPEN_STATES = ("pending", "running")
_NOW_SLACK_S = 1.0


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _duration(seconds: float) -> str:
    return f"{seconds / 86400:g}d" if seconds >= 86400 else f"{seconds:g}s"


def effective_at(
    raw: Any, where: str, problems: list[str], commands: CommandsConfig, now: datetime | None = None
) -> datetime | None:
    """The future moment an operation is to run, or None to run it now (absent, or now, or
    past within the grace); a moment too far ahead or too long ago is a problem."""
    if raw is None:
        return None
    moment = parse_utc(raw, where, problems)
    if moment is None:
        return None
    now = now or datetime.now(UTC)
    horizon = commands.order_horizon_s
    if moment > now + timedelta(seconds=horizon):
        problems.append(
            f"{where}: {raw} is more than commands.order_horizon = {_duration(horizon)} ahead"
        )
        return None
    if moment < now - timedelta(seconds=commands.order_grace_s):
        problems.append(
            f"{where}: {raw} is in the past (more than commands.order_grace = "
            f"{_duration(commands.order_grace_s)} ago); nothing was scheduled"
        )
        return None
    return moment if moment > now + timedelta(seconds=_NOW_SLACK_S) else None


class OrderCommands:
    """The orders of the dispatcher's nouns, and their runner."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig) -> None:
        self.headend = headend
        self.commands = commands
        self.orders = Orders(
            headend.fleet.store,
            self._execute,
            self._publish,
            max_pending=commands.max_pending_orders,
            max_per_meter=commands.max_orders_per_meter,
            grace_s=commands.order_grace_s,
            retry_delay=headend.scheduler.retry_delay,
        )

    async def schedule(self, items: Sequence[NewOrder]) -> list[Order]:
        try:
            return await self.orders.schedule(items)
        except OrdersFull as exc:
            raise LimitExceeded(f"payload: {exc}") from None

    # -- running one -----------------------------------------------------------------------
    async def _execute(self, o: Order) -> tuple[bool, str]:
        if o.kind in EFFECTIVE_KINDS:
            try:
                r = await self.headend.switch(o.meter_id, o.kind)  # type: ignore[arg-type]
            except SwitchNotConfirmed as exc:
                return False, _text(exc)
            return True, (
                f"output_state {r.after.output_state}, control_state {r.after.control_state}"
            )
        try:
            m = await self.headend.move(o.meter_id, o.kind)  # type: ignore[arg-type]
        except SwitchNotConfirmed as exc:
            return False, _text(exc)
        if m.error:
            return False, m.error
        return True, "; ".join(m.steps)

    async def _publish(self, o: Order, state: str, details: str) -> None:
        ref = f", request mRID {o.mrid}" if o.mrid else ""
        text = f"order {o.order_id}: {o.kind} effective {o.effective}{ref}: {details}"
        await self.headend.publisher.publish_event(
            o.meter_id,
            [event(EVENT_OF[state], reason=o.kind, details=text[:2000], mrid=o.order_id)],
        )

    # -- replies ---------------------------------------------------------------------------
    @staticmethod
    def control_entry(
        o: Order, status: str | None = None, ok: bool = True, details: str | None = None
    ) -> dict[str, Any]:
        e: dict[str, Any] = {
            "EndDeviceControlType": {"ref": o.kind},
            "EndDevices": [{"mRID": o.meter_id}],
            "result": "OK" if ok else "FAILED",
            "status": status or o.state,
            "orderId": o.order_id,
            "effectiveDateTime": o.effective,
            "details": details or _describe(o),
        }
        if o.mrid is not None:
            e["mRID"] = o.mrid
        return e

    @staticmethod
    def move_entry(
        o: Order, status: str | None = None, ok: bool = True, details: str | None = None
    ) -> dict[str, Any]:
        e: dict[str, Any] = {
            "Meter": {"mRID": o.meter_id},
            "reason": o.kind,
            "result": "OK" if ok else "FAILED",
            "status": status or o.state,
            "orderId": o.order_id,
            "effectiveDateTime": o.effective,
            "details": details or _describe(o),
        }
        if o.mrid is not None:
            e["mRID"] = o.mrid
        return e

    # -- listing ---------------------------------------------------------------------------
    async def listing(self, noun: str, payload: dict[str, Any]) -> Outcome:
        """verb get: the orders of ``noun``, paged (see the module doc)."""
        problems: list[str] = []
        controls = noun == "EndDeviceControls"
        allowed = (
            {"EndDevices", "status", "after"}
            if controls
            else {"Meter", "ConfigurationEvent", "status", "after"}
        )
        extra = sorted(set(payload) - allowed)
        if extra:
            problems.append(
                f"payload: unknown field(s) {extra}; a get of the scheduled "
                f"orders takes {', '.join(sorted(allowed))}"
            )
        kinds: tuple[str, ...] = EFFECTIVE_KINDS if controls else MOVE_KINDS
        if not controls:
            ev = payload.get("ConfigurationEvent")
            reason = ev.get("reason") if isinstance(ev, dict) else None
            if reason in MOVE_KINDS:
                kinds = (str(reason),)
        states = payload.get("status", list(OPEN_STATES))
        if (
            not isinstance(states, list)
            or not states
            or not all(isinstance(x, str) and x in ORDER_STATES for x in states)
        ):
            problems.append(
                f"payload.status: {show(states)}; an array of "
                f"{', '.join(ORDER_STATES)} (default pending, running)"
            )
            states = list(OPEN_STATES)
        key = "EndDevices" if controls else "Meter"
        meters = (
            target_meters(self.headend.fleet, payload, "payload", problems, key=key, groups=False)
            if key in payload
            else None
        )
        after: Order | None = None
        raw_after = payload.get("after")
        if raw_after is not None:
            found = await self.orders.get(raw_after) if isinstance(raw_after, str) else None
            if found is None or found.noun != noun:
                problems.append(
                    f"payload.after: {show(raw_after)} is not an orderId of "
                    f"{noun} (give the last orderId of the previous page)"
                )
            after = found
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        page = max(1, self.commands.max_meters_per_request)
        rows = await self.orders.listing(
            noun, kinds=kinds, states=states, meters=meters, after=after, limit=page + 1
        )
        entry = self.control_entry if controls else self.move_entry
        items = [
            entry(o, ok=o.state not in ("failed", "expired"), details=o.outcome or _describe(o))
            for o in rows[:page]
        ]
        reply_key = "EndDeviceControl" if controls else "MasterDataLinkageConfig"
        if len(rows) <= page:
            return Outcome("OK", {reply_key: items})
        last = rows[page - 1].order_id
        return Outcome(
            "PARTIAL",
            {reply_key: items},
            [
                {
                    "code": "Truncated",
                    "details": f"more than {page} orders (a page is "
                    f'commands.max_meters_per_request = {page}): ask again with "after": '
                    f'"{last}"',
                }
            ],
        )

    # -- cancel ----------------------------------------------------------------------------
    async def cancel(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        """verb cancel of EndDeviceControls or MasterDataLinkageConfig."""
        problems: list[str] = []
        refs: list[tuple[str, str, set[str] | None]] = []  # (where, ref, meters)
        if noun == "EndDeviceControls":
            items = payload.get("EndDeviceControl")
            if not isinstance(items, list) or not items:
                problems.append(
                    "payload.EndDeviceControl: must be a non-empty array of "
                    '{"mRID": <orderId or the control\'s mRID>}'
                )
                items = []
            for i, item in enumerate(items):
                where = f"payload.EndDeviceControl[{i}]"
                refs.append(self._ref(item, where, "EndDevices", problems))
        else:
            ev = payload.get("ConfigurationEvent")
            refs.append(
                self._ref(ev, "payload.ConfigurationEvent", "Meter", problems, meters_in=payload)
            )
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        cap = self.commands.max_meters_per_request
        entries: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        entry = self.control_entry if noun == "EndDeviceControls" else self.move_entry
        for where, ref, meters in refs:
            found = await self.orders.find(noun, ref, meters)
            if not found:
                errors.append(
                    {
                        "code": "NotFound",
                        "details": f"{where}.mRID: no order with "
                        f"orderId or mRID {show(ref)}"
                        + (" for the meters named" if meters else ""),
                    }
                )
                continue
            if len(found) > cap:
                raise LimitExceeded(
                    f"{where}.mRID: {show(ref)} names {len(found)} orders; at "
                    f"most commands.max_meters_per_request = {cap} are "
                    "cancelled per request: cancel them by orderId or by meter"
                )
            cancelled = {o.order_id for o in await self.orders.cancel(found)}
            for o in found:
                if o.order_id in cancelled:
                    entries.append(entry(o, "cancelled", True, "cancelled before it ran"))
                    continue
                now = await self.orders.get(o.order_id) or o
                text = f"order {o.order_id} is {now.state}, not pending: " + (
                    now.outcome or "it is being run now"
                )
                entries.append(entry(now, now.state, False, text))
                errors.append({"code": "NotPending", "details": text})
        good = sum(1 for e in entries if e["result"] == "OK")
        result = "OK" if not errors else ("PARTIAL" if good else "FAILED")
        key = "EndDeviceControl" if noun == "EndDeviceControls" else "MasterDataLinkageConfig"
        return Outcome(result, {key: entries} if entries else {}, errors)

    def _ref(
        self,
        item: Any,
        where: str,
        key: str,
        problems: list[str],
        meters_in: dict[str, Any] | None = None,
    ) -> tuple[str, str, set[str] | None]:
        ref = item.get("mRID") if isinstance(item, dict) else None
        if not isinstance(ref, str) or not ref:
            problems.append(
                f"{where}.mRID: {show(ref)}; name the order to cancel by its "
                "orderId (from the reply that scheduled it) or the mRID the "
                "request gave"
            )
            return where, "", None
        holder = meters_in if meters_in is not None else item
        meters = None
        if isinstance(holder, dict) and key in holder:
            meters = set(
                target_meters(
                    self.headend.fleet,
                    holder,
                    "payload" if meters_in is not None else where,
                    problems,
                    key=key,
                    groups=False,
                )
            )
        return where, ref, meters


def _describe(o: Order) -> str:
    return f"{o.kind} scheduled for {o.effective} (orderId {o.order_id})"


__all__ = ["EFFECTIVE_KINDS", "MOVE_KINDS", "OrderCommands", "effective_at", "iso"]
