"""Use cases 4 and 8, customer side, against the simulator: the consumer message, prices
in the Charge (now and at a time), DR events shown (and enforced), the customer interface
switch; each read back, and what the display then shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from smmc_gateway.usecases import customer as uc
from test_usecase_support import session_to
from uplink_helpers import wait_until

from tests.support_sim import FleetSpec, running_fleet

TEXT, CODE = "0.0.96.13.0.255", "0.0.96.13.1.255"
CHARGE, TARIFF, CLOCK, LIMITER = (
    "0.0.19.20.0.255",
    "0.0.96.14.0.255",
    "0.0.1.0.0.255",
    "0.0.17.0.0.255",
)


async def test_message_prices_and_interface_reach_the_display() -> None:
    async with (
        running_fleet(FleetSpec(meters=1, cip_period_s=0.5)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        msg = uc.ConsumerMessage("Mantención el 12/03: sin suministro 9:00–13:00", "17")
        assert await uc.write_message(s, msg, text_obis=TEXT, code_obis=CODE) == msg
        prices = [
            uc.Price(1, Decimal("152.3")),
            uc.Price(2, Decimal("98")),
            uc.Price(3, Decimal("210.75")),
            uc.Price(4, Decimal("99.5")),
        ]
        st = await uc.write_prices(
            s, prices, start=None, charge_obis=CHARGE, tariff_obis=TARIFF, clock_obis=CLOCK
        )
        # the simulator's calendar: weekdays T1 23-07, T2 07-18, T3 18-23 (peak), weekends T1
        # (the meter's local time: the test may run at any hour)
        assert sorted(st.active, key=lambda p: p.tier) == prices
        assert st.active_tariff in (1, 2, 3)
        meter = sim.fleet.meters[0].meter
        by_tier = {p.tier: p.price for p in prices}

        def fresh() -> bool:
            v = meter.display.view
            return (
                v is not None
                and v.text == msg.text
                and v.code == "17"
                and v.price is not None
                and v.tariff is not None
                and Decimal(v.price) == by_tier[v.tariff]
            )

        await wait_until(fresh, 10)  # the display shows the active tariff's price
        assert await uc.set_interface(s, False, "0.0.96.50.0.255") is False
        await wait_until(lambda: meter.display.stale, 10)
        assert await uc.set_interface(s, True, "0.0.96.50.0.255") is True


async def test_prices_scheduled_for_later_are_pending_until_then() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        st = await uc.write_prices(
            s,
            [uc.Price(1, Decimal("1.2345"))],
            start=start,
            charge_obis=CHARGE,
            tariff_obis=TARIFF,
            clock_obis=CLOCK,
        )
        assert st.activation == start and st.passive == [uc.Price(1, Decimal("1.2345"))]
        assert uc.Price(1, Decimal("1.2345")) not in st.active
        await asyncio.sleep(4)
        active = uc.read_unit_charge(await s.get(113, CHARGE, 5))
        assert active == [uc.Price(1, Decimal("1.2345"))]


def test_prices_the_meter_cannot_hold_exactly_are_refused() -> None:
    assert uc.price_scale([uc.Price(1, Decimal("152.3"))]) == (-2, [15230])
    assert uc.price_scale([uc.Price(1, Decimal("40000"))]) == (1, [4000])
    why = uc.price_scale([uc.Price(1, Decimal("152.347"))])
    assert isinstance(why, str) and "152.347" in why and "round it" in why
    assert uc.parse_price("nan") is None and uc.parse_price(True) is None
    assert uc.parse_price(0.1) == Decimal("0.1")


async def test_a_dr_event_is_shown_and_enforced() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        start = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
        ev = uc.DrEvent(start, start + timedelta(hours=2), 2, threshold_w=3000)
        shown = await uc.show_dr_event(
            s, ev, text_obis=TEXT, code_obis=CODE, limiter_obis=LIMITER, clock_obis=CLOCK
        )
        assert shown.message.code == "DR2" and "level 2" in shown.message.text
        assert "3000 W" in shown.message.text
        assert shown.emergency is not None and shown.emergency.threshold_emergency == 3000
        assert shown.emergency.duration_s == 7200 and shown.emergency.activation == start


async def test_a_meter_that_keeps_another_message_is_not_confirmed() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        obj = next(o for k, o in meter.objects.items() if str(k) == TEXT)
        obj.write = lambda a, v, now: "success"  # type: ignore[method-assign]
        with pytest.raises(uc.CustomerNotConfirmed, match="read back as ''"):
            await uc.write_message(
                s, uc.ConsumerMessage("hola", ""), text_obis=TEXT, code_obis=CODE
            )


async def test_an_opt_out_is_in_the_standard_log_with_where_it_was_made() -> None:
    from smmc_gateway.usecases.events import LogMark, read_log

    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        assert sim.fleet.customer_opt_out(0, "ihd") is True
        events, _ = await read_log(
            s,
            "event_log_standard",
            "0.0.99.98.0.255",
            LogMark(),
            datetime.now(UTC),
            first_read_s=600,
        )
        (opt,) = [e for e in events if e.code == 70]
        assert opt.name == "smmc.customer.optOut"
        assert opt.details.endswith("(the customer opted out on the in-home display)")
