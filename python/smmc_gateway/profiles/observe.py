"""What a scenario observed: one list of steps between named actors, ordered by cause.

MQTT messages come from a subscriber on the gateway's topics (commands are noted when the
central system publishes them); DLMS services are tapped at the simulated meter
(class/OBIS/attribute as the meter executed them, after deciphering), and its pushes when
the meter queues them. Everything is normalised so a re-run renders the same text: meter
ids become "meter A/B", nothing time-, id- or port-dependent is kept in the steps.

Order is by cause, not by arrival (:func:`normalise`): a scenario is cut into segments at
each trigger (a request, a job that came due, something done at the meter or by a
person); in a segment come the trigger, then each meter's own exchange in the order the
meter executed it (its pushes where it queued them), then what the gateway published
(per meter: configuration, readings, events; push-caused events after the others), the
reply last. Arrival times, which vary with load, never decide an order.

Timings (command -> reply latency, scenario duration) are kept beside the steps for the
KPIs (:class:`Timing`); they never enter the steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

CENTRAL, BROKER, GATEWAY, METER = "Central system", "MQTT broker", "Gateway", "Meter"
SCHEDULER, TECHNICIAN = "Scheduler", "Technician CLI"

CLIENT: ContextVar[str] = ContextVar("smmc_profiles_client", default=GATEWAY)
"""Who talks DLMS to a meter in the current task: the gateway (its TCP sessions), or the
technician's CLI (the task serving the optical port is started with this set)."""

CHANNELS = ("mqtt", "dlms", "file", "local", "internal", "optical")
"""mqtt: a message on the broker; dlms: a DLMS/COSEM service (TCP); optical: a DLMS service
through the optical port; file: a spool file dropped into an inbox; local: something that
happens at a device or is done by a person (no message); internal: inside the gateway (a
job of its scheduler that came due)."""


@dataclass(frozen=True)
class Step:
    """``source -> target: message`` (``push`` marks an unsolicited, asynchronous one)."""

    source: str
    target: str
    message: str
    channel: str = "mqtt"
    push: bool = False

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"Step.channel {self.channel!r}: not one of {CHANNELS}")

    @property
    def trigger(self) -> bool:
        """A step that starts a segment: a request, a job, a local action, a file drop."""
        if self.channel in ("local", "internal", "file"):
            return True
        return self.channel == "mqtt" and self.source != GATEWAY

    @property
    def meter(self) -> str | None:
        """The meter whose exchange this step belongs to (DLMS and pushes)."""
        if self.channel in ("dlms", "optical"):
            return self.target if self.source in (GATEWAY, TECHNICIAN) else self.source
        return None

    @property
    def lane(self) -> tuple[str, int]:
        """One client's exchange with one meter (the technician's before the gateway's:
        at the meter, the technician acts first in a segment he started)."""
        client = self.target if self.source == self.meter else self.source
        return (self.meter or "", 0 if client == TECHNICIAN else 1)


@dataclass
class Timing:
    """Wall-clock facts of one scenario, for the KPIs (never rendered as steps)."""

    sent: dict[str, float] = field(default_factory=dict)  # correlationId -> when sent
    replies: dict[str, tuple[float, str]] = field(default_factory=dict)  # -> (latency, result)
    started: float = 0.0
    ended: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended - self.started)


