"""Render the interoperability profiles (IEC 62559-2 template) from observed runs.

:func:`render_all` makes, for one language, the 15 documents and the index as ``{file
name: text}``. Hand-written sections come from the language's texts
(:mod:`~smmc_gateway.profiles.texts`); sequences, the actors and component diagram of each
aspect, the information exchanged and the KPIs come from what the scenarios observed;
aspect 1's architecture from a configuration (:mod:`~smmc_gateway.profiles.architecture`).
The same observations give the same bytes, except the KPI *Measured* cells
(:func:`~smmc_gateway.profiles.kpis.mask_measured`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from smmc_gateway.profiles.architecture import PLANES, Architecture
from smmc_gateway.profiles.aspects import ASPECTS, Aspect
from smmc_gateway.profiles.kpis import Kpi, RunFacts, measure
from smmc_gateway.profiles.mermaid import component_diagram, flowchart, sequence_diagram
from smmc_gateway.profiles.observe import GATEWAY, Step, Timing
from smmc_gateway.profiles.texts import Texts


@dataclass(frozen=True)
class Observed:
    """One scenario's run as the renderer needs it."""

    aspect: int
    steps: Sequence[Step]
    timing: Timing
    exception: bool


@dataclass(frozen=True)
class Context:
    author: str
    gateway_version: str
    architecture: Architecture
    config_source: str


REQUEST_SCHEMAS = {
    "EndDeviceControls": "end-device-controls-request.schema.json",
    "MeterReadings": "meter-readings-request.schema.json",
    "CustomerMeterDataSet": "customer-meter-data-set-request.schema.json",
    "ReadingsReport": "readings-report-request.schema.json",
    "MeterConfig": "meter-config-request.schema.json",
    "MasterDataLinkageConfig": "master-data-linkage-config-request.schema.json",
    "PricingStructureConfig": "pricing-structure-config-request.schema.json",
    "EndDeviceFirmware": "end-device-firmware-request.schema.json",
    "EndDeviceConfig": "end-device-config-request.schema.json",
}
PAYLOAD_SCHEMAS = {
    "EndDeviceEvents": "end-device-events.schema.json",
    "MeterReadings": "meter-readings.schema.json",
    "CustomerMeterDataSet": "meter-readings.schema.json",
    "MasterDataLinkageConfig": "master-data-linkage-config.schema.json",
    "EndDeviceConfig": "end-device-config.schema.json",
    "ReadingsReport": "readings-report.schema.json",
    "EndDeviceControls": "end-device-controls-reply.schema.json",
}
SCHEMA_DIR = "../../schemas/"


def slug(aspect: Aspect) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in aspect.title.split(":")[0].lower())
    return f"{aspect.number:02d}-{'-'.join(words.split()[:5])}.md"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {i}" for i in items)


def _facts(runs: Sequence[Observed]) -> list[RunFacts]:
    return [
        RunFacts(
            r.timing,
            r.exception,
            any(
                s.message.startswith("exit code ") and not s.message.startswith("exit code 0")
                for s in r.steps
            ),
        )
        for r in runs
    ]


def _scenario(heading: str, title: str, steps: Sequence[Step], t: Texts) -> list[str]:
    """One recorded scenario of section 9 or 11: its step table and sequence diagram."""
    return [f"{heading} {title}", "", step_table(steps, t), "", sequence_diagram(steps, t), ""]


def step_table(steps: Sequence[Step], t: Texts) -> str:
    lb = t.labels
    rows = [
        f"| {lb['step']} | {lb['from']} | {lb['to']} | {lb['channel']} | {lb['message']} |",
        "|----|--------------|--------------|---------|" + "-" * 44 + "|",
    ]
    for i, s in enumerate(steps, 1):
        channel = t.channels["push" if s.push else s.channel]
        rows.append(
            f"| {i} | {t.actor(s.source)} | {t.actor(s.target)} | {channel} | "
            f"{_cell(t.step(s.message))} |"
        )
    return "\n".join(rows)


def kpi_table(kpis: Sequence[Kpi], t: Texts) -> str:
    lb, k = t.labels, t.kpi
    rows = [
        f"| {lb['kpi_id']} | {lb['kpi_name']} | {lb['kpi_definition']} | "
        f"{lb['kpi_target']} | {lb['kpi_measured']} | {lb['kpi_result']} |",
        "|----|------------|------------------------------|--------|--------|--------|",
    ]
    for i, kpi in enumerate(kpis, 1):
        measured = kpi.measured if kpi.measured is not None else lb["no_data"]
        result = lb["no_data"] if kpi.measured is None else lb["met" if kpi.met else "not_met"]
        rows.append(
            f"| K{i} | {k[kpi.key + '_name']} | {k[kpi.key + '_definition']} | "
            f"{kpi.target} | {measured} | {result} |"
        )
    return "\n".join(rows)


_CMD = re.compile(r"^cmd/(\w+) (\w+) ")
_REPLY = re.compile(r"^reply (\w+) ")
_PUB = re.compile(r"^(?:meter/meter \w/)?(\w+) (\w+) (\w+)")
_DLMS = re.compile(r"^(GET|SET|ACTION) (\d+/[\d.]+/\d+)")


