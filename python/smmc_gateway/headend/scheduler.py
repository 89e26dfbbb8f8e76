"""The scheduler: who talks to which meter when, within the session limits.

* Every meter session goes through :meth:`Scheduler.session`: one session at a time
  per meter, one per serial bus, at most ``max_tcp_sessions`` TCP sessions; slots
  are granted by :class:`~smmc_gateway.headend.gates.Priority` (commands, then
  alarms, then reads), and a share of the TCP slots (``reserved_for_collection``,
  rounded up, at least one slot left for commands) is never taken by commands or
  alarms, so scheduled collection goes on under a flood of commands. Failures are
  recorded in the meter's state.
* Periodic jobs (:meth:`Scheduler.every`) run per meter from ONE timer heap, not a
  task or thread per meter: each meter gets a stable jitter (a hash of its id) so
  a fleet does not start all at once; a meter whose last success is older than
  its period (a restart, an outage) is due at once, and the job itself resumes
  from the persisted state (back-fill). At most ``max_pending`` jobs are started
  ahead of the gates.
* Timed jobs (:meth:`Scheduler.at_times`, the MeterReadSchedule reads) run for the meters
  they name at the times their ``next_due`` gives (a window and its own jitter: see
  :mod:`~smmc_gateway.headend.read_schedules`), from the same heap; they can be replaced
  and removed by name while the scheduler runs (:meth:`Scheduler.remove`).
* :meth:`Scheduler.stop` stops taking work, lets running sessions finish (or
  cancels them at the deadline: the session's close releases the association),
  and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from smmc_gateway.dlms.session import ClientSession, DataAccessError, SessionError
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.gates import Gate, Priority, reserved_slots
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config_model import SerialConnection

log = structlog.get_logger("smmc_gateway.scheduler")

MeterJob = Callable[[str], Awaitable[None]]
"""``async job(meter_id)`` run by a periodic schedule."""


class GatewayStopping(RuntimeError):
    """The gateway is shutting down and takes no new work."""


NextDue = Callable[[str, float], float | None]
"""``next_due(meter_id, after)``: the first run strictly after ``after`` (None: no more)."""


@dataclass
class _Periodic:
    name: str
    period_s: float
    jitter_s: float
    job: MeterJob
    last_success: Callable[[str], float | None]
    next_due: NextDue | None = None


def stable_jitter(meter_id: str, name: str, span: float) -> float:
    """A per-meter offset in [0, span) that is the same on every start."""
    if span <= 0:
        return 0.0
    h = int.from_bytes(
        hashlib.blake2b(f"{name}/{meter_id}".encode(), digest_size=8).digest(), "big"
    )
    return (h / 2**64) * span


class Scheduler:
    """Session slots and periodic jobs for one fleet."""

    def __init__(
        self,
        fleet: Fleet,
        sessions: SessionFactory,
        *,
        max_tcp_sessions: int = 64,
        max_pending: int | None = None,
        clock: Callable[[], float] = time.time,
        retry_attempts: int = 3,
        backoff_initial_s: float = 5.0,
        backoff_max_s: float = 600.0,
        backoff_multiplier: float = 2.0,
        reserved_for_collection: float = 0.25,
        on_session: Callable[[str, bool, float, int, int], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.sessions = sessions
        self.clock = clock
        self.tcp_gate = Gate(
            "tcp", max_tcp_sessions, reserved_slots(max_tcp_sessions, reserved_for_collection)
        )
        self.bus_gates: dict[str, Gate] = {}
        self._meter_locks: dict[str, asyncio.Lock] = {}
        self._periodic: dict[int, _Periodic] = {}
        self._indexes = itertools.count()
        self._timed: dict[str, int] = {}  # timed jobs by name -> their index
        self._heap: list[tuple[float, int, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._stopping = False
        self._active: set[asyncio.Task[None]] = set()
        self._sessions_open = 0
        self._pending = asyncio.Semaphore(max_pending or max_tcp_sessions * 2 + 8)
        self.retry_attempts = retry_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.backoff_multiplier = backoff_multiplier
        self._failures: dict[tuple[int, str], int] = {}
        self.on_session = on_session
        """``on_session(meter_id, ok, seconds, bytes_sent, bytes_received)`` for metrics."""

    # -- session slots -------------------------------------------------------------
    def gate_for(self, meter_id: str) -> Gate:
        conn = self.fleet.meter(meter_id).connection
        if isinstance(conn, SerialConnection):
            gate = self.bus_gates.get(conn.bus)
            if gate is None:
                gate = self.bus_gates[conn.bus] = Gate(f"bus:{conn.bus}", 1)
            return gate
        return self.tcp_gate

    @property
    def sessions_open(self) -> int:
        return self._sessions_open

    @contextlib.asynccontextmanager
    async def session(
        self, meter_id: str, priority: Priority = Priority.READ, *, save_success: bool = True
    ) -> AsyncIterator[ClientSession]:
        """An open session with ``meter_id`` once its slot is granted; closed on exit.
        A failure (``SessionError`` or ``OSError``) is recorded in the meter's state and
        saved; so is a success, unless ``save_success`` is False: then the caller saves the
        state (recorded here) with its own writes (a collection: in its last transaction)."""
        if self._stopping:
            raise GatewayStopping("the gateway is stopping; no new meter sessions")
        meter = self.fleet.meter(meter_id)
        lock = self._meter_locks.setdefault(meter_id, asyncio.Lock())
        gate = self.gate_for(meter_id)
        try:
            async with lock, gate.slot(priority):
                if self._stopping and priority != Priority.COMMAND:
                    raise GatewayStopping("the gateway is stopping; no new meter sessions")
                started = time.monotonic()
                session = self.sessions.session(meter)
                state = self.fleet.state(meter_id)
                self._sessions_open += 1
                ok = False
                try:
                    async with session:
                        yield session
                    ok = True
                except DataAccessError:
                    raise  # the meter answered: it refused one attribute, it is reachable
                except (SessionError, OSError, TimeoutError) as exc:
                    state.record_failure(self.clock(), f"{type(exc).__name__}: {exc}")
                    await self.fleet.save(state)
                    log.warning(
                        "meter_session_failed",
                        meter_id=meter_id,
                        error=str(exc),
                        error_type=type(exc).__name__,
                    )
                    raise
                finally:
                    self._sessions_open -= 1
                    if self.on_session is not None:
                        c = session.counters
                        self.on_session(
                            meter_id, ok, time.monotonic() - started, c.bytes_sent, c.bytes_received
                        )
                state.record_success(self.clock())
                if save_success:
                    await self.fleet.save(state)
        finally:
            if not lock.locked() and not lock._waiters:
                self._meter_locks.pop(meter_id, None)

    # -- periodic jobs -------------------------------------------------------------
    def every(
        self,
        name: str,
        period_s: float,
        job: MeterJob,
        *,
        jitter_s: float = 0.0,
        last_success: Callable[[str], float | None] | None = None,
    ) -> None:
        """Run ``job(meter_id)`` for every meter every ``period_s`` (+ its stable jitter).
        ``last_success(meter_id)`` (epoch seconds) says when it last ran well: older than a
        period, or never, and the meter is due now (spread over ``jitter_s``)."""
        index = next(self._indexes)
        self._periodic[index] = _Periodic(
            name, period_s, jitter_s, job, last_success or (lambda _m: None)
        )
        now = self.clock()
        for meter_id in self.fleet.ids():
            offset = stable_jitter(meter_id, name, jitter_s)
            last = self._periodic[index].last_success(meter_id)
            if last is None or now - last >= period_s:
                due = now + offset * 0.05  # missed: catch up soon, spread a little
            else:
                due = last + period_s + offset
            heapq.heappush(self._heap, (due, next(self._seq), index, meter_id))
        self._wake.set()

    def at_times(self, name: str, meters: Iterable[str], next_due: NextDue, job: MeterJob) -> None:
        """Run ``job(meter_id)`` for each of ``meters`` at ``next_due(meter_id, after)``,
        again and again; a timed job already called ``name`` is replaced (its runs not
        started yet are dropped; a running one finishes)."""
        self.remove(name)
        index = next(self._indexes)
        self._periodic[index] = _Periodic(name, 0.0, 0.0, job, lambda _m: None, next_due)
        self._timed[name] = index
        now = self.clock()
        for meter_id in meters:
            due = next_due(meter_id, now)
            if due is not None:
                heapq.heappush(self._heap, (due, next(self._seq), index, meter_id))
        self._wake.set()

    def remove(self, name: str) -> bool:
        """Drop the timed job ``name`` (its pending runs and retries); False if none."""
        index = self._timed.pop(name, None)
        if index is None:
            return False
        del self._periodic[index]
        self._heap = [e for e in self._heap if e[2] not in (index, -1 - index)]
        heapq.heapify(self._heap)
        self._failures = {k: n for k, n in self._failures.items() if k[0] != index}
        return True

    def timed_jobs(self) -> list[str]:
        return sorted(self._timed)

    def add_meter(self, meter_id: str) -> None:
        """A meter added to the fleet while running (provisioning, reload): its periodic
        jobs (:meth:`every`) are scheduled as they would have been at start; timed jobs
        name their meters themselves."""
        now = self.clock()
        for index, p in self._periodic.items():
            if p.next_due is not None:
                continue
            offset = stable_jitter(meter_id, p.name, p.jitter_s)
            last = p.last_success(meter_id)
            due = (
                now + offset * 0.05
                if last is None or now - last >= p.period_s
                else last + p.period_s + offset
            )
            heapq.heappush(self._heap, (due, next(self._seq), index, meter_id))
        self._wake.set()

    def forget_meter(self, meter_id: str) -> None:
        """A meter removed from the fleet: its pending runs and retries are dropped (a
        running one finishes)."""
        self._heap = [e for e in self._heap if e[3] != meter_id]
        heapq.heapify(self._heap)
        self._failures = {k: n for k, n in self._failures.items() if k[1] != meter_id}

    def due_count(self, horizon_s: float = 0.0) -> int:
        now = self.clock() + horizon_s
        return sum(1 for due, *_ in self._heap if due <= now)

    async def run(self) -> None:
        """Start periodic jobs as they fall due, until :meth:`stop`."""
        while not self._stopping:
            self._wake.clear()
            now = self.clock()
            if self._heap and self._heap[0][0] <= now:
                due, _, index, meter_id = heapq.heappop(self._heap)
                retry = index < 0  # a retry: run once, the regular schedule stays as it is
                index = -1 - index if retry else index
                found = self._periodic.get(index)
                if found is None:  # a timed job removed since
                    continue
                p = found
                if not retry:
                    nxt: float | None
                    if p.next_due is not None:
                        nxt = p.next_due(meter_id, max(due, now))
                    else:
                        nxt = max(due + p.period_s, now + 1.0)
                    if nxt is not None:
                        heapq.heappush(self._heap, (nxt, next(self._seq), index, meter_id))
                await self._pending.acquire()
                if self._stopping:
                    self._pending.release()
                    break
                self._spawn(index, p, meter_id)
                continue
            delay = (self._heap[0][0] - now) if self._heap else 3600.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(delay, 3600.0)))

    def retry_delay(self, failures: int) -> float:
        """Backoff before retry number ``failures`` (1-based)."""
        return min(
            self.backoff_max_s, self.backoff_initial_s * self.backoff_multiplier ** (failures - 1)
        )

    def _spawn(self, index: int, p: _Periodic, meter_id: str) -> None:
        key = (index, meter_id)

        async def run() -> None:
            try:
                if index not in self._periodic:  # removed while waiting for a slot
                    return
                await p.job(meter_id)
                self._failures.pop(key, None)
            except GatewayStopping:
                pass
            except (SessionError, OSError, TimeoutError):
                # recorded in the meter's state and logged by session(); retry with backoff
                # (extra entries: the regular schedule is not moved)
                n = self._failures.get(key, 0) + 1
                if n <= self.retry_attempts and index in self._periodic:
                    self._failures[key] = n
                    heapq.heappush(
                        self._heap,
                        (self.clock() + self.retry_delay(n), next(self._seq), -1 - index, meter_id),
                    )
                    self._wake.set()
                else:
                    self._failures.pop(key, None)  # give up until the next period
            except Exception:
                log.exception("job_failed", job=p.name, meter_id=meter_id)
            finally:
                self._pending.release()

        task = asyncio.get_running_loop().create_task(run(), name=f"{p.name}:{meter_id}")
        self._active.add(task)
        task.add_done_callback(self._active.discard)

    async def stop(self, deadline_s: float = 10.0) -> None:
        """Stop taking work; wait for running jobs up to ``deadline_s``, then cancel them."""
        self._stopping = True
        self._wake.set()
        if self._active:
            _, pending = await asyncio.wait(set(self._active), timeout=deadline_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("jobs_cancelled_at_stop", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def active_jobs(self) -> int:
        return len(self._active)
