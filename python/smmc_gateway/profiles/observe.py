"""What a scenario observed: one ordered list of steps between named actors.

MQTT messages come from a subscriber on the gateway's topics (commands are noted
when the central system publishes them); DLMS services are tapped at the simulated
meter (class/OBIS/attribute as the meter executed them, after deciphering), and its
pushes as they leave it. Everything is normalised so a re-run renders the same text:
meter ids become "meter A/B", nothing time-, id- or port-dependent is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CENTRAL, BROKER, GATEWAY, METER = "Central system", "MQTT broker", "Gateway", "Meter"


@dataclass(frozen=True)
class Step:
    """``source -> target: message`` (``push`` marks an unsolicited, asynchronous one)."""

    source: str
    target: str
    message: str
    channel: str = "mqtt"  # "mqtt" | "dlms" | "file" (a spool file dropped into an inbox)
    push: bool = False


@dataclass
class Recorder:
    """Collects steps while ``active``; ``names`` maps real meter ids to stable names."""

    names: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    active: bool = False

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
        kind = "/".join(parts[3:4] + (["{meter}", parts[5]] if parts[3] == "meter"
                                      and len(parts) > 5 else []))
        meter = parts[4] if parts[3] == "meter" and len(parts) > 4 else ""
        label = f"{kind} {header.get('noun', '?')} {header.get('verb', '?')}"
        if parts[3] == "reply":
            reply = doc.get("reply", {}) if isinstance(doc, dict) else {}
            codes = sorted({str(e.get("code")) for e in reply.get("errors", [])
                            if isinstance(e, dict)})
            label = (f"reply {header.get('noun', '?')} {reply.get('result', '?')}"
                     f"{' [' + ', '.join(codes) + ']' if codes else ''} "
                     f"(correlationId {header.get('correlationId', '?')})")
        elif meter:
            label = label.replace("{meter}", self.name(meter)) + _summary(doc)
        self.add(Step(GATEWAY, CENTRAL, self.name(label)))

    # -- DLMS ----------------------------------------------------------------------
    def tap_meter(self, meter_id: str, meter: Any) -> None:
        """Wrap this meter's get/set/action/take_pushes (on the instance only)."""
        alias = self.names.get(meter_id, meter_id)
        who = f"{METER} {alias.split()[-1]}"

        # The items of one request (a with-list has several) become one pair of steps.
        batch: list[tuple[str, str, str]] = []
        batching = [False]

        def emit() -> None:
            if not batch:
                return
            service = batch[0][0]
            if len(batch) == 1:
                self.add(Step(GATEWAY, who, f"{service} {batch[0][1]}", "dlms"))
                self.add(Step(who, GATEWAY, f"{service} response: {batch[0][2]}", "dlms"))
            else:
                items = ", ".join(d for _, d, _ in batch)
                results = ", ".join(r for _, _, r in batch)
                self.add(Step(GATEWAY, who, f"{service} with-list {items}", "dlms"))
                self.add(Step(who, GATEWAY, f"{service} response: {results}", "dlms"))
            batch.clear()

        def wrap(fn: Callable[..., Any], service: str) -> Callable[..., Any]:
            def tapped(class_id: int, obis: Any, index: int, *a: Any, **kw: Any) -> Any:
                result = fn(class_id, obis, index, *a, **kw)
                sel = kw.get("selector")
                extra = f" (selective access {sel})" if sel else ""
                batch.append((service, f"{class_id}/{_obis(obis)}/{index}{extra}",
                              _result(result)))
                if not batching[0]:
                    emit()
                return result
            return tapped

        meter.get = wrap(meter.get, "GET")
        meter.set = wrap(meter.set, "SET")
        meter.action = wrap(meter.action, "ACTION")
        take = meter.take_pushes

        def take_pushes() -> Any:
            pushes = take()
            for p in pushes:
                self.add(Step(who, GATEWAY, f"Data-notification from push setup {_obis(p.setup)}"
                              f" ({p.reason})", "dlms", push=True))
            return pushes

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
                self.add(Step(GATEWAY, who, f"AARQ (client {client})", "dlms"))
                self.add(Step(who, GATEWAY, "AARE response", "dlms"))
            elif step == "hls":
                self.add(Step(GATEWAY, who, "ACTION 15/0.0.40.0.0.255/1 reply_to_HLS f(StoC)",
                              "dlms"))
                self.add(Step(who, GATEWAY, "ACTION response: f(CtoS)", "dlms"))
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
    refs = sorted({" ".join(str(e.get("EndDeviceEventType", {}).get(k)) for k in ("ref", "name"))
                   for e in body.get("EndDeviceEvent", []) if isinstance(e, dict)})
    if refs:
        return f" [{', '.join(refs)}]"
    if body.get("MeterReading"):
        return " [MeterReading]"
    return ""


def normalise(steps: list[Step]) -> list[Step]:
    """Runs of messages the gateway publishes to MQTT put the reply last (events and reply
    leave through different outbox queues); identical consecutive MQTT steps are shown
    once; repeated DLMS pairs once, marked."""
    out: list[Step] = []
    run: list[Step] = []

    def flush() -> None:
        # replies last; events, readings and configuration keep their publication order
        out.extend(sorted(run, key=lambda s: s.message.startswith("reply ")))
        run.clear()

    dlms: list[Step] = []

    def flush_dlms() -> None:
        # meters served concurrently interleave at random: one meter's exchange after the
        # other's (each request is recorded together with its response, so pairs stay)
        out.extend(sorted(dlms, key=lambda s: s.target if s.source == GATEWAY else s.source))
        dlms.clear()

    for s in steps:
        if s.channel == "mqtt" and s.source == GATEWAY:
            flush_dlms()
            run.append(s)
        elif s.channel == "dlms" and not s.push:
            flush()
            dlms.append(s)
        else:
            flush()
            flush_dlms()
            out.append(s)
    flush()
    flush_dlms()
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
        pair = steps[i:i + 2]
        n = 1
        if len(pair) == 2 and pair[0].channel == "dlms" and not pair[0].push:
            while steps[i + 2 * n:i + 2 * n + 2] == pair:
                n += 1
        if n > 1:
            out += [Step(pair[0].source, pair[0].target, pair[0].message + " (repeated)",
                         "dlms"),
                    Step(pair[1].source, pair[1].target, pair[1].message + " (repeated)",
                         "dlms")]
            i += 2 * n
        else:
            out.append(steps[i])
            i += 1
    return out