@dataclass
class Recorder:
    """Collects steps while ``active``; ``names`` maps real meter ids to stable names.
    Who the meter's DLMS peer is comes from :data:`CLIENT` of the task serving it."""

    names: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    active: bool = False
    timing: Timing = field(default_factory=Timing)

    def begin(self) -> None:
        self.steps, self.timing, self.active = [], Timing(started=time.monotonic()), True

    def end(self) -> tuple[list[Step], Timing]:
        self.active = False
        self.timing.ended = time.monotonic()
        out, self.steps = self.steps, []
        return normalise(out), self.timing

    def add(self, step: Step) -> None:
        if self.active:
            self.steps.append(step)

    def take(self) -> list[Step]:
        out, self.steps = self.steps, []
        return normalise(out)

    def name(self, text: str) -> str:
        for real, alias in self.names.items():
            text = text.replace(real, alias)
        return text

    # -- MQTT ----------------------------------------------------------------------
    def command(self, noun: str, verb: str, cid: str, what: str) -> None:
        text = f"cmd/{noun} {verb} {what} (correlationId {cid})"
        if self.active:
            self.timing.sent[cid] = time.monotonic()
        self.add(Step(CENTRAL, GATEWAY, self.name(text)))

    def mqtt_out(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 4 or parts[3] in ("cmd", "status"):
            return
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = {}
        header = doc.get("header", {}) if isinstance(doc, dict) else {}
        kind = "/".join(
            parts[3:4] + (["{meter}", parts[5]] if parts[3] == "meter" and len(parts) > 5 else [])
        )
        meter = parts[4] if parts[3] == "meter" and len(parts) > 4 else ""
        label = f"{kind} {header.get('noun', '?')} {header.get('verb', '?')}"
        if parts[3] == "reply":
            reply = doc.get("reply", {}) if isinstance(doc, dict) else {}
            codes = sorted(
                {str(e.get("code")) for e in reply.get("errors", []) if isinstance(e, dict)}
            )
            cid = str(header.get("correlationId", "?"))
            result = str(reply.get("result", "?"))
            sent = self.timing.sent.get(cid)
            if self.active and sent is not None and cid not in self.timing.replies:
                self.timing.replies[cid] = (time.monotonic() - sent, result)
            label = (
                f"reply {header.get('noun', '?')} {result}"
                f"{' [' + ', '.join(codes) + ']' if codes else ''} "
                f"(correlationId {cid})"
            )
        elif meter:
            label = label.replace("{meter}", self.name(meter)) + _summary(doc)
        self.add(Step(GATEWAY, CENTRAL, self.name(label)))

    # -- DLMS ----------------------------------------------------------------------
    def tap_meter(self, meter_id: str, meter: Any) -> None:
        """Wrap this meter's get/set/action/take_pushes (on the instance only)."""
        alias = self.names.get(meter_id, meter_id)
        who = f"{METER} {alias.split()[-1]}"
        queued: list[Any] = []  # pushes already recorded (by identity)

        def pushes() -> None:
            for p in getattr(meter, "outbox", []):
                if not any(p is q for q in queued):
                    queued.append(p)
                    del queued[:-64]
                    self.add(
                        Step(
                            who,
                            GATEWAY,
                            f"Data-notification from push setup {_obis(p.setup)} ({p.reason})",
                            "dlms",
                            push=True,
                        )
                    )

        def channel() -> str:
            return "optical" if CLIENT.get() == TECHNICIAN else "dlms"

        # The items of one request (a with-list has several) become one pair of steps.
        # (service, item, result, client, channel) of the request being answered
        batch: list[tuple[str, str, str, str, str]] = []
        batching = [False]

        def emit() -> None:
            if not batch:
                return
            service, _, _, client, chan = batch[0]
            if len(batch) == 1:
                self.add(Step(client, who, f"{service} {batch[0][1]}", chan))
                self.add(Step(who, client, f"{service} response: {batch[0][2]}", chan))
            else:
                items = ", ".join(b[1] for b in batch)
                results = ", ".join(b[2] for b in batch)
                self.add(Step(client, who, f"{service} with-list {items}", chan))
                self.add(Step(who, client, f"{service} response: {results}", chan))
            batch.clear()
            pushes()  # a push the service made the meter queue comes right after it

        def wrap(fn: Callable[..., Any], service: str) -> Callable[..., Any]:
            def tapped(class_id: int, obis: Any, index: int, *a: Any, **kw: Any) -> Any:
                result = fn(class_id, obis, index, *a, **kw)
                sel = kw.get("selector")
                extra = f" (selective access {sel})" if sel else ""
                batch.append(
                    (
                        service,
                        f"{class_id}/{_obis(obis)}/{index}{extra}",
                        _result(result),
                        CLIENT.get(),
                        channel(),
                    )
                )
                if not batching[0]:
                    emit()
                return result

            return tapped

        meter.get = wrap(meter.get, "GET")
        meter.set = wrap(meter.set, "SET")
        meter.action = wrap(meter.action, "ACTION")
        take = meter.take_pushes

        def take_pushes() -> Any:
            pushes()  # queued by time passing or a local event: recorded now
            return take()

        meter.take_pushes = take_pushes
        stepped = meter.association_step

        def association_step(client: int, step: str) -> None:
            # the simulator's server reports the AARQ and the HLS pass 3/4 it served,
            # and brackets the items of each request it answers
            if step == "request":
                emit()
                batching[0] = True
            elif step == "answered":
                batching[0] = False
                emit()
            elif step == "aarq":
                self.add(Step(CLIENT.get(), who, f"AARQ (client {client})", channel()))
                self.add(Step(who, CLIENT.get(), "AARE response", channel()))
            elif step == "hls":
                self.add(
                    Step(
                        CLIENT.get(),
                        who,
                        "ACTION 15/0.0.40.0.0.255/1 reply_to_HLS f(StoC)",
                        channel(),
                    )
                )
                self.add(Step(who, CLIENT.get(), "ACTION response: f(CtoS)", channel()))
            stepped(client, step)

        meter.association_step = association_step


def _obis(obis: Any) -> str:
    if isinstance(obis, bytes | bytearray):
        return ".".join(str(b) for b in obis)
    return str(obis)


def _result(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, tuple):
        return str(result[0])
    if isinstance(result, dict) and "type" in result:
        return f"data ({result['type']})"
    return "data"


def _summary(doc: Any) -> str:
    body = doc.get("payload", {}) if isinstance(doc, dict) else {}
    if not isinstance(body, dict):
        return ""
    refs = sorted(
        {
            " ".join(str(e.get("EndDeviceEventType", {}).get(k)) for k in ("ref", "name"))
            for e in body.get("EndDeviceEvent", [])
            if isinstance(e, dict)
        }
    )
    if refs:
        return f" [{', '.join(refs)}]"
    if body.get("MeterReading"):
        return " [MeterReading]"
    return ""


_KIND_RANK = ("config", "linkage", "readings", "bulk", "events")


def _publication_key(s: Step) -> tuple[int, str, int, int]:
    """Gateway publications of one segment: per meter (publications of no meter, like
    bulk, first), then by topic (configuration, linkage, readings, bulk, events), events a
    meter's push caused after the others (both are caused by what the meter did; which
    reaches the broker first is timing), the reply last."""
    if s.message.startswith("reply "):
        return (2, "", 0, 0)
    head = s.message.split(" ")[0]
    meter, kind = "", head
    if head == "meter/meter":
        rest = s.message.split(" ", 2)
        meter = rest[1].split("/")[0] if len(rest) > 1 else ""
        kind = rest[1].split("/")[-1] if len(rest) > 1 else ""
    rank = _KIND_RANK.index(kind) if kind in _KIND_RANK else len(_KIND_RANK)
    return (1 if meter else 0, meter, rank, int("smmc.push." in s.message))


def normalise(steps: list[Step]) -> list[Step]:
    """Order by cause (see the module docstring); identical consecutive MQTT steps are
    shown once; a DLMS request/response pair repeated back to back once, marked."""
    segments: list[list[Step]] = [[]]
    for s in steps:
        if s.trigger and segments[-1]:
            segments.append([])
        segments[-1].append(s)
    out: list[Step] = []
    for seg in segments:
        head = [s for s in seg if s.trigger]
        lanes: dict[tuple[str, int], list[Step]] = {}
        for s in seg:
            if s.meter is not None:
                lanes.setdefault(s.lane, []).append(s)
        pubs = [s for s in seg if not s.trigger and s.meter is None]
        out += head
        for meter in sorted(lanes):
            out += lanes[meter]
        out += sorted(pubs, key=_publication_key)  # stable: arrival order within a key
    collapsed: list[Step] = []
    for s in out:
        if collapsed and collapsed[-1] == s and s.channel == "mqtt":
            continue
        collapsed.append(s)
    return _repeats(collapsed)


def _repeats(steps: list[Step]) -> list[Step]:
    """A request/response pair repeated back to back (image blocks, status polls) is shown
    once, marked "(repeated)": how many times depends on sizes and timing, not on the
    protocol."""
    out: list[Step] = []
    i = 0
    while i < len(steps):
        pair = steps[i : i + 2]
        n = 1
        if len(pair) == 2 and pair[0].channel in ("dlms", "optical") and not pair[0].push:
            while steps[i + 2 * n : i + 2 * n + 2] == pair:
                n += 1
        if n > 1:
            out += [
                Step(
                    pair[0].source, pair[0].target, pair[0].message + " (repeated)", pair[0].channel
                ),
                Step(
                    pair[1].source, pair[1].target, pair[1].message + " (repeated)", pair[1].channel
                ),
            ]
            i += 2 * n
        else:
            out.append(steps[i])
            i += 1
    return out
