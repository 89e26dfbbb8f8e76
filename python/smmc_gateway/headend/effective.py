"""Effective-dated orders (issue 11 item 7): a connect, disconnect or account move that runs
at its ``effectiveDateTime``, durably, and can be cancelled before.

An :class:`Order` is one operation on one meter. :class:`Orders` keeps them in the fleet
database (table ``effective_order``) from the moment the request is answered "scheduled":
a restart loses none. Its runner (:meth:`Orders.run`) takes the orders that are due,
marks them ``running`` and executes them through the head-end (at command priority);
then it publishes the outcome as an event on the meter's events topic, whose ``mRID`` is
the order's id (``smmc.order.executed`` / ``failed`` / ``expired`` / ``cancelled``), and
marks the order with it. The request's reply had already said "scheduled".

* A meter that does not answer is tried again with the scheduler's backoff while the
  grace (``[commands] order_grace``, counted from the effective time) lasts; then the
  order is ``failed``. A meter that refused (e.g. the switch did not move) fails at once.
* An order that came due while the gateway was down runs at start if it is late by at
  most the grace; later than that it is not run: ``expired``, and published so.
* At start the runner first waits (at most 30 s) for the uplink to be connected, and a
  few seconds more, so that requests queued in the broker while the gateway was down
  (a cancel) are handled before overdue orders run.
* An order found ``running`` at start (the gateway stopped during it) runs again: the
  operations are idempotent (a switch to a state, a read).
* :meth:`Orders.cancel` moves a ``pending`` order to ``cancelled`` in one statement, so an
  order is either cancelled or run, never both.

Bounds: ``[commands] max_pending_orders`` in all and ``max_orders_per_meter`` per meter,
checked atomically with the insert (a request over them is refused whole: FAILED
``LimitExceeded``), ``order_horizon`` (how far ahead) by the request's validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.uplink.store import Store, StoreClosed

log = structlog.get_logger("smmc_gateway.effective")

# Table effective_order: created by the migrations of smmc_gateway.headend.persistence (the
# fleet database is migrated when it is opened).
NOUN_OF = {
    "connect": "EndDeviceControls",
    "disconnect": "EndDeviceControls",
    "moveOut": "MasterDataLinkageConfig",
    "moveIn": "MasterDataLinkageConfig",
}
EVENT_OF = {
    "done": "smmc.order.executed",
    "failed": "smmc.order.failed",
    "expired": "smmc.order.expired",
    "cancelled": "smmc.order.cancelled",
}
RETRYABLE = (SessionError, OSError, TimeoutError)
_COLUMNS = (
    "order_id, noun, kind, meter_id, due, next_try, attempts, mrid, state, created,"
    " finished, outcome"
)


@dataclass(frozen=True)
class Order:
    order_id: str
    noun: str
    kind: str
    meter_id: str
    due: float
    next_try: float
    attempts: int
    mrid: str | None
    state: str  # pending | running | done | failed | expired | cancelled
    created: float
    finished: float | None = None
    outcome: str | None = None

    @property
    def effective(self) -> str:
        return iso(self.due)


def iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


class OrdersFull(Exception):
    """Scheduling these orders would pass a cap (the message names it)."""


@dataclass(frozen=True)
class NewOrder:
    kind: str
    meter_id: str
    due: float
    mrid: str | None = None


Execute = Callable[[Order], Awaitable[tuple[bool, str]]]
"""``await execute(order)`` -> (ok, details); raises a RETRYABLE error when the meter did
not answer (tried again within the grace)."""
Publish = Callable[[Order, str, str], Awaitable[None]]
"""``await publish(order, state, details)``: the outcome event."""


class Orders:
    """The effective-dated orders of one gateway, in ``fleet.sqlite``."""

    def __init__(
        self,
        store: Store,
        execute: Execute,
        publish: Publish,
        *,
        max_pending: int = 10000,
        max_per_meter: int = 4,
        grace_s: float = 3600.0,
        retry_delay: Callable[[int], float] = lambda n: min(600.0, 5.0 * 2**n),
        clock: Callable[[], float] = time.time,
        max_parallel: int = 16,
    ) -> None:
        self.store = store
        self.execute = execute
        self.publish = publish
        self.max_pending = max_pending
        self.max_per_meter = max_per_meter
        self.grace_s = grace_s
        self.retry_delay = retry_delay
        self.clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_parallel)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- scheduling and cancelling ---------------------------------------------------------
    async def schedule(self, items: Sequence[NewOrder]) -> list[Order]:
        """Store ``items`` as pending orders, all or none; :class:`OrdersFull` naming the cap
        when they would pass ``max_pending_orders`` or ``max_orders_per_meter``."""
        now = self.clock()
        orders = [
            Order(
                str(uuid.uuid4()),
                NOUN_OF[i.kind],
                i.kind,
                i.meter_id,
                i.due,
                i.due,
                0,
                i.mrid,
                "pending",
                now,
            )
            for i in items
        ]
        per_meter: dict[str, int] = {}
        for o in orders:
            per_meter[o.meter_id] = per_meter.get(o.meter_id, 0) + 1

        def job(conn: sqlite3.Connection) -> None:
            pending = conn.execute(
                "SELECT COUNT(*) FROM effective_order WHERE state IN ('pending', 'running')"
            ).fetchone()[0]
            if pending + len(orders) > self.max_pending:
                raise OrdersFull(
                    f"{pending} orders are pending on this gateway and this "
                    f"request adds {len(orders)}; at most "
                    f"commands.max_pending_orders = {self.max_pending}"
                )
            for meter, n in per_meter.items():
                have = conn.execute(
                    "SELECT COUNT(*) FROM effective_order WHERE meter_id=? AND"
                    " state IN ('pending', 'running')",
                    (meter,),
                ).fetchone()[0]
                if have + n > self.max_per_meter:
                    raise OrdersFull(
                        f"meter {meter} has {have} pending order(s) and this "
                        f"request adds {n}; at most commands.max_orders_per_meter"
                        f" = {self.max_per_meter}: cancel one first"
                    )
            conn.executemany(
                f"INSERT INTO effective_order ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        o.order_id,
                        o.noun,
                        o.kind,
                        o.meter_id,
                        o.due,
                        o.next_try,
                        o.attempts,
                        o.mrid,
                        o.state,
                        o.created,
                        None,
                        None,
                    )
                    for o in orders
                ],
            )

        await self.store.submit(job)
        self._wake.set()
        for o in orders:
            log.info(
                "order_scheduled",
                order_id=o.order_id,
                kind=o.kind,
                meter_id=o.meter_id,
                effective=o.effective,
            )
        return orders

    async def find(self, noun: str, ref: str, meters: set[str] | None = None) -> list[Order]:
        """Orders of ``noun`` whose id or mRID is ``ref`` (of ``meters`` when given)."""

        def job(conn: sqlite3.Connection) -> list[Order]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM effective_order WHERE noun=? AND "
                "(order_id=? OR mrid=?) ORDER BY due, order_id LIMIT 10001",
                (noun, ref, ref),
            ).fetchall()
            return [Order(*r) for r in rows]

        found: list[Order] = await self.store.submit(job)
        return [o for o in found if meters is None or o.meter_id in meters]

    async def cancel(self, orders: Sequence[Order]) -> list[Order]:
        """Cancel those of ``orders`` still pending (one statement each: a running one is
        not cancelled); returns the cancelled ones, their outcome events published."""
        now = self.clock()
        ids = [o.order_id for o in orders]

        def job(conn: sqlite3.Connection) -> set[str]:
            done: set[str] = set()
            for oid in ids:
                n = conn.execute(
                    "UPDATE effective_order SET state='cancelled', finished=?, "
                    "outcome='cancelled on request' WHERE order_id=? AND "
                    "state='pending'",
                    (now, oid),
                ).rowcount
                if n:
                    done.add(oid)
            return done

        cancelled = await self.store.submit(job)
        out = [
            replace(o, state="cancelled", finished=now, outcome="cancelled on request")
            for o in orders
            if o.order_id in cancelled
        ]
        for o in out:
            log.info("order_cancelled", order_id=o.order_id, kind=o.kind, meter_id=o.meter_id)
            await self._publish(o, "cancelled", "cancelled on request before it ran")
        return out

    async def listing(
        self,
        noun: str,
        *,
        kinds: Sequence[str],
        states: Sequence[str],
        meters: Sequence[str] | None,
        after: Order | None,
        limit: int,
    ) -> list[Order]:
        """At most ``limit`` orders of ``noun`` in ``states`` (of ``kinds``, of ``meters``
        when given), by effective time then id, those after ``after`` (the last of the
        previous page)."""
        where = [
            "noun=?",
            f"kind IN ({','.join('?' * len(kinds))})",
            f"state IN ({','.join('?' * len(states))})",
        ]
        args: list[object] = [noun, *kinds, *states]
        if meters is not None:
            where.append(f"meter_id IN ({','.join('?' * len(meters))})")
            args.extend(meters)
        if after is not None:
            where.append("(due > ? OR (due = ? AND order_id > ?))")
            args.extend((after.due, after.due, after.order_id))
        sql = (
            f"SELECT {_COLUMNS} FROM effective_order WHERE {' AND '.join(where)} "
            "ORDER BY due, order_id LIMIT ?"
        )

        def job(conn: sqlite3.Connection) -> list[Order]:
            return [Order(*r) for r in conn.execute(sql, (*args, limit))]

        found: list[Order] = await self.store.submit(job)
        return found

    async def pending(self) -> list[Order]:
        def job(conn: sqlite3.Connection) -> list[Order]:
            return [
                Order(*r)
                for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM effective_order WHERE state IN ('pending','running')"
                    " ORDER BY due, order_id"
                )
            ]

        result: list[Order] = await self.store.submit(job)
        return result

    async def get(self, order_id: str) -> Order | None:
        def job(conn: sqlite3.Connection) -> list[Order]:
            return [
                Order(*r)
                for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM effective_order WHERE order_id=?", (order_id,)
                )
            ]

        found: list[Order] = await self.store.submit(job)
        return found[0] if found else None

    # -- the runner ------------------------------------------------------------------------
    async def run(self, ready: asyncio.Event | None = None, settle_s: float = 3.0) -> None:
        """Run orders as they fall due, until cancelled."""

        def reset(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "UPDATE effective_order SET state='pending' WHERE state='running'"
                ).rowcount
            )

        again = await self.store.submit(reset)
        if again:
            log.warning("orders_interrupted_run_again", count=again)
        if ready is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 30.0)
            await asyncio.sleep(settle_s)
        try:
            while True:
                self._wake.clear()
                delay = await self.run_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(delay, 60.0))
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_due(self) -> float:
        """Start every due order (expire those past the grace); returns the seconds until
        the next one is due."""
        now = self.clock()
        grace = self.grace_s

        def take(conn: sqlite3.Connection) -> tuple[list[Order], list[Order], float | None]:
            rows = [
                Order(*r)
                for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM effective_order WHERE state='pending' AND next_try<=?"
                    " ORDER BY next_try, order_id LIMIT 256",
                    (now,),
                )
            ]
            run, late = [], []
            for o in rows:
                # a retry runs at its time (it was set within the grace), unless long after
                if now > o.due + grace and (o.attempts == 0 or now > o.next_try + 60.0):
                    conn.execute(
                        "UPDATE effective_order SET state='expired', finished=?, "
                        "outcome=? WHERE order_id=?",
                        (now, "expired", o.order_id),
                    )
                    late.append(o)
                else:
                    conn.execute(
                        "UPDATE effective_order SET state='running' WHERE order_id=?", (o.order_id,)
                    )
                    run.append(o)
            nxt = conn.execute(
                "SELECT MIN(next_try) FROM effective_order WHERE state='pending'"
            ).fetchone()[0]
            return run, late, nxt

        run, late, nxt = await self.store.submit(take)
        for o in late:
            log.warning(
                "order_expired",
                order_id=o.order_id,
                kind=o.kind,
                meter_id=o.meter_id,
                effective=o.effective,
            )
            await self._publish(
                o,
                "expired",
                f"not run: due {o.effective}, the gateway "
                f"could run it only {now - o.due:.0f}s later, past "
                f"commands.order_grace = {grace:g}s",
            )
        for o in run:
            task = asyncio.get_running_loop().create_task(
                self._run_one(o), name=f"order:{o.order_id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(run) + len(late) >= 256:
            return 0.0
        return 3600.0 if nxt is None else max(0.0, float(nxt) - self.clock())

    async def _run_one(self, o: Order) -> None:
        async with self._slots:
            try:
                ok, details = await self.execute(o)
            except GatewayStopping:
                await self._set(o.order_id, "pending", None, None)  # runs after the restart
                return
            except RETRYABLE as exc:
                attempts = o.attempts + 1
                text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                retry_at = self.clock() + self.retry_delay(attempts)
                if retry_at <= o.due + self.grace_s:
                    log.info("order_retry", order_id=o.order_id, attempts=attempts, error=text)
                    await self._set(o.order_id, "pending", None, None, retry_at, attempts)
                    self._wake.set()
                    return
                ok, details = (
                    False,
                    f"{text} (tried {attempts} time(s) within "
                    f"commands.order_grace = {self.grace_s:g}s)",
                )
            state = "done" if ok else "failed"
            log.info(
                "order_finished",
                order_id=o.order_id,
                kind=o.kind,
                meter_id=o.meter_id,
                state=state,
                details=details[:200],
            )
            await self._publish(o, state, details)
            await self._set(o.order_id, state, self.clock(), details[:1000])

    async def _set(
        self,
        order_id: str,
        state: str,
        finished: float | None,
        outcome: str | None,
        next_try: float | None = None,
        attempts: int | None = None,
    ) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE effective_order SET state=?, finished=?, outcome=?, "
                "next_try=COALESCE(?, next_try), attempts=COALESCE(?, attempts) "
                "WHERE order_id=?",
                (state, finished, outcome, next_try, attempts, order_id),
            )

        try:
            await self.store.submit(job)
        except StoreClosed:
            log.warning("order_state_not_saved", order_id=order_id, state=state)

    async def _publish(self, o: Order, state: str, details: str) -> None:
        try:
            await self.publish(o, state, details)
        except (sqlite3.Error, StoreClosed) as exc:
            log.error("order_outcome_not_published", order_id=o.order_id, error=str(exc))
