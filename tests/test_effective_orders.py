"""Effective dates (issue 11 item 7): connect/disconnect and account moves with an
effectiveDateTime are answered "scheduled", kept durably, run at their time (or at start
within the grace, else expired), retried while the grace lasts, and can be cancelled
before; the outcome is published as an event whose mRID is the order's id."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.headend.effective import NewOrder, Order, Orders
from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.uplink.store import Store
from uplink_helpers import validate, wait_until

from tests.issue11_support import lab
from tests.support_sim import FleetSpec, running_fleet


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Runs:
    """A fake execute: what ran, and what it answers (an exception to raise, or ok)."""

    def __init__(self) -> None:
        self.ran: list[Order] = []
        self.published: list[tuple[str, str, str]] = []
        self.fail_with: BaseException | None = None

    async def execute(self, o: Order) -> tuple[bool, str]:
        self.ran.append(o)
        if self.fail_with is not None:
            raise self.fail_with
        return True, f"{o.kind} done"

    async def publish(self, o: Order, state: str, details: str) -> None:
        self.published.append((o.order_id, state, details))


def orders(tmp: Path, runs: Runs, clock: Clock, **kw: Any) -> tuple[Store, Orders]:
    store = open_fleet_store(tmp / "fleet.sqlite")
    return store, Orders(
        store, runs.execute, runs.publish, clock=clock, retry_delay=lambda n: 10.0 * n, **kw
    )


async def settle(o: Orders) -> None:
    await asyncio.gather(*list(o._tasks))


async def test_an_order_runs_when_due_not_before(tmp_path: Path) -> None:
    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock)
    (order,) = await o.schedule([NewOrder("disconnect", "m0", clock.now + 60, "c-1")])
    assert order.state == "pending" and order.mrid == "c-1"
    assert await o.run_due() == pytest.approx(60)
    assert runs.ran == []
    clock.now += 60
    await o.run_due()
    await settle(o)
    assert [r.order_id for r in runs.ran] == [order.order_id]
    assert runs.published == [(order.order_id, "done", "disconnect done")]
    done = await o.get(order.order_id)
    assert done is not None and done.state == "done" and done.outcome == "disconnect done"
    clock.now += 3600
    await o.run_due()
    await settle(o)
    assert len(runs.ran) == 1  # once
    await store.close()


async def test_orders_survive_a_restart_and_late_ones_expire(tmp_path: Path) -> None:
    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock, grace_s=600)
    soon, later = await o.schedule(
        [NewOrder("connect", "m0", clock.now + 10), NewOrder("moveOut", "m1", clock.now + 900)]
    )
    await store.close()
    clock.now += 1200  # the gateway was down: soon is 1190 s late, later 300 s
    runs2 = Runs()
    store, o = orders(tmp_path, runs2, clock, grace_s=600)
    await o.run_due()
    await settle(o)
    assert [r.order_id for r in runs2.ran] == [later.order_id]
    states = {oid: state for oid, state, _ in runs2.published}
    assert states == {soon.order_id: "expired", later.order_id: "done"}
    expired = next(d for oid, s, d in runs2.published if s == "expired")
    assert "commands.order_grace = 600s" in expired
    await store.close()


async def test_an_order_cut_short_by_a_stop_runs_again_after_the_restart(tmp_path: Path) -> None:
    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock)
    (order,) = await o.schedule([NewOrder("connect", "m0", clock.now)])
    await store.submit(lambda c: c.execute("UPDATE effective_order SET state='running'"))
    await store.close()
    store, o = orders(tmp_path, runs, clock)
    task = asyncio.create_task(o.run())
    await wait_until(lambda: runs.published != [], 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [r.order_id for r in runs.ran] == [order.order_id]
    await store.close()


async def test_a_meter_that_does_not_answer_is_tried_within_the_grace(tmp_path: Path) -> None:
    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock, grace_s=25)
    runs.fail_with = OSError("connection refused")
    (order,) = await o.schedule([NewOrder("disconnect", "m0", clock.now)])
    await o.run_due()
    await settle(o)
    again = await o.get(order.order_id)
    assert again is not None and again.state == "pending" and again.attempts == 1
    clock.now += 10
    await o.run_due()
    await settle(o)  # attempt 2; the next would be 20 s later, past the 25 s grace
    assert len(runs.ran) == 2
    failed = await o.get(order.order_id)
    assert failed is not None and failed.state == "failed"
    assert runs.published[-1][1] == "failed"
    assert "tried 2 time(s) within commands.order_grace = 25s" in runs.published[-1][2]
    await store.close()


async def test_cancel_before_it_runs_and_not_after(tmp_path: Path) -> None:
    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock)
    a, b = await o.schedule(
        [
            NewOrder("connect", "m0", clock.now + 5, "req-7"),
            NewOrder("connect", "m1", clock.now + 5, "req-7"),
        ]
    )
    found = await o.find("EndDeviceControls", "req-7", {"m1"})
    assert [f.order_id for f in found] == [b.order_id]
    assert [c.order_id for c in await o.cancel(found)] == [b.order_id]
    assert await o.find("MasterDataLinkageConfig", "req-7") == []  # another noun's
    clock.now += 5
    await o.run_due()
    await settle(o)
    assert [r.order_id for r in runs.ran] == [a.order_id]
    assert await o.cancel([a]) == []  # it ran: nothing to cancel
    assert {(oid, s) for oid, s, _ in runs.published} == {
        (b.order_id, "cancelled"),
        (a.order_id, "done"),
    }
    await store.close()


async def test_the_caps_refuse_a_request_whole(tmp_path: Path) -> None:
    from smmc_gateway.headend.effective import OrdersFull

    runs, clock = Runs(), Clock()
    store, o = orders(tmp_path, runs, clock, max_pending=4, max_per_meter=2)
    await o.schedule([NewOrder("connect", "m0", clock.now + 5)])
    with pytest.raises(OrdersFull, match=r"commands\.max_orders_per_meter = 2"):
        await o.schedule(
            [
                NewOrder("connect", "m1", clock.now + 5),
                NewOrder("disconnect", "m0", clock.now + 6),
                NewOrder("connect", "m0", clock.now + 7),
            ]
        )
    assert len(await o.pending()) == 1  # none of the refused request's orders
    await o.schedule(
        [NewOrder("connect", "m1", clock.now + 5), NewOrder("disconnect", "m2", clock.now + 5)]
    )
    with pytest.raises(OrdersFull, match=r"commands\.max_pending_orders = 4"):
        await o.schedule(
            [NewOrder("connect", "m2", clock.now + 9), NewOrder("connect", "m3", clock.now + 9)]
        )
    assert len(await o.pending()) == 3
    await store.close()


# -- through the dispatcher -------------------------------------------------------------
def control(ref: str, meters: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "EndDeviceControl": [
            {
                "EndDeviceControlType": {"ref": ref},
                "EndDevices": [{"mRID": m} for m in meters],
                **kw,
            }
        ]
    }


def at(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def test_requests_with_an_effective_date_are_scheduled_and_cancelled(tmp_path: Path) -> None:
    async with lab(tmp_path) as lb:
        d = lb.dispatcher
        req = control("disconnect", ["m0", "m1"], mRID="cut-42", effectiveDateTime=at(3600))
        validate(req, "end-device-controls-request")
        out = await d("EndDeviceControls", "create", req)
        assert out.result == "OK", out.errors
        validate(dict(out.payload), "end-device-controls-reply")
        entries = out.payload["EndDeviceControl"]
        assert [e["status"] for e in entries] == ["scheduled", "scheduled"]
        assert {e["EndDevices"][0]["mRID"] for e in entries} == {"m0", "m1"}
        assert all(e["mRID"] == "cut-42" and e["orderId"] for e in entries)
        move = {
            "ConfigurationEvent": {
                "reason": "moveOut",
                "mRID": "mv-1",
                "effectiveDateTime": at(7200),
            },
            "Meter": [{"mRID": "m2"}],
        }
        validate(move, "master-data-linkage-config-request")
        mv = await d("MasterDataLinkageConfig", "create", move)
        assert mv.result == "OK", mv.errors
        validate(dict(mv.payload), "master-data-linkage-config-move")
        (mv_entry,) = mv.payload["MasterDataLinkageConfig"]
        assert mv_entry["status"] == "scheduled" and mv_entry["reason"] == "moveOut"
        # cancel one meter of the controls by the request's mRID, the move by its orderId
        cancel = {"EndDeviceControl": [{"mRID": "cut-42", "EndDevices": [{"mRID": "m1"}]}]}
        validate(cancel, "end-device-controls-request")
        c1 = await d("EndDeviceControls", "cancel", cancel)
        assert c1.result == "OK", c1.errors
        validate(dict(c1.payload), "end-device-controls-reply")
        assert [
            (e["EndDevices"][0]["mRID"], e["status"]) for e in c1.payload["EndDeviceControl"]
        ] == [("m1", "cancelled")]
        c2 = await d(
            "MasterDataLinkageConfig",
            "cancel",
            {"ConfigurationEvent": {"mRID": mv_entry["orderId"]}},
        )
        assert (
            c2.result == "OK" and c2.payload["MasterDataLinkageConfig"][0]["status"] == "cancelled"
        )
        c3 = await d("EndDeviceControls", "cancel", {"EndDeviceControl": [{"mRID": "nope"}]})
        assert c3.result == "FAILED" and c3.errors[0]["code"] == "NotFound"
        pending = await d.orders.orders.pending()
        assert [(p.meter_id, p.kind) for p in pending] == [("m0", "disconnect")]
        cancelled = lb.uplink.named("smmc.order.cancelled")
        assert {e["mrid"] for e in cancelled} == {entries[1]["orderId"], mv_entry["orderId"]}


@pytest.mark.parametrize(
    ("item", "text"),
    [
        ({"effectiveDateTime": "2001-01-01T00:00:00Z"}, "is in the past"),
        ({"effectiveDateTime": "2999-01-01T00:00:00Z"}, "commands.order_horizon = 90d"),
        ({"effectiveDateTime": "tomorrow"}, "is not UTC ISO-8601"),
    ],
)
async def test_a_bad_effective_date_is_refused_and_nothing_is_scheduled(
    tmp_path: Path, item: dict[str, Any], text: str
) -> None:
    async with lab(tmp_path) as lb:
        out = await lb.dispatcher("EndDeviceControls", "create", control("connect", ["m0"], **item))
        assert out.result == "FAILED" and any(text in e["details"] for e in out.errors), out.errors
        assert await lb.dispatcher.orders.orders.pending() == []


async def test_only_connect_and_disconnect_take_an_effective_date(tmp_path: Path) -> None:
    async with lab(tmp_path) as lb:
        out = await lb.dispatcher(
            "EndDeviceControls",
            "create",
            {
                "EndDeviceControl": [
                    {
                        "EndDeviceControlType": {"ref": "ping"},
                        "EndDevices": [{"mRID": "m0"}],
                        "effectiveDateTime": at(60),
                    }
                ]
            },
        )
        assert "effectiveDateTime: taken by connect and disconnect only" in out.errors[0]["details"]


async def test_the_pending_caps_through_the_dispatcher(tmp_path: Path) -> None:
    async with lab(tmp_path, commands={"max_orders_per_meter": 1}) as lb:
        d = lb.dispatcher
        ok = await d(
            "EndDeviceControls", "create", control("connect", ["m0"], effectiveDateTime=at(60))
        )
        assert ok.result == "OK"
        over = await d(
            "EndDeviceControls",
            "create",
            control("disconnect", ["m0", "m1"], effectiveDateTime=at(90)),
        )
        assert over.errors[0]["code"] == "LimitExceeded"
        assert "commands.max_orders_per_meter = 1" in over.errors[0]["details"]
        assert len(await d.orders.orders.pending()) == 1


async def test_a_scheduled_disconnect_runs_on_the_meter_at_its_time(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, lab(tmp_path, sim) as lb:
        (meter,) = lb.meters
        runner = asyncio.create_task(lb.dispatcher.orders.orders.run())
        when = datetime.now(UTC) + timedelta(seconds=2)
        out = await lb.dispatcher(
            "EndDeviceControls",
            "create",
            control(
                "disconnect",
                [meter],
                effectiveDateTime=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            ),
        )
        (entry,) = out.payload["EndDeviceControl"]
        assert entry["status"] == "scheduled"
        assert lb.uplink.named("smmc.switch.disconnected") == []
        await wait_until(lambda: bool(lb.uplink.named("smmc.order.executed")), 20)
        (done,) = lb.uplink.named("smmc.order.executed", meter)
        assert done["mrid"] == entry["orderId"] and done["reason"] == "disconnect"
        assert done["created"] >= when
        assert lb.uplink.named("smmc.switch.disconnected", meter)
        assert sim.fleet.meters[0].meter is not None
        assert lb.fleet.state(meter).energised is False
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert json.dumps(entry)  # the reply entry is plain JSON


async def test_scheduled_orders_are_listed_by_time_filtered_and_paged(tmp_path: Path) -> None:
    async with lab(tmp_path, commands={"max_meters_per_request": 2}) as lb:
        d = lb.dispatcher
        for seconds, meters in ((600, ["m0", "m1"]), (300, ["m2"])):
            out = await d(
                "EndDeviceControls",
                "create",
                control("disconnect", meters, effectiveDateTime=at(seconds)),
            )
            assert out.result == "OK", out.errors
        mv = await d(
            "MasterDataLinkageConfig",
            "create",
            {
                "ConfigurationEvent": {"reason": "moveOut", "effectiveDateTime": at(900)},
                "Meter": [{"mRID": "m0"}],
            },
        )
        assert mv.result == "OK", mv.errors
        validate({}, "end-device-controls-request")
        first = await d("EndDeviceControls", "get", {})
        validate(dict(first.payload), "end-device-controls-reply")
        page1 = first.payload["EndDeviceControl"]
        assert len(page1) == 2  # a page: max_meters_per_request
        assert page1[0]["EndDevices"][0]["mRID"] == "m2"  # the earliest first
        assert all(e["status"] == "pending" and e["orderId"] for e in page1)
        assert first.result == "PARTIAL" and first.errors[0]["code"] == "Truncated"
        last = page1[-1]["orderId"]
        assert f'"after": "{last}"' in first.errors[0]["details"]
        second = await d("EndDeviceControls", "get", {"after": last})
        assert second.result == "OK" and len(second.payload["EndDeviceControl"]) == 1
        seen = {e["orderId"] for e in page1 + second.payload["EndDeviceControl"]}
        assert len(seen) == 3  # every order once, none twice across the pages
        only = await d("EndDeviceControls", "get", {"EndDevices": [{"mRID": "m1"}]})
        assert [e["EndDevices"][0]["mRID"] for e in only.payload["EndDeviceControl"]] == ["m1"]
        # cancel one: gone from the default listing, there with status cancelled
        gone = only.payload["EndDeviceControl"][0]["orderId"]
        await d("EndDeviceControls", "cancel", {"EndDeviceControl": [{"mRID": gone}]})
        cancelled = await d("EndDeviceControls", "get", {"status": ["cancelled"]})
        assert [e["orderId"] for e in cancelled.payload["EndDeviceControl"]] == [gone]
        assert cancelled.payload["EndDeviceControl"][0]["status"] == "cancelled"
        # the moves: by reason, in their own noun
        req = {"ConfigurationEvent": {"reason": "moveOut"}}
        validate(req, "master-data-linkage-config-request")
        moves = await d("MasterDataLinkageConfig", "get", req)
        assert moves.result == "OK", moves.errors
        validate(dict(moves.payload), "master-data-linkage-config-move")
        assert [
            (e["Meter"]["mRID"], e["reason"]) for e in moves.payload["MasterDataLinkageConfig"]
        ] == [("m0", "moveOut")]
        none = await d(
            "MasterDataLinkageConfig", "get", {"ConfigurationEvent": {"reason": "moveIn"}}
        )
        assert none.result == "OK" and none.payload["MasterDataLinkageConfig"] == []
        # bad requests are named
        bad = await d("EndDeviceControls", "get", {"status": ["later"], "after": "x", "nope": 1})
        text = " | ".join(e["details"] for e in bad.errors)
        assert bad.result == "FAILED" and "payload.status" in text and "payload.after" in text
        assert "unknown field(s) ['nope']" in text