def information(steps: Sequence[Step], t: Texts) -> str:
    """The MQTT messages (with their schema) and DLMS objects the sequences used."""
    lb = t.labels
    msgs: dict[tuple[str, str], str] = {}
    objects: dict[str, set[str]] = {}
    for s in steps:
        if s.channel == "mqtt" and s.source != GATEWAY and (m := _CMD.match(s.message)):
            schema = REQUEST_SCHEMAS.get(m.group(1), "request.schema.json")
            msgs.setdefault((f"cmd/{m.group(1)} ({m.group(2)})", lb["request"]), schema)
        elif s.channel == "mqtt" and (m := _REPLY.match(s.message)):
            schema = PAYLOAD_SCHEMAS.get(m.group(1), "reply.schema.json")
            msgs.setdefault((f"reply/{{correlationId}} ({m.group(1)})", lb["reply"]), schema)
        elif s.channel == "mqtt" and s.source == GATEWAY and (m := _PUB.match(s.message)):
            topic = s.message.split(" ")[0]
            topic = (
                re.sub(r"^meter/meter \w", "meter/{meter}", topic + " " + s.message.split(" ")[1])
                if topic == "meter/meter"
                else topic
            )
            topic = topic.split(" ")[0]
            noun = s.message.split(" ")[2] if s.message.startswith("meter/") else m.group(2)
            schema = PAYLOAD_SCHEMAS.get(noun, "envelope.schema.json")
            msgs.setdefault((f"{topic} ({noun})", lb["publication"]), schema)
        elif s.channel in ("dlms", "optical") and (m := _DLMS.match(s.message)):
            objects.setdefault(m.group(2), set()).add(m.group(1))
    out = [
        f"| {lb['info_name']} | {lb['info_direction']} | {lb['info_schema']} |",
        "|------------------------------|--------------------|------------------------------|",
    ]
    for (name, direction), schema in msgs.items():
        out.append(f"| `{name}` | {direction} | [{schema}]({SCHEMA_DIR}{schema}) |")
    if len(out) == 2:
        out = []
    if objects:

        def key(ref: str) -> tuple[int, ...]:
            c, o, a = ref.split("/")
            return (int(c), *(int(x) for x in o.split(".")), int(a))

        out += ["", f"{lb['dlms_objects']} ({lb['dlms_objects_intro']}):", ""]
        out += [f"- `{ref}`: {', '.join(sorted(objects[ref]))}" for ref in sorted(objects, key=key)]
    return "\n".join(out)


def actors_table(steps: Sequence[Step], aspect: int, t: Texts) -> str:
    lb = t.labels
    seen: list[str] = []
    for s in steps:
        for a in (s.source, s.target):
            if a not in seen:
                seen.append(a)
    rows = [f"| {lb['actor']} | {lb['role']} |", "|----------------|" + "-" * 50 + "|"]
    for a in seen:
        role = (
            t.aspects[aspect]["central"]
            if a == "Central system"
            else t.actors.get(a, t.actors.get(a.rsplit(" ", 1)[0] + " A", ""))
        )
        rows.append(f"| {t.actor(a)} | {_cell(role)} |")
    return "\n".join(rows)


