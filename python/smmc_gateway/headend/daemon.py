"""The gateway daemon: ``smmc-gateway run --config gateway.toml``.

Wires the validated configuration into the parts and runs them in one event loop:
metrics endpoint, invocation-counter store, fleet state, session factory,
scheduler (periodic collection with back-fill, the daily clock sync and bulk
export), the head-end use cases, the command dispatcher and the MQTT uplink;
systemd READY/WATCHDOG/STOPPING through :class:`~smmc_gateway.ops.lifecycle.DaemonLifecycle`.
Audit records of the technician's CLI dropped into ``state_dir/audit-inbox/`` are
uplinked as EndDeviceEvents (:mod:`~smmc_gateway.headend.audit_inbox`, use case 5).

SIGHUP: the configuration files are read again and the meters (with their key files),
models and buses applied live (:mod:`~smmc_gateway.headend.fleet_manager`); an invalid
configuration changes nothing (every problem logged); what changed is logged, set as the
systemd status and published in the retained registry (``smmc/v1/{gw}/registry``,
:mod:`~smmc_gateway.headend.registry`). Meters are also provisioned over MQTT
(EndDeviceConfig create/change/delete) and their keys escrowed
(:mod:`~smmc_gateway.headend.escrow`) when configured.

A broker refusal retrying cannot fix (bad credentials, not authorised, banned ...) stops
the daemon with exit code 3 (:data:`EXIT_BROKER`) naming the reason.

SIGTERM/SIGINT: stop taking work (no new sessions), let running sessions finish
(cancelled at the deadline: a command cut short stays unreplied in the journal
and is re-dispatched on the next start), flush the outbox to the broker for a
bounded time (what is not sent stays durable for the next start), close the
stores, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import structlog

from smmc_gateway.dlms.push import PushEvent, PushListener
from smmc_gateway.headend.audit_inbox import AuditInbox
from smmc_gateway.headend.commands.provisioning import EscrowCommands, ProvisioningCommands
from smmc_gateway.headend.dispatcher import Dispatcher
from smmc_gateway.headend.escrow import Escrow
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.fleet_manager import FleetChange, FleetManager
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.provisioning import ProvisionStore
from smmc_gateway.headend.pushes import (
    NOFILE_MARGIN,
    PushRouting,
    ensure_nofile,
    resolve_hosts,
    tcp_hosts,
)
from smmc_gateway.headend.registry import Registry
from smmc_gateway.headend.scheduler import GatewayStopping, Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import BatchedCounterStore, SessionFactory
from smmc_gateway.ops.config_model import GatewayConfig
from smmc_gateway.ops.lifecycle import DaemonLifecycle
from smmc_gateway.ops.metrics import GatewayMetrics, MetricsServer
from smmc_gateway.ops.notify import LoopHealth
from smmc_gateway.runtime import running_loop_name, settle_heap
from smmc_gateway.uplink import ClassLimit, MessageClass, TlsFiles, Uplink, UplinkConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.config import TlsSetupError
from smmc_gateway.uplink.reasons import BrokerRefused
from smmc_gateway.usecases.clock import SystemTimeSource, TimeSource

log = structlog.get_logger("smmc_gateway.daemon")

_CLASS_OF = {"readings": MessageClass.TELEMETRY, "bulk": MessageClass.BULK}
EXIT_TLS = 2
"""Exit code of a TLS set-up that cannot work (like a configuration error)."""
EXIT_BROKER = 3
"""Exit code of a broker refusal retrying cannot fix (bad credentials, not authorised,
banned ...): systemd restarts the service with its back-off, the journal says why."""


@dataclass
class DaemonOptions:
    """Knobs that are not in the TOML file (tests, the demo)."""

    time_source: TimeSource | None = None
    stop_deadline_s: float = 10.0
    flush_deadline_s: float = 5.0
    first_read_s: float = 86400.0
    stop_event: asyncio.Event | None = None
    """Besides SIGTERM/SIGINT, setting this stops the daemon (in-process use)."""
    audit_interval_s: float = 30.0
    """How often ``state_dir/audit-inbox/`` is scanned for CLI audit records."""


def uplink_config(config: GatewayConfig) -> UplinkConfig:
    b = config.broker
    # [broker.tls] present = TLS on, with the system's CAs when it names no ca
    tls = None if b.tls is None else TlsFiles(b.tls.ca, b.tls.cert, b.tls.key)
    limits = {
        _CLASS_OF[name]: ClassLimit(c.ttl_s, c.max_messages)
        for name, c in config.outbox.classes.items()
        if name in _CLASS_OF and c.droppable and (c.ttl_s or c.max_messages)
    }
    c = config.commands
    return UplinkConfig(
        gateway_id=config.gateway.id,
        db_path=config.outbox.path,
        host=b.host,
        port=b.port,
        client_id=b.client_id or None,
        username=b.username,
        password_file=b.password_file,
        tls=tls,
        keepalive_s=b.keepalive_s,
        limits=limits,
        max_concurrent=c.max_concurrent,
        max_queued=c.max_queued,
        max_attempts=c.max_attempts,
        command_timeout_s=c.timeout_s,
        max_reply_bytes=c.max_reply_bytes,
        max_request_bytes=c.max_request_bytes,
        journal_retention_s=c.journal_retention_s,
    )


def seconds_until(at: dt.time, now: dt.datetime) -> float:
    """Seconds from ``now`` (aware, UTC) to the next ``at`` (UTC time of day)."""
    target = now.replace(hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    return (target - now).total_seconds()


async def _daily(at: dt.time, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds_until(at, dt.datetime.now(dt.UTC)))
        try:
            await job()
        except Exception:
            log.exception("daily_job_failed", job=name)


class Gateway:
    """All parts of one running gateway (built by :meth:`start`, torn down by :meth:`close`)."""

    def __init__(self, config: GatewayConfig, options: DaemonOptions | None = None) -> None:
        self.config = config
        self.options = options or DaemonOptions()
        self.metrics = GatewayMetrics()
        self.metrics_server: MetricsServer | None = None
        self.tasks: list[asyncio.Task[object]] = []
        self._push_refused_seen = 0
        self._refusals_seen: dict[str, int] = {}

    async def start(self) -> None:
        cfg = self.config
        state_dir = Path(cfg.gateway.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
        cfg.outbox.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_nofile(
            cfg.limits.max_tcp_sessions
            + NOFILE_MARGIN
            + (cfg.push.max_connections if cfg.push.enabled else 0)
        )
        if cfg.metrics.enabled:  # loopback unless [metrics] address says otherwise
            self.metrics_server = self.metrics.serve(cfg.metrics.address, cfg.metrics.port)
        self.ic_store = BatchedCounterStore(str(state_dir / "invocation-counters.sqlite"))
        self.fleet = await Fleet.open(cfg.meters, state_dir / "fleet.sqlite")
        sessions = SessionFactory(
            dict(cfg.buses),
            system_title=cfg.gateway.client_system_title,
            ic_store=self.ic_store,
            response_timeout=cfg.limits.response_timeout_s,
            models=cfg.models,
            max_block_transfer=cfg.limits.max_block_transfer,
        )
        sessions.observer = self.metrics  # quirks taken, stale associations recovered
        self.scheduler = Scheduler(
            self.fleet,
            sessions,
            max_tcp_sessions=cfg.limits.max_tcp_sessions,
            retry_attempts=cfg.limits.retry_attempts,
            backoff_initial_s=cfg.limits.backoff_initial_s,
            backoff_max_s=cfg.limits.backoff_max_s,
            backoff_multiplier=cfg.limits.backoff_multiplier,
            reserved_for_collection=cfg.limits.reserved_for_collection,
            on_session=self._on_session,
        )
        # Meters provisioned over MQTT join the files' before any job is scheduled.
        self.manager = FleetManager(
            cfg, self.fleet, self.scheduler, sessions, ProvisionStore(self.fleet.store)
        )
        await self.manager.start()
        self.metrics.meters_configured.set(len(self.fleet))
        self.uplink = Uplink(uplink_config(cfg), None, on_drop=self._on_drop)
        # one models mapping for the head-end and the sessions: a reload updates it in place
        self.headend = HeadEnd(
            self.fleet,
            self.scheduler,
            self.uplink,
            sessions.models,
            time_source=self.options.time_source or SystemTimeSource(),
            tolerance_s=cfg.schedules.clock_tolerance_s,
            shift_limit_s=cfg.schedules.clock_shift_limit_s,
            metrics=self.metrics,
            first_read_s=self.options.first_read_s,
            retention_days=cfg.datastore.retention_days,
            export=cfg.export,
            drift_threshold_s=cfg.schedules.clock_drift_threshold_s,
            drift_min_interval_s=cfg.schedules.clock_drift_min_interval_s,
        )
        self.dispatcher = Dispatcher(self.headend, commands=cfg.commands)
        dispatcher = self.dispatcher
        self.escrow: Escrow | None = None
        if cfg.escrow is not None:
            self.escrow = Escrow(
                cfg.escrow,
                self.fleet,
                sessions.key_journal,
                self.uplink,
                self.uplink.topics,
                self.fleet.store,
            )
            escrow = self.escrow
            sessions.on_key_confirmed = lambda _meter: escrow.wake.set()
        dispatcher.discovery.provisioning = ProvisioningCommands(
            self.manager, cfg.commands, dispatcher.read_schedules
        )
        dispatcher.discovery.escrow = EscrowCommands(self.escrow, cfg.commands)
        self.registry = Registry(
            self.manager,
            self.uplink,
            self.uplink.topics,
            interval_s=self.uplink.config.status_interval_s,
        )
        self.uplink.on_status = self.registry.on_status
        self.manager.listeners += [self.registry.on_change, self._on_fleet_change]

        async def handle(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
            outcome = await dispatcher(noun, verb, payload)
            self.metrics.commands.labels(noun=noun, result=outcome.result).inc()
            return outcome

        self.uplink.handler = handle
        s = cfg.schedules

        async def collect(meter_id: str) -> None:
            await self.headend.collect(meter_id)

        self.scheduler.every(
            "collect",
            s.load_profile_every_s,
            collect,
            jitter_s=s.load_profile_jitter_s,
            last_success=lambda m: _ts(self.fleet.state(m).last_entry),
        )
        # Use case 7: the meters' event logs, polled by range from where the last poll stopped.
        self.headend.schedule_events(
            s.events_every_s, jitter_s=min(s.load_profile_jitter_s, s.events_every_s / 2)
        )
        # Use case 4: the HAN devices on the meters' M-Bus, polled at the same period as a
        # backstop for the alarm pushes that report a device joining or lost
        self.dispatcher.han.schedule(
            s.events_every_s, jitter_s=min(s.load_profile_jitter_s, s.events_every_s / 2)
        )
        self.push_listener: PushListener | None = None
        if cfg.push.enabled:
            addresses = await resolve_hosts(tcp_hosts(self.fleet.meters()))
            routing = PushRouting(
                self.fleet.meters(),
                journal=sessions.key_journal,
                addresses=addresses,
                models=sessions.models,  # the live models a reload updates
            )

            async def on_push(event: PushEvent) -> None:
                # The notification itself, plus named alarms (outage, restoration, limiter
                # trip …) for the alarm-register bits newly set in it; through the head-end's
                # publisher so the data store keeps them too (use cases 3 and 11).
                await self.headend.publisher.publish_event(
                    event.meter_id, [routing.event(event), *self.headend.alarm_events(event)]
                )
                self.dispatcher.han.on_push(event)  # a HAN device joined or was lost
                self.metrics.push_notifications.labels(result="accepted").inc()

            p = cfg.push
            self.push_listener = PushListener(
                routing.lookup,
                on_push,
                host=p.address,
                port=p.port,
                ic_store=self.ic_store,
                max_connections=p.max_connections,
                max_per_peer=p.max_per_peer,
                first_frame_timeout=p.first_frame_timeout_s,
                idle_timeout=p.idle_timeout_s,
                allowed_peers=routing.peers(p.allow_from),
                on_close=lambda reason: self.metrics.push_connections_closed.labels(
                    reason=reason
                ).inc(),
                observer=self.metrics,  # quirks taken in pushes
            )
            await self.push_listener.start()
            self.manager.attach_push(routing, self.push_listener, p.allow_from, addresses)
        if s.registers_every_s < s.load_profile_every_s:
            # registers also come with every profile collection; in between, on their own
            self._registers_read: dict[str, float] = {}

            async def registers(meter_id: str) -> None:
                await self.headend.read_registers(meter_id)
                self._registers_read[meter_id] = time.time()

            self.scheduler.every(
                "registers",
                s.registers_every_s,
                registers,
                jitter_s=min(s.load_profile_jitter_s, s.registers_every_s / 2),
                last_success=lambda m: self._registers_read.get(m, time.time()),
            )
        loop = asyncio.get_running_loop()
        self.uplink_task = loop.create_task(self.uplink.run(), name="uplink")
        self.scheduler_task = loop.create_task(self.scheduler.run(), name="scheduler")
        self.tasks = [
            loop.create_task(
                _daily(s.clock_sync_at, self.sync_all_clocks, "clock_sync"), name="clock_sync"
            ),
            loop.create_task(
                _daily(s.bulk_export_at, self.headend.bulk_export, "bulk_export"),
                name="bulk_export",
            ),
            loop.create_task(self._metrics_loop(), name="metrics"),
        ]
        # Use case 1: discover the meters never discovered (new in the configuration), once,
        # at the lowest priority, so scheduled reads and commands go first.
        self.tasks.append(loop.create_task(self._discover_new(), name="discovery"))
        # Back-fill: days collected but never exported (a restart across midnight).
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        self.tasks.append(
            loop.create_task(self.headend.bulk_export(yesterday), name="bulk_export_backfill")
        )
        # Use case 5: CLI audit records in the inbox go up as EndDeviceEvents.
        self.audit_inbox = AuditInbox(
            state_dir / "audit-inbox", self.uplink, self.options.audit_interval_s
        )
        self.tasks.append(loop.create_task(self.audit_inbox.run(), name="audit_inbox"))
        # Issue 11: MQTT read schedules applied, effective-dated orders run when due.
        self.tasks.append(
            loop.create_task(
                self.dispatcher.background(self.uplink.connected), name="schedules_and_orders"
            )
        )
        # Issue 11: the registry of served meters (retained), key escrow after key changes.
        await self.registry.publish()
        self.tasks.append(loop.create_task(self.registry.run(), name="registry"))
        if self.escrow is not None:
            self.tasks.append(loop.create_task(self.escrow.run(), name="key_escrow"))

    async def _on_fleet_change(self, change: FleetChange) -> None:
        """Metrics, and discovery of the meters just added (at low priority)."""
        self.metrics.meters_configured.set(len(self.fleet))
        if change.added:
            added = list(change.added)

            async def discover() -> None:
                for m in added:
                    if not self.fleet.has(m) or await self.fleet.discovery(m) is not None:
                        continue
                    try:
                        await self.headend.discover(m, Priority.READ)
                    except GatewayStopping:
                        return
                    except Exception as exc:  # unreachable now: tried again on next start
                        log.warning(
                            "discovery_failed", meter_id=m, error=f"{type(exc).__name__}: {exc}"
                        )

            self.tasks.append(asyncio.get_running_loop().create_task(discover()))

    async def reload(self) -> FleetChange:
        """SIGHUP: re-read the configuration files and apply the difference."""
        return await self.manager.reload()

    async def _discover_new(self, idle_wait_s: float = 300.0) -> None:
        # Low priority: the meter lock is first come, first served, so wait until the
        # start-up catch-up (collections, event polls) has run and nothing is due in the
        # next seconds; a fleet that is never idle gets its discovery after idle_wait_s.
        waited = 0.0
        while waited < idle_wait_s and (
            self.scheduler.active_jobs or self.scheduler.due_count(horizon_s=5.0)
        ):
            await asyncio.sleep(0.5)
            waited += 0.5

        async def one(m: str) -> None:
            try:
                await self.headend.discover(m, Priority.READ)
            except GatewayStopping:
                pass
            except Exception as exc:  # unreachable now: tried again on the next start
                log.warning("discovery_failed", meter_id=m, error=f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(m) for m in await self.fleet.undiscovered()))

    async def sync_all_clocks(self) -> None:
        async def one(m: str) -> None:
            with contextlib.suppress(Exception):
                await self.headend.sync_clock(m)

        await asyncio.gather(*(one(m) for m in self.fleet.ids()))

    def _on_session(self, meter_id: str, ok: bool, seconds: float, tx: int, rx: int) -> None:
        kind = self.fleet.meter(meter_id).connection.kind
        self.metrics.session_duration.labels(transport=kind).observe(seconds)
        self.metrics.bytes_sent(kind, tx)
        self.metrics.bytes_received(kind, rx)

    def _on_drop(self, cls: MessageClass, n: int) -> None:
        self.metrics.outbox_dropped.labels(**{"class": cls.name.lower(), "reason": "limit"}).inc(n)

    _REFUSALS: ClassVar[dict[str, str]] = {
        "bad": "bad_commands",
        "unanswerable": "unanswerable_commands",
        "duplicate": "duplicate_commands",
        "busy": "busy_commands",
        "poison": "poison_commands",
        "timeout": "timed_out_commands",
        "reply_too_large": "oversized_replies",
    }

    def _count_refusals(self) -> None:
        """The uplink's plain counters, moved on into smmc_command_refusals_total."""
        seen = self._refusals_seen
        for reason, name in self._REFUSALS.items():
            now = int(getattr(self.uplink.counters, name))
            if now > seen.get(reason, 0):
                self.metrics.command_refusals.labels(reason=reason).inc(now - seen.get(reason, 0))
                seen[reason] = now

    async def _metrics_loop(self) -> None:
        health = self.health
        while True:
            health.beat()
            try:
                backlog = await self.uplink.outbox.backlog()
                for c, b in backlog.items():
                    self.metrics.outbox_depth.labels(**{"class": c.name.lower()}).set(b.depth)
                    self.metrics.outbox_oldest_age.labels(**{"class": c.name.lower()}).set(
                        b.oldest_age_s or 0.0
                    )
            except Exception:  # the store closing at shutdown
                pass
            self.metrics.meters_reachable.set(self.fleet.reachable_count())
            if self.push_listener is not None:
                pc = self.push_listener.counters
                refused = pc.refused_unknown + pc.refused_security + pc.refused_malformed
                counted = self._push_refused_seen
                if refused > counted:
                    self.metrics.push_notifications.labels(result="refused").inc(refused - counted)
                    self._push_refused_seen = refused
            self.metrics.mqtt_connected.set(1 if self.uplink.connected.is_set() else 0)
            self._count_refusals()
            await asyncio.sleep(2.0)

    health = LoopHealth(max_age=30.0)

    async def stop(self) -> None:
        """Stop taking work, finish or cancel sessions, flush the outbox, close stores."""
        log.info("gateway_stopping", active_jobs=self.scheduler.active_jobs)
        if self.push_listener is not None:
            try:
                await asyncio.wait_for(self.push_listener.stop(), STOP_STEP_S)
            except TimeoutError:
                log.error("stop_step_timeout", step="push_listener", timeout_s=STOP_STEP_S)
        await self.scheduler.stop(self.options.stop_deadline_s)
        self.scheduler_task.cancel()
        for t in self.tasks:
            t.cancel()
        # A task that does not end once cancelled must not hang the stop: named, left behind.
        _, stuck = await asyncio.wait({self.scheduler_task, *self.tasks}, timeout=STOP_STEP_S)
        if stuck:
            log.error(
                "stop_step_timeout",
                step="background tasks",
                tasks=sorted(t.get_name() for t in stuck),
                timeout_s=STOP_STEP_S,
            )
        await self.uplink.stop(self.options.flush_deadline_s)
        try:
            await asyncio.wait_for(self.uplink_task, self.options.flush_deadline_s + 10)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("uplink_stop_timeout")
        except (TlsSetupError, BrokerRefused):
            pass  # the uplink ended on something retrying cannot fix: run_daemon reports it
        await self.fleet.close()
        self.ic_store.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        log.info("gateway_stopped")


