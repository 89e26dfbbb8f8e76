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

Requests are served under bounds (:class:`~smmc_gateway.uplink.config.UplinkConfig`):
at most ``max_concurrent`` handlers at once and ``max_queued`` waiting, first come first
served (more: FAILED ``Busy`` at once, journaled and replied in one transaction); each
handling under ``command_timeout_s`` (FAILED ``Timeout``; firmware campaigns exempt);
each start of a handling counted in the journal first, so a request that killed the
process ``max_attempts`` times is answered FAILED ``PoisonCommand`` instead of run again
(a clean stop takes its count back); a reply above ``max_reply_bytes`` becomes FAILED
``ReplyTooLarge``. Answered requests are pruned from the journal after
``journal_retention_s``.

Broker refusals (:mod:`~smmc_gateway.uplink.reasons`): every CONNACK is logged with its
reason code by name (``uplink_connack``), every failed PUBACK too (``publish_refused``), and
a DISCONNECT from the broker (``uplink_broker_disconnect``). A CONNACK that retrying cannot
fix (bad credentials, not authorised, banned, a refused client id ...) ends :meth:`Uplink.run`
with :class:`~smmc_gateway.uplink.reasons.BrokerRefused`. A broker without retained
messages (CONNACK 0x9A "Retain not supported" for our retained will, or Retain Available =
0 in its CONNACK) is served without retain: a non-retained will, retained messages
published plain, and the ``online`` status re-published every ``status_interval_s`` so a
consumer that subscribes later learns it; said once per process (``broker_retain_unsupported``).

TLS: one :class:`ssl.SSLContext` is built when the uplink is made (a file that cannot be
used raises :class:`~smmc_gateway.uplink.config.TlsSetupError` then); a broker whose
certificate fails verification before any connection of this process succeeded ends
:meth:`Uplink.run` with :class:`TlsSetupError` instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.config import TlsSetupError, UplinkConfig
from smmc_gateway.uplink.envelope import Draft, Event, MeterReadingPart, Reading, ReplyError
from smmc_gateway.uplink.journal import AlreadyReplied, Attempt, Command, CommandJournal
from smmc_gateway.uplink.outbox import Outbox, OutboxRow
from smmc_gateway.uplink.reasons import BrokerRefused, connack_action, describe, reason_name
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
    busy_commands: int = 0
    poison_commands: int = 0
    timed_out_commands: int = 0
    oversized_replies: int = 0
    journal_pruned: int = 0


#: MQTT 3.1.1 CONNACK return codes as their v5 reason codes (a broker that answers a v5
#: CONNECT in 3.1.1 terms).
_V311_CONNACK = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


class _Stopped(Exception):
    """Raised inside the session task group to end it after a clean stop."""


def _failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