def glossary(text: str, t: Texts) -> str:
    terms = [k for k in t.glossary if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", text)]
    rows = [f"| {t.labels['term']} | {t.labels['definition']} |", "|---|---|"]
    rows += [f"| {k} | {_cell(t.glossary[k])} |" for k in terms]
    return "\n".join(rows)


def architecture_section(arch: Architecture, ctx: Context, t: Texts) -> list[str]:
    lb, names = t.labels, t.arch
    comp = names["component"]
    out = [lb["architecture_intro"].format(source=ctx.config_source), ""]
    if "*" in "".join(c.detail for c in arch.components) + "".join(
        i.detail for i in arch.interfaces
    ):
        out += [t.meta["volatile_note"], ""]
    out += [f"| {lb['plane']} | {lb['component']} | {lb['details']} |", "|---|---|---|"]
    for plane in PLANES:
        for c in arch.components:
            if c.plane == plane:
                out.append(f"| {names['planes'][plane]} | {comp[c.key]} | {_cell(c.detail)} |")
    out += [
        "",
        f"### {lb['interfaces']}",
        "",
        f"| {lb['from']} | {lb['to']} | {lb['protocol']} | {lb['details']} |",
        "|---|---|---|---|",
    ]
    for i in arch.interfaces:
        out.append(
            f"| {comp[i.source]} | {comp[i.target]} | "
            f"{names['protocol'][i.protocol]} | {_cell(i.detail)} |"
        )
    out += ["", f"### {lb['components']}", "", flowchart(arch, t), ""]
    return out


def render_aspect(aspect: Aspect, runs: Mapping[str, Observed], t: Texts, ctx: Context) -> str:
    """One document; ``runs``: ``{"NN-name": Observed}`` of this aspect, in order."""
    a, lb = t.aspects[aspect.number], t.labels
    steps = [s for r in runs.values() for s in r.steps]
    nominal = {k: r for k, r in runs.items() if not r.exception}
    failing = {k: r for k, r in runs.items() if r.exception}
    kpis = measure(
        _facts(list(runs.values())), float(a["kpi_latency_s"]), float(a["kpi_completion_s"])
    )
    head = [
        f"<!-- {t.meta['generated']} -->",
        "",
        f"# {aspect.number}. {a['name']}",
        "",
        "| | |",
        "|--------------------|" + "-" * 50 + "|",
        f"| {lb['id']} | SMMC-UC-{aspect.number:02d} |",
        f"| {lb['name']} | {_cell(a['name'])} |",
        f"| {lb['version']} | {t.meta['version']} (smmc-gateway {ctx.gateway_version}) |",
        f"| {lb['date']} | {t.meta['date']} |",
        f"| {lb['author']} | {_cell(ctx.author)} |",
        f"| {lb['articles']} | {aspect.articles} |",
        f"| {lb['reference']} | {_cell(a['reference'])} |",
        "",
        f"> {t.meta['reference_note']}",
        "",
        f"## 1. {lb['summary']}",
        "",
        a["short"],
        "",
        f"## 2. {lb['scope']}",
        "",
        f"**{lb['scope_label']}.** {a['scope']}",
        "",
        f"**{lb['objectives']}:**",
        "",
        _bullets(a["objectives"]),
        "",
        f"## 3. {lb['description']}",
        "",
        a["narrative"],
        "",
        f"## 4. {lb['triggers']}",
        "",
        _bullets(a["triggers"]),
        "",
        f"## 5. {lb['actors']}",
        "",
        actors_table(steps, aspect.number, t),
        "",
    ]
    if aspect.number == 1:
        head += architecture_section(ctx.architecture, ctx, t)
    else:
        head += [f"## 6. {lb['components']}", "", component_diagram(steps, t), ""]
    head += [
        f"## 7. {lb['assumptions']}",
        "",
        _bullets(a["assumptions"]),
        "",
        f"**{lb['design']}:**",
        "",
        _bullets(a["design"]),
        "",
        f"## 8. {lb['pre']}",
        "",
        _bullets(a["pre"]),
        "",
        f"## 9. {lb['sequences']}",
        "",
        lb["sequences_intro"],
        "",
    ]
    for n, (key, r) in enumerate(nominal.items(), 1):
        head += _scenario(f"### 9.{n}", t.scenarios[key], r.steps, t)
    head += [
        f"## 10. {lb['post']}",
        "",
        _bullets(a["post"]),
        "",
        f"## 11. {lb['exceptions']}",
        "",
        _bullets(a["exceptions"]),
        "",
    ]
    if failing:
        head += [f"### {lb['exceptions_observed']}", ""]
        for n, (key, r) in enumerate(failing.items(), 1):
            head += _scenario(f"#### 11.{n}", t.scenarios[key], r.steps, t)
    head += [
        f"## 12. {lb['information']}",
        "",
        information(steps, t),
        "",
        f"**{lb['nouns']}:** {aspect.nouns}",
        "",
        f"## 13. {lb['kpis']}",
        "",
        kpi_table(kpis, t),
        "",
        f"## 14. {lb['requirements']}",
        "",
        f"- {lb['articles']}: {aspect.articles}.",
        f"- DLMS/COSEM: {aspect.objects}.",
        "",
    ]
    body = "\n".join(head)
    return body + "\n".join([f"## 15. {lb['glossary']}", "", glossary(body, t), ""])


def render_all(observed: Mapping[str, Observed], t: Texts, ctx: Context) -> dict[str, str]:
    """``observed``: ``{"NN-name": Observed}`` in run order; ``{file name: text}``."""
    docs: dict[str, str] = {}
    lb = t.labels
    index = [
        f"<!-- {t.meta['generated']} -->",
        "",
        f"# {t.meta['document']}",
        "",
        f"{t.meta['subtitle']}.",
        "",
        t.meta["index_intro"],
        "",
        f"- {lb['author']}: {ctx.author}",
        f"- {lb['version']}: {t.meta['version']} (smmc-gateway {ctx.gateway_version})",
        f"- {lb['date']}: {t.meta['date']}",
        "",
        f"| # | {lb['name']} | {lb['articles']} | {lb['status']} |",
        "|---|---|---|---|",
    ]
    for number, aspect in ASPECTS.items():
        mine = {k: v for k, v in observed.items() if v.aspect == number}
        name = slug(aspect)
        docs[name] = render_aspect(aspect, mine, t, ctx)
        index.append(
            f"| {number} | [{t.aspects[number]['name']}]({name}) | {aspect.articles} "
            f"| {len(mine)} {lb['observed']} |"
        )
    index += [
        "",
        f"## {lb['glossary']}",
        "",
        "\n".join(
            [f"| {lb['term']} | {lb['definition']} |", "|---|---|"]
            + [f"| {k} | {_cell(v)} |" for k, v in t.glossary.items()]
        ),
        "",
    ]
    docs["README.md"] = "\n".join(index)
    return docs
