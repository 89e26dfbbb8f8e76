"""Key performance indicators measured in a run, per aspect, and how ``check`` compares them.

Measured values (seconds, counts) vary from run to run, so the rendered KPI table has a
*Measured* column, which :func:`mask_measured` blanks before ``profiles check`` compares,
and a *Result* column (met / not met against the aspect's target), which is compared
exactly: a document goes stale when a KPI stops meeting its target, not when a latency
moves from 0.11 s to 0.13 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from smmc_gateway.profiles.observe import Timing

ROW = re.compile(r"^\| K\d+ \|")


@dataclass(frozen=True)
class Kpi:
    key: str  # latency | completion | success | exceptions
    target: str  # language-neutral: "<= 10 s", "100 %"
    measured: str | None  # None: nothing to measure in this aspect
    met: bool


@dataclass(frozen=True)
class RunFacts:
    """What the KPIs need of one scenario run."""

    timing: Timing
    exception: bool
    refused_locally: bool  # an exception observed as a non-zero exit of the CLI


def measure(
    runs: Sequence[RunFacts], latency_target_s: float, completion_target_s: float
) -> list[Kpi]:
    nominal = [r for r in runs if not r.exception]
    failing = [r for r in runs if r.exception]
    out: list[Kpi] = []
    lat = [lat for r in nominal for lat, _ in r.timing.replies.values()]
    longest = max(lat, default=None)
    out.append(
        Kpi(
            "latency",
            f"<= {latency_target_s:g} s",
            None if longest is None else f"{longest:.2f} s",
            longest is not None and longest <= latency_target_s,
        )
    )
    dur = max((r.timing.duration_s for r in nominal), default=None)
    out.append(
        Kpi(
            "completion",
            f"<= {completion_target_s:g} s",
            None if dur is None else f"{dur:.2f} s",
            dur is not None and dur <= completion_target_s,
        )
    )
    sent = sum(len(r.timing.sent) for r in nominal)
    ok = sum(1 for r in nominal for _, res in r.timing.replies.values() if res == "OK")
    out.append(Kpi("success", "100 %", f"{ok}/{sent}" if sent else None, sent > 0 and ok == sent))
    handled = 0
    for r in failing:
        results = [res for _, res in r.timing.replies.values()]
        answered = (
            bool(r.timing.sent)
            and len(results) == len(r.timing.sent)
            and all(res in ("FAILED", "PARTIAL") for res in results)
        )
        if answered or (not r.timing.sent and r.refused_locally):
            handled += 1
    out.append(
        Kpi(
            "exceptions",
            "100 %",
            f"{handled}/{len(failing)}" if failing else None,
            bool(failing) and handled == len(failing),
        )
    )
    return out


def mask_measured(text: str) -> str:
    """The document with every KPI row's Measured cell blanked (for comparison)."""
    lines = []
    for line in text.splitlines(True):
        if ROW.match(line):
            cells = line.split(" | ")
            if len(cells) >= 6:
                cells[4] = "…"
                line = " | ".join(cells)
        lines.append(line)
    return "".join(lines)