def _verification_error(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a connect error, if that is what it was
    (aiomqtt raises ``MqttError(str(exc)) from None``: the cause stays in ``__context__``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


_CLOCK_DEPENDENT = (9, 10)  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED


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
        self._tls_context = config.tls.context() if config.tls is not None else None
        self.store = Store(config.db_path)
        self.outbox = Outbox.open(self.store, config.gateway_id, config.limits, clock, on_drop)
        self.journal = CommandJournal(self.store, clock)
        self._wake = asyncio.Event()  # the sender has work: something was stored or acked
        self._progress = asyncio.Event()  # a publish finished (for stop's flush)
        self._stopping = asyncio.Event()
        self._stop_deadline = 0.0
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}
        self._dispatches: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.max_concurrent)
        self._admitted = 0  # dispatches not past their handler yet (waiting or running)
        self._running = 0  # of which hold a slot
        self._closing = False  # run() is cancelling its dispatches (stop, or a fatal error)
        self._retain_ok = True  # False once the broker said it keeps no retained messages
        self._connack: int | None = None  # the last CONNACK's reason code
        self.on_status: Callable[[bool], None] | None = None
        """Called with ``retain_available`` after every accepted connection (the registry
        re-publishes itself periodically when the broker keeps nothing retained)."""

    @property
    def retain_available(self) -> bool:
        """False when the broker keeps no retained messages (see the module doc)."""
        return self._retain_ok

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
        """Serve until :meth:`stop`; re-dispatches requests left unreplied by a restart
        (answering FAILED ``PoisonCommand`` those whose handling already died
        ``max_attempts`` times). Raises :class:`TlsSetupError` when the broker's
        certificate fails verification before any connection succeeded."""
        await self._prune()
        for cmd in await self.journal.unreplied():
            if cmd.attempts >= self.config.max_attempts:
                await self._reply(cmd, self._poison(cmd, cmd.attempts))
                continue
            log.info(
                "command_redispatch",
                correlation_id=cmd.correlation_id,
                noun=cmd.noun,
                attempts=cmd.attempts,
            )
            self._spawn_dispatch(cmd)
        housekeeping = asyncio.get_running_loop().create_task(self._housekeeping())
        backoff = self.config.backoff_min_s
        try:
            while not self._stopping.is_set():
                connects = self.counters.connects
                stopped = False
                fatal: TlsSetupError | BrokerRefused | None = None
                refused: str | None = None
                try:
                    await self._session()
                except* _Stopped:
                    stopped = True
                except* (aiomqtt.MqttError, OSError, ValueError) as group:
                    error = group.exceptions[0]
                    self.counters.connect_failures += 1
                    try:
                        refused = self._refusal(error)
                    except BrokerRefused as exc:
                        fatal = exc
                    if fatal is None:
                        fatal = self._unworkable(error)
                    if refused != "no_retain" and not isinstance(fatal, BrokerRefused):
                        log.warning(
                            "uplink_disconnected",
                            error=f"{type(error).__name__}: {error}",
                            reason=str(error),
                            retry_in_s=None if fatal else round(backoff, 2),
                        )
                if isinstance(fatal, TlsSetupError):
                    log.error("uplink_tls_unworkable", error=str(fatal))
                if fatal is not None:
                    raise fatal
                if stopped:
                    break
                if refused == "no_retain":
                    continue  # at once, with a will the broker takes
                if self.counters.connects != connects:  # it was up: start backing off anew
                    backoff = self.config.backoff_min_s
                delay = backoff * random.uniform(0.8, 1.2)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                backoff = min(backoff * 2, self.config.backoff_max_s)
        finally:
            housekeeping.cancel()
            self._closing = True
            for task in self._dispatches:
                task.cancel()
            await asyncio.gather(housekeeping, *self._dispatches, return_exceptions=True)
            await self.store.close()

    def _refusal(self, error: BaseException) -> str | None:
        """A refused CONNACK: log it by name; raise :class:`BrokerRefused` when retrying
        cannot fix it; "no_retain" when the broker refused our retained will."""
        if not isinstance(error, MqttConnectError):
            return None
        rc = error.rc
        code = rc.value if isinstance(rc, ReasonCode) else rc
        if not isinstance(code, int):
            return None
        if code < 0x80 and not isinstance(rc, ReasonCode):
            code = _V311_CONNACK.get(code, 0x80)  # a v3.1.1 answer: its v5 equivalent
        action = connack_action(code)
        log.warning(
            "uplink_connack",
            code=f"0x{code:02X}",
            reason=reason_name(code),
            host=self.config.host,
            port=self.config.port,
            action=action,
        )
        if action == "fatal":
            refused = BrokerRefused(code, self.config.host, self.config.port)
            log.error(
                "broker_refused", code=f"0x{code:02X}", reason=reason_name(code), error=str(refused)
            )
            raise refused
        if action == "no_retain":
            if not self._retain_ok:  # refused even without a retained will: a broker bug
                return "retry"
            self._no_retain(f"CONNACK {describe(code)} for our retained will")
            return "no_retain"
        return action

    def _no_retain(self, why: str) -> None:
        if self._retain_ok:
            log.warning(
                "broker_retain_unsupported",
                why=why,
                effect="a non-retained will; retained messages (status, config, "
                "linkage, registry) are published without retain and the "
                f"status every {self.config.status_interval_s:g}s; consumers "
                "that subscribe later wait for the next one",
            )
        self._retain_ok = False

    def _unworkable(self, error: BaseException) -> TlsSetupError | None:
        """A connect error that retrying cannot fix: the broker's certificate fails
        verification and no connection of this process has succeeded yet (later, a
        failure may be a broker being re-deployed: retried with backoff)."""
        bad = _verification_error(error)
        if bad is None or self.counters.connects:
            return None
        cfg = self.config
        ca = (
            f"broker.tls.ca ({cfg.tls.ca})"
            if cfg.tls and cfg.tls.ca
            else ("the system's CA certificates (broker.tls.ca is not set)")
        )
        if bad.verify_code in _CLOCK_DEPENDENT:
            check = "its validity dates are compared with this host's clock: check the clock"
        else:
            check = f"it is checked against {ca}, and broker.host must be a name in it"
        return TlsSetupError(
            f"broker {cfg.host}:{cfg.port}: its TLS certificate fails verification: "
            f"{bad.verify_message} (X509 error {bad.verify_code}); {check}"
        )

    async def _prune(self) -> None:
        try:
            n = await self.journal.prune(self.config.journal_retention_s)
        except sqlite3.Error:
            log.exception("journal_prune_failed")
            return
        self.counters.journal_pruned += n
        if n:
            log.info("journal_pruned", rows=n, retention_s=self.config.journal_retention_s)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval_s)
            await self._prune()

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
        props.MaximumPacketSize = cfg.max_packet_size()
        props.ReceiveMaximum = cfg.receive_maximum()
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
            tls_context=self._tls_context,  # set: TLS before anything is sent, or nothing
            max_inflight_messages=cfg.max_inflight,
            will=aiomqtt.Will(
                self.topics.status(),
                self._status_payload("offline"),
                qos=1,
                retain=self._retain_ok,
            ),
        )
        inner: paho.Client = client._client
        inner.manual_ack_set(True)
        chained = inner.on_publish
        on_connect, on_disconnect = inner.on_connect, inner.on_disconnect

        def connected(
            c: paho.Client,
            userdata: Any,
            flags: Any,
            rc: ReasonCode,
            properties: Properties | None = None,
        ) -> None:
            self._connack = rc.value
            if rc.value < 0x80:
                log.info(
                    "uplink_connack",
                    code=f"0x{rc.value:02X}",
                    reason=reason_name(rc.value),
                    host=cfg.host,
                    port=cfg.port,
                    retain_available=getattr(properties, "RetainAvailable", 1),
                )
                if properties is not None and getattr(properties, "RetainAvailable", 1) == 0:
                    self._no_retain("the broker's CONNACK says Retain Available = 0")
            if on_connect is not None:
                on_connect(c, userdata, flags, rc, properties)  # type: ignore[call-arg,arg-type]

        def disconnected(
            c: paho.Client,
            userdata: Any,
            flags: Any,
            rc: ReasonCode,
            properties: Properties | None = None,
        ) -> None:
            was_up = self._connack is not None and self._connack < 0x80
            if was_up and rc is not None and rc.value >= 0x80:
                log.warning(
                    "uplink_broker_disconnect",
                    code=f"0x{rc.value:02X}",
                    reason=reason_name(rc.value),
                )
            # A publish waiting for its PUBACK will not get it on this connection: fail it
            # now (the outbox sends it again after the reconnect) instead of waiting out
            # publish_timeout.
            for fut in list(self._acks.values()):
                if not fut.done():
                    fut.set_exception(
                        aiomqtt.MqttError("the connection to the broker was lost before the PUBACK")
                    )
            if on_disconnect is not None:
                on_disconnect(c, userdata, flags, rc, properties)  # type: ignore[call-arg,arg-type]

        inner.on_connect = connected
        inner.on_disconnect = disconnected

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
                await self._publish_status(client, "online")
                if self.on_status is not None:
                    self.on_status(self._retain_ok)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._drain(client, tg))
                    tg.create_task(self._receive(client))
                    tg.create_task(self._watch_stop(client))
                    if not self._retain_ok:
                        tg.create_task(self._status_beat(client))
        finally:
            self.connected.clear()
            for fut in self._acks.values():
                fut.cancel()
            self._acks.clear()

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        rc = await self._publish_raw(
            client, self.topics.status(), self._status_payload(state), self._retain_ok
        )
        if rc.is_failure:
            log.error("status_refused", reason=reason_name(rc.value), code=f"0x{rc.value:02X}")

    async def _status_beat(self, client: aiomqtt.Client) -> None:
        """Without retained messages: "online" again every ``status_interval_s``."""
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            await self._publish_status(client, "online")

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
        await self._publish_status(client, "offline")
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
        rc = await self._publish_raw(client, row.topic, row.payload, row.retain and self._retain_ok)
        if rc.is_failure:
            await self.outbox.dead_letter(row.id, rc.value, reason_name(rc.value))
            self.counters.refused += 1
            log.error(
                "publish_refused",
                topic=row.topic,
                message_id=row.message_id,
                reason=reason_name(rc.value),
                code=f"0x{rc.value:02X}",
            )
            if self.on_refused is not None:
                self.on_refused(row, rc.value)
        else:
            await self.outbox.ack(row.id)
            self.counters.published += 1
            log.debug(
                "puback",
                message_id=row.message_id,
                code=f"0x{rc.value:02X}",
                reason=reason_name(rc.value),
            )
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
        req = parse_request(
            self.topics,
            topic,
            body,
            self.config.nouns,
            cdata,
            max_bytes=self.config.max_request_bytes,
        )
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
        cfg = self.config
        if self._admitted >= cfg.max_concurrent + cfg.max_queued:
            await self._refuse_busy(req)
            return
        if not await self.journal.record(req):
            self.counters.duplicate_commands += 1
            log.info("command_duplicate", correlation_id=req.correlation_id, noun=req.noun)
            return
        self.counters.commands += 1
        self._spawn_dispatch(req)

    async def _refuse_busy(self, req: Command) -> None:
        """Full: answer FAILED Busy now (journaled as replied in the reply's transaction),
        unless it is a second delivery of a request already known."""
        if await self.journal.is_replied(req.correlation_id) is not None:
            self.counters.duplicate_commands += 1
            log.info("command_duplicate", correlation_id=req.correlation_id, noun=req.noun)
            return
        cfg = self.config
        self.counters.busy_commands += 1
        waiting = self._admitted - self._running
        log.warning(
            "command_busy",
            correlation_id=req.correlation_id,
            noun=req.noun,
            running=self._running,
            waiting=waiting,
        )
        details = (
            f"the gateway is handling {self._running} requests and {waiting} more wait "
            f"(commands.max_concurrent = {cfg.max_concurrent}, commands.max_queued = "
            f"{cfg.max_queued}); nothing was done: send it again later"
        )
        await self.publish_reply(
            req.noun, req.verb, req.correlation_id, "FAILED", [{"code": "Busy", "details": details}]
        )

    def _spawn_dispatch(self, cmd: Command) -> None:
        self._admitted += 1
        task = asyncio.get_running_loop().create_task(
            self._dispatch(cmd), name=f"command:{cmd.correlation_id}"
        )
        self._dispatches.add(task)
        task.add_done_callback(self._dispatches.discard)

    async def _dispatch(self, cmd: Command) -> None:
        """Wait for a slot (first come, first served), handle, reply once."""
        try:
            async with self._slots:
                self._running += 1
                try:
                    outcome = await self._handle(cmd)
                finally:
                    self._running -= 1
        finally:
            self._admitted -= 1
        if outcome is not None:
            await self._reply(cmd, outcome)

    async def _handle(self, cmd: Command) -> Outcome | None:
        """The outcome of one handling, counted in the journal as an attempt before it
        starts; None when the request must not be answered here (answered meanwhile)."""
        if self.handler is None:
            return _failed("NoHandler", "this gateway serves no commands")
        counting = asyncio.ensure_future(
            self.journal.begin_attempt(cmd.correlation_id, self.config.max_attempts)
        )
        try:
            attempt = await asyncio.shield(counting)
        except asyncio.CancelledError:
            if self._closing:  # the count may be committed all the same: take it back
                with contextlib.suppress(Exception):
                    if (await counting).started:
                        await self.journal.undo_attempt(cmd.correlation_id)
            raise
        except (AlreadyReplied, KeyError) as exc:
            log.warning("command_not_run", correlation_id=cmd.correlation_id, reason=str(exc))
            return None
        if not attempt.started:
            return self._poison(cmd, attempt.count)
        try:
            return await self._run_handler(cmd, attempt)
        except asyncio.CancelledError:
            if self._closing:  # a clean stop (or a fatal uplink error) is not a failure
                await self.journal.undo_attempt(cmd.correlation_id)
            raise

    async def _run_handler(self, cmd: Command, attempt: Attempt) -> Outcome:
        assert self.handler is not None
        cfg = self.config
        timed = cmd.noun not in cfg.untimed_nouns
        limit = asyncio.timeout(cfg.command_timeout_s if timed else None)
        try:
            async with limit:
                return await self.handler(cmd.noun, cmd.verb, cmd.payload)
        except TimeoutError as exc:
            if not limit.expired():  # the handler's own, not ours
                log.exception("command_handler_failed", correlation_id=cmd.correlation_id)
                return _failed("HandlerError", f"{type(exc).__name__}: {exc}")
            self.counters.timed_out_commands += 1
            log.error(
                "command_timeout",
                correlation_id=cmd.correlation_id,
                noun=cmd.noun,
                timeout_s=cfg.command_timeout_s,
                attempt=attempt.count,
            )
            return _failed(
                "Timeout",
                f"handling took longer than commands.timeout = {cfg.command_timeout_s:g}s and "
                "was cancelled; what it had done with meters by then stays done",
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an answer, not a crash: the request is replied
            log.exception("command_handler_failed", correlation_id=cmd.correlation_id)
            return _failed("HandlerError", f"{type(exc).__name__}: {exc}")

    def _poison(self, cmd: Command, attempts: int) -> Outcome:
        self.counters.poison_commands += 1
        limit = self.config.max_attempts
        log.error(
            "command_poisoned",
            correlation_id=cmd.correlation_id,
            noun=cmd.noun,
            attempts=attempts,
            max_attempts=limit,
        )
        return _failed(
            "PoisonCommand",
            f"handling crashed or timed out {attempts} times (the gateway stopped during it "
            f"without answering); not run again (commands.max_attempts = {limit})",
        )

    def _checked(self, cmd: Command, outcome: Outcome) -> Outcome:
        """The outcome if it can be sent as it is; else the FAILED reply that says why."""
        if outcome.result not in envelope.REPLY_RESULTS:
            return _failed(
                "HandlerError",
                f"the handler answered result {outcome.result!r}, not one of "
                f"{', '.join(sorted(envelope.REPLY_RESULTS))}",
            )
        try:
            body = json.dumps(
                {"payload": dict(outcome.payload), "errors": [dict(e) for e in outcome.errors]},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        except (TypeError, ValueError) as exc:
            log.error("reply_not_json", correlation_id=cmd.correlation_id, error=str(exc))
            return _failed("HandlerError", f"the reply cannot be written as JSON: {exc}")
        limit = self.config.max_reply_bytes
        if len(body) > limit:
            self.counters.oversized_replies += 1
            log.error(
                "reply_too_large", correlation_id=cmd.correlation_id, size=len(body), limit=limit
            )
            return _failed(
                "ReplyTooLarge",
                f"the reply would be {len(body)} bytes of JSON (payload and errors), more than "
                f"commands.max_reply_bytes = {limit}; ask for less (fewer meters, a shorter "
                "time range)",
            )
        return outcome

    async def _reply(self, cmd: Command, outcome: Outcome) -> None:
        outcome = self._checked(cmd, outcome)
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
