"""The uplink: the aiomqtt (MQTT v5) loop around the outbox and the command journal.

:class:`Uplink` is what the daemon uses. It connects with a retained ``offline`` will,
subscribes ``cmd/+`` (QoS 1, persistent session), publishes ``online`` retained, drains
the outbox by priority with a bounded number of QoS 1 publishes in flight, and
reconnects with exponential backoff.

Two things aiomqtt 2.x does not do are done here on its paho client:

* PUBACK reason codes: aiomqtt drops them, so a publish refused by the broker's ACL
  (v5 reason code 0x87) would look delivered. We publish through paho directly and
  wrap paho's ``on_publish`` (chaining aiomqtt's own), so every PUBACK's reason code
  reaches us; a failure code moves the message to the dead-letter table.
* Manual acknowledgement: aiomqtt has no ``manual_ack``; paho has
  ``manual_ack_set(True)`` and ``ack(mid, qos)``. We switch it on before connecting and
  send the PUBACK of a request only after the journal has committed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.config import UplinkConfig
from smmc_gateway.uplink.envelope import Draft, Event, MeterReadingPart, Reading, ReplyError
from smmc_gateway.uplink.journal import AlreadyReplied, Command, CommandJournal
from smmc_gateway.uplink.outbox import Outbox, OutboxRow
from smmc_gateway.uplink.requests import BadRequest, parse_request
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics

log = structlog.get_logger("smmc_gateway.uplink")


@dataclass(frozen=True)
class Outcome:
    """What a command handler returns; becomes the reply."""

    result: str = "OK"
    payload: Mapping[str, Any] = field(default_factory=dict)
    errors: Sequence[ReplyError] = ()


CommandHandler = Callable[[str, str, dict[str, Any]], Awaitable[Outcome]]
"""``async handler(noun, verb, payload) -> Outcome``."""


@dataclass
class UplinkCounters:
    """Plain counters for the metrics layer."""

    connects: int = 0
    connect_failures: int = 0
    published: int = 0
    refused: int = 0
    commands: int = 0
    duplicate_commands: int = 0
    bad_commands: int = 0
    unanswerable_commands: int = 0


class _Stopped(Exception):
    """Raised inside the session task group to end it after a clean stop."""


class Uplink:
    """The MQTT uplink of one gateway.

    ``handler`` serves valid requests; ``on_refused(row, reason_code)`` is called when the
    broker refuses a publish; ``on_drop(class, n)`` when telemetry ages out.
    """

    def __init__(
        self,
        config: UplinkConfig,
        handler: CommandHandler | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[OutboxRow, int], None] | None = None,
        on_drop: Callable[[envelope.MessageClass, int], None] | None = None,
        on_bad_command: Callable[[BadRequest], None] | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.gateway_id)
        self.handler = handler
        self.on_refused = on_refused
        self.on_bad_command = on_bad_command
        self.counters = UplinkCounters()
        self.connected = asyncio.Event()
        self.store = Store(config.db_path)
        self.outbox = Outbox.open(self.store, config.gateway_id, config.limits, clock, on_drop)
        self.journal = CommandJournal(self.store, clock)
        self._wake = asyncio.Event()  # the sender has work: something was stored or acked
        self._progress = asyncio.Event()  # a publish finished (for stop's flush)
        self._stopping = asyncio.Event()
        self._stop_deadline = 0.0
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}
        self._dispatches: set[asyncio.Task[None]] = set()

    # -- outbound API ---------------------------------------------------------------
    async def publish(
        self,
        drafts: Sequence[Draft],
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> list[str]:
        """Store drafts durably (one transaction, with ``also(conn)`` atomically in it,
        e.g. a caller's own "published" mark) and wake the sender; return messageIds."""
        ids = await self.outbox.add_many(drafts, also=also)
        self._wake.set()
        return ids

    async def publish_reading(
        self,
        meter: str,
        readings: Sequence[Reading] = (),
        interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
        message_id: str | None = None,
    ) -> str:
        """MeterReadings of one meter; ``interval_blocks`` may be pre-rendered JSON bytes.

        ``message_id`` (optional, caller-chosen and deterministic) makes a repeated
        publish of the same data store nothing new while the first is pending."""
        draft = envelope.meter_readings(self.topics, meter, readings, interval_blocks, message_id)
        return (await self.publish([draft]))[0]

    async def publish_bulk(self, parts: Sequence[MeterReadingPart]) -> str:
        return (await self.publish([envelope.bulk_readings(self.topics, parts)]))[0]

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str:
        return (await self.publish([envelope.end_device_events(self.topics, meter, events)]))[0]

    async def publish_reply(
        self,
        noun: str,
        verb: str,
        correlation_id: str,
        result: str,
        errors: Sequence[ReplyError] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """The one reply to a request; marks it replied in the journal atomically.

        Raises :class:`AlreadyReplied` (and stores nothing) if it was already answered."""
        draft = envelope.reply(self.topics, noun, correlation_id, result, errors, payload)
        ids = await self.outbox.add_many(
            [draft], also=self.journal.mark_replied_sql(correlation_id, noun, verb, result)
        )
        self._wake.set()
        return ids[0]

    async def status(self) -> dict[str, Any]:
        """Live view: connection, backlog per class, counters."""
        backlog = await self.outbox.backlog()
        return {
            "gateway": self.config.gateway_id,
            "connected": self.connected.is_set(),
            "backlog": {c.name: asdict(b) for c, b in backlog.items()},
            "counters": asdict(self.counters),
            "outbox": {
                "stored": self.outbox.counters.stored,
                "acked": self.outbox.counters.acked,
                "dead_lettered": self.outbox.counters.dead_lettered,
                "dropped": {c.name: n for c, n in self.outbox.counters.dropped.items()},
            },
        }

    # -- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until :meth:`stop`; re-dispatches requests left unreplied by a restart."""
        for cmd in await self.journal.unreplied():
            log.info("command_redispatch", correlation_id=cmd.correlation_id, noun=cmd.noun)
            self._spawn_dispatch(cmd)
        backoff = self.config.backoff_min_s
        try:
            while not self._stopping.is_set():
                connects = self.counters.connects
                stopped = False
                try:
                    await self._session()
                except* _Stopped:
                    stopped = True
                except* (aiomqtt.MqttError, OSError, ValueError) as group:
                    self.counters.connect_failures += 1
                    log.warning(
                        "uplink_disconnected",
                        error=repr(group.exceptions[0]),
                        retry_in_s=round(backoff, 2),
                    )
                if stopped:
                    break
                if self.counters.connects != connects:  # it was up: start backing off anew
                    backoff = self.config.backoff_min_s
                delay = backoff * random.uniform(0.8, 1.2)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                backoff = min(backoff * 2, self.config.backoff_max_s)
        finally:
            for task in self._dispatches:
                task.cancel()
            await asyncio.gather(*self._dispatches, return_exceptions=True)
            await self.store.close()

    async def stop(self, deadline_s: float = 5.0) -> None:
        """Ask :meth:`run` to flush the outbox (for at most ``deadline_s``) and return."""
        self._stop_deadline = time.monotonic() + deadline_s
        self._stopping.set()
        self._wake.set()

    # -- one connection -------------------------------------------------------------
    def _status_payload(self, state: str) -> bytes:
        since = envelope.utc_iso(datetime.now(UTC))
        return json.dumps(
            {"state": state, "gateway": self.config.gateway_id, "since": since}
        ).encode()

    def _make_client(self) -> aiomqtt.Client:
        cfg = self.config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        tls = None
        if cfg.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.tls.ca),
                certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
                keyfile=str(cfg.tls.key) if cfg.tls.key else None,
            )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id or f"smmc-gw-{cfg.gateway_id}",
            username=cfg.username,
            password=cfg.read_password(),
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=cfg.keepalive_s,
            timeout=cfg.connect_timeout_s,
            tls_params=tls,
            max_inflight_messages=cfg.max_inflight,
            will=aiomqtt.Will(
                self.topics.status(), self._status_payload("offline"), qos=1, retain=True
            ),
        )
        inner: paho.Client = client._client
        inner.manual_ack_set(True)
        chained = inner.on_publish

        def on_publish(
            c: paho.Client, userdata: Any, mid: int, rc: ReasonCode, properties: Properties
        ) -> None:
            fut = self._acks.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(rc)
            if chained is not None:
                chained(c, userdata, mid, rc, properties)  # type: ignore[call-arg]

        inner.on_publish = on_publish
        return client

    async def _publish_raw(
        self, client: aiomqtt.Client, topic: str, payload: bytes, retain: bool
    ) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason code."""
        inner: paho.Client = client._client
        info = inner.publish(topic, payload, qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, f"could not publish to {topic}")
        fut: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = fut
        try:
            async with asyncio.timeout(self.config.publish_timeout_s):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError(
                f"no PUBACK for {topic} within {self.config.publish_timeout_s}s"
            ) from None
        finally:
            self._acks.pop(info.mid, None)

    async def _session(self) -> None:
        client = self._make_client()
        try:
            async with client:
                self.counters.connects += 1
                # Subscribe before announcing "online": a central system that
                # sends a command as soon as it sees online must find us listening
                # (on a first start there is no persistent session to queue it).
                await client.subscribe(self.topics.commands(), qos=1)
                self.connected.set()
                log.info("uplink_connected", host=self.config.host, port=self.config.port)
                rc = await self._publish_raw(
                    client, self.topics.status(), self._status_payload("online"), True
                )
                if rc.is_failure:
                    log.error("status_refused", reason=str(rc), code=rc.value)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._drain(client, tg))
                    tg.create_task(self._receive(client))
                    tg.create_task(self._watch_stop(client))
        finally:
            self.connected.clear()
            for fut in self._acks.values():
                fut.cancel()
            self._acks.clear()

    async def _watch_stop(self, client: aiomqtt.Client) -> None:
        await self._stopping.wait()
        while time.monotonic() < self._stop_deadline:
            depth = sum(b.depth for b in (await self.outbox.backlog()).values())
            if depth == 0:
                break
            self._progress.clear()
            try:
                async with asyncio.timeout(max(0.0, self._stop_deadline - time.monotonic())):
                    await self._progress.wait()
            except TimeoutError:
                break
        await self._publish_raw(client, self.topics.status(), self._status_payload("offline"), True)
        raise _Stopped

    # -- outbound: drain the outbox -------------------------------------------------
    async def _drain(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        inflight: set[int] = set()
        last_expire = 0.0
        while True:
            self._wake.clear()
            if time.monotonic() - last_expire >= self.config.expire_interval_s:
                await self.outbox.expire()
                last_expire = time.monotonic()
            free = self.config.max_inflight - len(inflight)
            rows = await self.outbox.next_batch(free, inflight) if free > 0 else []
            for row in rows:
                inflight.add(row.id)
                tg.create_task(self._send(client, row, inflight))
            if not rows or free <= len(rows):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.expire_interval_s):
                        await self._wake.wait()

    async def _send(self, client: aiomqtt.Client, row: OutboxRow, inflight: set[int]) -> None:
        rc = await self._publish_raw(client, row.topic, row.payload, row.retain)
        if rc.is_failure:
            await self.outbox.dead_letter(row.id, rc.value, str(rc))
            self.counters.refused += 1
            log.error(
                "publish_refused",
                topic=row.topic,
                message_id=row.message_id,
                reason=str(rc),
                code=rc.value,
            )
            if self.on_refused is not None:
                self.on_refused(row, rc.value)
        else:
            await self.outbox.ack(row.id)
            self.counters.published += 1
        inflight.discard(row.id)
        self._wake.set()
        self._progress.set()

    # -- inbound: requests ----------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        inner: paho.Client = client._client
        async for msg in client.messages:
            body = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            cdata = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
            await self._on_request(str(msg.topic), body, cdata)
            if msg.qos > 0:
                inner.ack(msg.mid, msg.qos)  # only now: the request is durable

    async def _on_request(self, topic: str, body: bytes, cdata: bytes | None) -> None:
        req = parse_request(self.topics, topic, body, self.config.nouns, cdata)
        if isinstance(req, BadRequest):
            self.counters.bad_commands += 1
            if self.on_bad_command is not None:
                self.on_bad_command(req)
            if req.correlation_id is None:
                self.counters.unanswerable_commands += 1
                log.warning("command_unanswerable", topic=topic, code=req.code, details=req.details)
                return
            if await self.journal.is_replied(req.correlation_id) is not None:
                self.counters.duplicate_commands += 1
                return
            log.warning(
                "command_refused",
                topic=topic,
                correlation_id=req.correlation_id,
                code=req.code,
                details=req.details,
            )
            await self.publish_reply(
                req.noun,
                req.verb,
                req.correlation_id,
                "FAILED",
                [{"code": req.code, "details": req.details}],
            )
            return
        if not await self.journal.record(req):
            self.counters.duplicate_commands += 1
            log.info("command_duplicate", correlation_id=req.correlation_id, noun=req.noun)
            return
        self.counters.commands += 1
        self._spawn_dispatch(req)

    def _spawn_dispatch(self, cmd: Command) -> None:
        task = asyncio.get_running_loop().create_task(self._dispatch(cmd))
        self._dispatches.add(task)
        task.add_done_callback(self._dispatches.discard)

    async def _dispatch(self, cmd: Command) -> None:
        if self.handler is None:
            outcome = Outcome(
                "FAILED",
                errors=[{"code": "NoHandler", "details": "this gateway serves no commands"}],
            )
        else:
            try:
                outcome = await self.handler(cmd.noun, cmd.verb, cmd.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("command_handler_failed", correlation_id=cmd.correlation_id)
                outcome = Outcome(
                    "FAILED",
                    errors=[{"code": "HandlerError", "details": f"{type(exc).__name__}: {exc}"}],
                )
        try:
            await self.publish_reply(
                cmd.noun,
                cmd.verb,
                cmd.correlation_id,
                outcome.result,
                outcome.errors,
                outcome.payload,
            )
        except AlreadyReplied:
            log.warning("command_already_replied", correlation_id=cmd.correlation_id)