STOP_STEP_S = 10.0
"""At most this long for the push listener, and for the cancelled background tasks, at
stop (each named in ``stop_step_timeout`` when it does not end)."""


def _ts(moment: dt.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


async def run_daemon(config: GatewayConfig, options: DaemonOptions | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``options.stop_event``); 0 on a clean stop, 2
    (:data:`EXIT_TLS`) when the broker TLS set-up cannot work: a CA, certificate or key
    that cannot be loaded (before anything starts), or a broker certificate that fails
    verification on this process's first connection (logged ``broker_tls_unworkable``)."""
    options = options or DaemonOptions()
    try:  # a TLS set-up that cannot work stops the start here, before anything is opened
        tls = uplink_config(config).tls
        if tls is not None:
            tls.context()
    except TlsSetupError as exc:
        log.error("broker_tls_unworkable", error=str(exc))
        return EXIT_TLS
    gw = Gateway(config, options)
    async with DaemonLifecycle(healthy=Gateway.health) as life:
        started = time.monotonic()
        await gw.start()
        settle_heap()  # the fleet, models and stores live as long as the process
        life.ready(f"serving {len(gw.fleet)} meters as {config.gateway.id}")
        log.info(
            "gateway_ready",
            gateway=config.gateway.id,
            meters=len(gw.fleet),
            startup_s=round(time.monotonic() - started, 3),
            event_loop=running_loop_name(),
        )
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(life.stop_requested.wait())]
        if options.stop_event is not None:
            waits.append(asyncio.ensure_future(options.stop_event.wait()))
        waits.append(asyncio.shield(gw.uplink_task))

        async def reloads() -> None:
            while True:
                await life.reload_requested.wait()
                life.reload_requested.clear()
                change = await gw.reload()
                settle_heap()  # the old configuration's objects collected, the new kept
                life.status(change.summary())

        reloading = asyncio.ensure_future(reloads())
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        reloading.cancel()
        for w in waits:
            w.cancel()
        life.status("stopping: finishing sessions and flushing the outbox")
        await gw.stop()
    task = gw.uplink_task
    if task.done() and not task.cancelled() and isinstance(task.exception(), TlsSetupError):
        log.error("broker_tls_unworkable", error=str(task.exception()))
        return EXIT_TLS
    if task.done() and not task.cancelled() and isinstance(task.exception(), BrokerRefused):
        log.error("broker_refused_exit", error=str(task.exception()), exit_code=EXIT_BROKER)
        return EXIT_BROKER
    return 0
