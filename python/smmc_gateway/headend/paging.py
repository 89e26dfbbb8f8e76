"""Replies that fit ``[commands] max_reply_bytes``: where to cut a time series, and the
``Truncated`` error that tells the central system how to ask for the rest.

A reply carrying interval data (MeterReadings, CustomerMeterDataSet) keeps its oldest
stamps and leaves out the newest ones when it would be too large; the error names the
first stamp left out, and the same request with that as ``timeSchedule.start`` gets
the next page. The items of the oldest stamp are always kept, so paging always moves on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from smmc_gateway.uplink.envelope import ReplyError

#: Bytes of a reply kept for its envelope, reply block and errors.
REPLY_RESERVE = 4096
#: A meter's part is left out of a reply (with a Truncated error) when less than this
#: is left of the reply's budget.
MIN_PART_BYTES = 512


def reply_budget(max_reply_bytes: int, parts: int) -> int:
    """Bytes a reply of ``parts`` per-meter parts may give them: room is kept for the
    envelope and for one error per part."""
    whole = max_reply_bytes
    return whole - min(REPLY_RESERVE, whole // 4) - min(160 * parts, whole // 4)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def cut_point(costs: Sequence[tuple[float, int]], budget: int) -> float | None:
    """``costs``: (stamp, bytes) of every item of a series, in any order. The first stamp
    to leave out so that the items kept total at most ``budget`` bytes, or None when all
    fit. The items of the oldest stamp are always kept."""
    order = sorted(costs)
    total = 0
    for ts, cost in order:
        total += cost
        if total > budget and ts != order[0][0]:
            return ts
    return None


def _stamp(item: Mapping[str, Any]) -> float:
    text = str(item.get("timeStamp", ""))
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")  # not a stamp: sorts last, left out first


def fit_blocks(
    blocks: Sequence[Mapping[str, Any]], budget: int
) -> tuple[list[dict[str, Any]], datetime | None]:
    """IntervalBlocks cut to at most ``budget`` bytes (rendered), oldest stamps kept;
    with the first stamp left out (None when everything fits)."""
    heads = sum(
        len(dumps({"ReadingType": b.get("ReadingType"), "IntervalReadings": []})) for b in blocks
    )
    costs = [
        (_stamp(iv), len(dumps(iv)) + 1) for b in blocks for iv in b.get("IntervalReadings", ())
    ]
    cut = cut_point(costs, budget - heads)
    if cut is None:
        return [dict(b) for b in blocks], None
    kept = [
        {**b, "IntervalReadings": [iv for iv in b.get("IntervalReadings", ()) if _stamp(iv) < cut]}
        for b in blocks
    ]
    moment = datetime.fromtimestamp(cut, UTC) if cut != float("inf") else None
    return [b for b in kept if b["IntervalReadings"]], moment


def truncated(meter: str, what: str, next_start: datetime | None, limit: str = "") -> ReplyError:
    """The Truncated error of one meter's part."""
    why = f" ({limit})" if limit else ""
    if next_start is None:
        return {
            "code": "Truncated",
            "details": f"{meter}: {what} left out{why}; ask for this meter in a request of its own",
        }
    return {
        "code": "Truncated",
        "details": (
            f"{meter}: {what}{why}; repeat with timeSchedule.start = {iso(next_start)} for the "
            "next page"
        ),
    }
