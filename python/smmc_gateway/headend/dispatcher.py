"""Command dispatch: an inbound request (noun, verb, payload) -> its noun's handler -> one Outcome.

The uplink has already parsed the envelope, journaled the request and will publish
exactly one reply with what this returns. The dispatcher is a table, noun -> handler
(one module per noun in :mod:`smmc_gateway.headend.commands`, whose docstrings say what
each takes and replies), and the gates every request passes here:

* a noun of the contract not in the table gets a FAILED reply ``NotImplemented`` naming
  the noun and the served ones; a served noun the configuration turns off
  (``[commands.enabled]``; MeterConfig, keyChange and EndDeviceFirmware are off by
  default) gets FAILED ``NounDisabled`` naming the key; a payload that is not an object
  gets ``InvalidRequest``;
* every request is bounded before it runs (:mod:`~smmc_gateway.headend.request_limits`):
  the meters it reaches over all its items, groups expanded, by ``[commands]
  max_meters_per_request``; handlers bound their own work (a live profile read, the
  data-store nouns) the same way. Over a bound: FAILED ``LimitExceeded`` naming the limit
  and the count, no meter touched;
* a handler's payload validation names every problem with its JSON path and the allowed
  values (:class:`~smmc_gateway.headend.commands.common.Invalid`): FAILED
  ``InvalidRequest``, nothing done;
* a reply's error list is clipped to a quarter of ``max_reply_bytes`` (handlers page their
  own payloads with ``Truncated``);
* a request that arrives while the gateway is stopping is not answered now: it stays in
  the journal and is served after the restart.

:meth:`Dispatcher.background` runs beside the requests: the stored read schedules
(MeterReadSchedule) applied at start, and effective-dated orders (EndDeviceControls
connect/disconnect and account moves with a future ``effectiveDateTime``) run when due.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from smmc_gateway.headend.commands.common import Invalid, failed
from smmc_gateway.headend.commands.customer_controls import CustomerControls
from smmc_gateway.headend.commands.customer_meter_data_set import CustomerDataCommands
from smmc_gateway.headend.commands.end_device_config import DiscoveryCommands
from smmc_gateway.headend.commands.end_device_controls import EndDeviceControls
from smmc_gateway.headend.commands.end_device_firmware import FirmwareCommands
from smmc_gateway.headend.commands.han_linkage import HanCommands
from smmc_gateway.headend.commands.master_data_linkage_config import (
    MasterDataLinkageConfigCommands,
)
from smmc_gateway.headend.commands.meter_config import MeterConfigCommands
from smmc_gateway.headend.commands.meter_read_schedule import ReadScheduleCommands
from smmc_gateway.headend.commands.meter_readings import LiveReadings, StoredOrLiveReadings
from smmc_gateway.headend.commands.orders import OrderCommands
from smmc_gateway.headend.commands.pricing_structure_config import PricingCommands
from smmc_gateway.headend.commands.readings_report import ReadingsReportCommands
from smmc_gateway.headend.read_schedules import ReadSchedules
from smmc_gateway.headend.request_limits import LimitExceeded, clip_errors, count_meters, show
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError
from smmc_gateway.uplink.store import StoreClosed

log = structlog.get_logger("smmc_gateway.dispatcher")

Handler = Callable[[str, dict[str, Any]], Awaitable[Outcome]]
"""``await handler(verb, payload)`` -> the reply; raises Invalid or LimitExceeded."""

__all__ = ["Dispatcher", "Handler", "Invalid", "failed"]


class Dispatcher:
    """The uplink's command handler: ``await dispatcher(noun, verb, payload)``."""

    def __init__(
        self,
        headend: HeadEnd,
        *,
        commands: CommandsConfig | None = None,
        poll_timeout_s: float = 30.0,
    ) -> None:
        self.headend = headend
        self.commands = commands if commands is not None else CommandsConfig()
        self.poll_timeout_s = poll_timeout_s
        c = self.commands
        # the parts several nouns share (and the daemon and tests reach)
        self.customer = CustomerControls(headend)  # EndDeviceControls, customer side
        self.han = HanCommands(headend, c)  # MasterDataLinkageConfig, HAN devices
        self.discovery = DiscoveryCommands(headend, c)  # EndDeviceConfig (+ provisioning)
        self.orders = OrderCommands(headend, c)  # effective-dated controls and moves
        self.read_schedules = ReadSchedules(
            headend.fleet, headend.scheduler, headend.model_of, headend.scheduled_read
        )
        self._nouns: dict[str, Handler] = {
            "EndDeviceControls": EndDeviceControls(
                headend, c, self.orders, self.customer, poll_timeout_s
            ),
            "MeterReadings": StoredOrLiveReadings(headend, LiveReadings(headend, c), c),
            "MasterDataLinkageConfig": MasterDataLinkageConfigCommands(
                headend, c, self.orders, self.han
            ),
            "EndDeviceFirmware": FirmwareCommands(headend),
            "MeterConfig": MeterConfigCommands(headend, c),
            "PricingStructureConfig": PricingCommands(headend),
            "EndDeviceConfig": self.discovery,
            "CustomerMeterDataSet": CustomerDataCommands(headend, c),
            "ReadingsReport": ReadingsReportCommands(headend, c),
            "MeterReadSchedule": ReadScheduleCommands(self.read_schedules, c),
        }

    async def background(self, ready: asyncio.Event | None = None) -> None:
        """What runs beside the requests, until cancelled: the stored read schedules
        applied to the scheduler, and effective-dated orders run when due (overdue ones
        once the uplink is ``ready``, so queued cancellations come first)."""
        try:
            count = await self.read_schedules.load()
            log.info("read_schedules_loaded", schedules=count)
        except (sqlite3.Error, StoreClosed) as exc:  # orders still run; schedules after restart
            log.error("read_schedules_not_loaded", error=str(exc))
        await self.orders.orders.run(ready)

    async def __call__(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        handler = self._nouns.get(noun)
        if handler is None:
            return failed(
                "NotImplemented",
                f"noun {show(noun)} is not served by this gateway "
                f"yet; served: {', '.join(sorted(self._nouns))}",
            )
        if not self.commands.serves(noun):
            return failed(
                "NounDisabled",
                f"noun {noun} is disabled on this gateway; the "
                f"operator turns it on with commands.enabled.{noun} = true in the "
                "gateway configuration",
            )
        if not isinstance(payload, dict):
            return failed("InvalidRequest", f"payload: {show(payload)} is not an object")
        try:
            count_meters(noun, payload, self.headend.fleet, self.commands)
            outcome = await handler(verb, payload)
        except Invalid as exc:
            return Outcome(
                "FAILED",
                errors=self._clip([{"code": "InvalidRequest", "details": p} for p in exc.problems]),
            )
        except LimitExceeded as exc:
            log.info("command_over_limit", noun=noun, details=str(exc)[:300])
            return Outcome(
                "FAILED",
                errors=self._clip([{"code": "LimitExceeded", "details": p} for p in exc.problems]),
            )
        except GatewayStopping:
            # Checkpoint: leave it journaled and unreplied; the uplink cancels this task as
            # it stops, and the next start dispatches the request again (one reply in all).
            log.info("command_parked_for_restart", noun=noun)
            await asyncio.Event().wait()
            raise AssertionError("unreachable") from None
        return Outcome(outcome.result, outcome.payload, self._clip(outcome.errors))

    def _clip(self, errors: Sequence[ReplyError]) -> list[ReplyError]:
        """Errors echo the request: at most a quarter of the reply's bytes."""
        return clip_errors(errors, self.commands.max_reply_bytes // 4)
