"""The simulated meter: a collection of COSEM objects answering GET, SET and
ACTION for a client association, driven by the caller's clock.

Sans-IO: every public method takes ``now`` (an aware UTC ``datetime``). Before
answering, the meter catches up to ``now``: it integrates the load model into
the energy registers slot by slot, captures the load profile at every
quarter hour of *its own* clock, closes billing periods at the start of each
month (local meter time), follows the activity calendar and runs the limiter
(exactly at its duration deadlines). A new meter replays ``history_days`` of
this at construction, so it has a history. Time going backwards is ignored.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.units import WATT
from smmc_gateway.cosem.values import (
    TypedValue,
    as_bool,
    as_bytes,
    as_int,
    double_long_unsigned,
    null,
    octet_string,
    unsigned,
)
from smmc_gateway.simulator import events
from smmc_gateway.simulator.customer import (
    CONSUMER_CODE,
    CONSUMER_MESSAGE,
    CUSTOMER_INTERFACE,
    SOURCES,
    CustomerDisplay,
    DisplayView,
    price_text,
)
from smmc_gateway.simulator.han import HanBus, HanDevice, to_bcd
from smmc_gateway.simulator.layout import (
    ACTIVE_TARIFF,
    ALARM,
    ALARM_FILTER,
    ALARM_PUSH,
    ASSOCIATION,
    BILLING,
    CLOCK,
    DISCONNECTOR_SCRIPTS,
    IMAGE_SCRIPTS,
    LAST_CLOCK_SYNC,
    LOAD_PROFILE,
    LOGICAL_DEVICE_NAME,
    POWER,
    POWER_FAILURE_DURATION,
    POWER_FAILURE_LOG,
    PUBLIC_OBJECTS,
    TARIFF_SCRIPTS,
    build_objects,
    object_list_entry,
)
from smmc_gateway.simulator.layout import attribute_access as _attribute_access
from smmc_gateway.simulator.layout import method_access as _method_access
from smmc_gateway.simulator.loadgen import LoadModel, slot_of, slot_start
from smmc_gateway.simulator.model_play import ModelPlay
from smmc_gateway.simulator.objects.association import AssociationLN, SapAssignment
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult
from smmc_gateway.simulator.objects.calendar import ActivityCalendar, default_calendar
from smmc_gateway.simulator.objects.charge import Charge
from smmc_gateway.simulator.objects.clock import Clock, zone_standard_deviation
from smmc_gateway.simulator.objects.data import Data, Register
from smmc_gateway.simulator.objects.demand import DemandRegister
from smmc_gateway.simulator.objects.disconnect import DisconnectControl
from smmc_gateway.simulator.objects.image import ImageTransfer
from smmc_gateway.simulator.objects.limiter import Limiter, ScriptRef
from smmc_gateway.simulator.objects.mbus import MBusMasterPort
from smmc_gateway.simulator.objects.profile import CaptureObject, ProfileGeneric
from smmc_gateway.simulator.objects.push import PushSetup
from smmc_gateway.simulator.objects.schedule import SingleActionSchedule
from smmc_gateway.simulator.objects.script import EXECUTE_METHOD, ScriptAction, ScriptTable
from smmc_gateway.simulator.objects.security import SecurityCredentials, SecuritySetup
from smmc_gateway.simulator.objects.special_days import SpecialDaysTable
from smmc_gateway.simulator.options import MeterOptions, PushMessage, check_timezone

_EPSILON = timedelta(microseconds=1)


class UnknownClientError(ValueError):
    """A client SAP this meter has no association for."""


def _check_now(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware UTC datetime, got a naive one")
    return now.astimezone(UTC)


def _quarter_after(meter_time: datetime) -> datetime:
    """The first quarter-hour boundary strictly after ``meter_time``."""
    base = meter_time.replace(minute=(meter_time.minute // 15) * 15, second=0, microsecond=0)
    return base + timedelta(minutes=15)


class SimulatedMeter:
    """One IDIS-style electricity meter. Create with options and the current
    real time; it then has ``options.history_days`` of load profile behind it."""

    def __init__(self, options: MeterOptions | None = None, *, now: datetime) -> None:
        now = _check_now(now)
        self.options = options or MeterOptions()
        self.options.validate()
        opts = self.options
        standard = opts.time_zone
        if opts.timezone is not None:  # the zone's standard (winter) deviation
            standard = zone_standard_deviation(check_timezone(opts.timezone), now)
        self.load = LoadModel(opts.seed, standard)
        self.firmware_version = opts.firmware_version
        self.powered = True
        self.status_flags = 0
        self.outbox: list[PushMessage] = []
        self._outage_start: datetime | None = None
        self._energy = [float(e) for e in self.load.initial_energy_wh()]
        self._tariff_action: tuple[Obis, int] | None = None
        self.created = now
        self._plans_done: dict[int, str] = {}  # identification -> "joined" | "left"
        self._opt_out_done = False
        # a device model played (simulator/model_play.py); None: the simulator's own
        self._play = ModelPlay(opts.model) if opts.model is not None else None
        self._flag = self._play.flag_id() if self._play is not None else b"SMM"

        self.clock = Clock(
            now,
            offset_seconds=opts.clock_offset_seconds,
            drift_ppm=opts.drift_ppm,
            time_zone=standard,
            on_time_set=self._on_time_set,
            zone=opts.timezone,
            deviation_specified=not opts.deviation_not_specified,
        )
        self.disconnect = DisconnectControl(
            control_mode=opts.control_mode, on_transition=self._on_transition
        )
        self.limiter = Limiter(
            read_monitored=self._read_monitored,
            run_script=self._run_script_ref,
            meter_time=self.clock.meter_time,
            time_zone=self.time_zone,
            on_action=self._on_limiter,
            threshold_normal=opts.limiter_threshold_w,
            min_over=opts.limiter_min_over_s,
            min_under=opts.limiter_min_under_s,
        )
        self.image = ImageTransfer(
            block_size=opts.image_block_size,
            verifier=opts.image_verifier,
            on_activate=self._on_firmware_activated,
        )
        self.calendar = ActivityCalendar(
            default_calendar(b"TOU-A", TARIFF_SCRIPTS),
            default_calendar(b"TOU-B", TARIFF_SCRIPTS),
            self.time_zone,
        )
        self.special_days = SpecialDaysTable()
        # use case 4: the HAN (M-Bus) side and the customer's display (simulator/han.py,
        # simulator/customer.py); the prices the display shows (Charge, class 113)
        self.han = HanBus(
            log=lambda code, t: self._log(events.MBUS, code, t),
            alarm=lambda bit, t, why: self._raise_alarm(1 << bit, t, why),
            auto_install=opts.mbus_auto_install,
        )
        self.charge = Charge(self.time_zone)
        self.display = CustomerDisplay(period_s=opts.cip_period_s)
        self.image_activation = SingleActionSchedule(
            "0.0.15.0.2.255", ScriptRef(IMAGE_SCRIPTS, 1), self._run_script_ref, self.time_zone
        )
        self.security = SecuritySetup(
            opts.credentials,
            unwrap=opts.key_unwrap,
            client_title=lambda: opts.credentials.client_system_titles.get(
                opts.management_client, b""
            ),
        )
        self.associations: dict[int, AssociationLN] = {
            opts.public_client: AssociationLN(
                opts.public_client,
                mechanism="none",
                secret=b"",
                object_list=lambda: self.object_list(opts.public_client),
            ),
            opts.management_client: AssociationLN(
                opts.management_client,
                mechanism=opts.management_auth,
                secret=opts.credentials.hls_secrets.get(
                    opts.management_client, opts.credentials.lls_password
                ),
                object_list=lambda: self.object_list(opts.management_client),
                ciphered=opts.management_auth == "hls-gmac",
                hls_reply=opts.hls_reply,
            ),
        }
        start = slot_start(slot_of(now - timedelta(days=opts.history_days)))
        self.demand = DemandRegister(
            "1.0.1.4.0.255",
            lambda: self._energy[0],
            self.clock.local_bytes,
            self.clock.meter_time,
            self.clock.meter_time(start),
        )
        self.objects: dict[Obis, CosemObject] = {}
        for obj in [
            *build_objects(self),
            self.disconnect,
            self.limiter,
            self.image,
            self.calendar,
            self.special_days,
            self.image_activation,
            self.demand,
            self.security,
            SapAssignment({1: self._flag + opts.serial.encode()}),
            *self.han.clients,
            MBusMasterPort(),
            self.charge,
        ]:
            self.objects[obj.obis] = obj
        if self._play is not None:
            self._play_model()

        self._t = start
        self._next_capture = _quarter_after(self.clock.meter_time(start))
        self._next_billing = self._month_start_after(self.clock.meter_time(start))
        self._run_tariff(start)
        self._advance(now)

    # ================================================================ public API
    @property
    def credentials(self) -> SecurityCredentials:
        return self.security.credentials

    def association(self, client: int) -> AssociationLN:
        try:
            return self.associations[client]
        except KeyError:
            raise UnknownClientError(
                f"client SAP {client} has no association; known: {sorted(self.associations)}"
            ) from None

    def association_step(self, client: int, step: str) -> None:
        """The server served ``client`` an association step: ``"aarq"`` (an
        AARQ answered), ``"hls"`` (HLS-GMAC pass 3/4 verified), ``"request"``
        and ``"answered"`` around the get/set/action calls of one request (a
        with-list has several). Nothing here; observers (the
        interoperability profiles) wrap it."""

    def check_lls(self, client: int, password: bytes) -> bool:
        """Whether ``password`` is the LLS secret of ``client``'s association
        (constant-time compare); False for a client without LLS."""
        association = self.association(client)
        return association.mechanism == "lls" and hmac.compare_digest(association.secret, password)

    def log_event(self, kind: str, code: int, now: datetime) -> None:
        """Fault injection: append ``code`` to the event log ``kind``
        ("standard", "fraud", "disconnector", "power-quality")."""
        now = _check_now(now)
        if kind not in events.EVENT_LOGS:
            raise ValueError(f"event log {kind!r}, allowed {sorted(events.EVENT_LOGS)}")
        if not 0 <= code <= 255:
            raise ValueError(f"event code {code}, allowed 0..255")
        self._advance(now)
        self._log(kind, code, now)

    def meter_time(self, now: datetime) -> datetime:
        """The meter clock (UTC) at real instant ``now``."""
        return self.clock.meter_time(_check_now(now))

    def time_zone(self) -> int:
        """The deviation (minutes local -> UTC) in force now, DST included."""
        return self.clock.deviation_at(self.clock.meter_time(self._t))

    def tick(self, now: datetime) -> None:
        """Catch up to ``now`` (captures, billing, tariff, limiter)."""
        self._advance(_check_now(now))

    def get(
        self,
        class_id: int,
        obis: Obis | str | bytes,
        attribute: int,
        *,
        now: datetime,
        client: int,
        selector: int | None = None,
        parameters: TypedValue | None = None,
    ) -> GetResult:
        """A typed value, or a Data-Access-Result name."""
        now = _check_now(now)
        self._advance(now)
        found = self._find(class_id, obis, client)
        if isinstance(found, str):
            return found
        obj, public = found
        if not 1 <= attribute <= len(obj.interface.attributes):
            return "object-undefined"
        if not _attribute_access(obj, attribute, public).can_read:
            return "read-write-denied"
        return obj.get(attribute, now, selector, parameters)

    def set(
        self,
        class_id: int,
        obis: Obis | str | bytes,
        attribute: int,
        value: TypedValue,
        *,
        now: datetime,
        client: int,
    ) -> str:
        """A Data-Access-Result name ("success" when written)."""
        now = _check_now(now)
        self._advance(now)
        found = self._find(class_id, obis, client)
        if isinstance(found, str):
            return found
        obj, public = found
        if not 1 <= attribute <= len(obj.interface.attributes):
            return "object-undefined"
        if not _attribute_access(obj, attribute, public).can_write:
            return "read-write-denied"
        result = obj.set(attribute, value, now)
        if result == "success":
            if obj is self.limiter and attribute in (4, 5):
                self._log(events.DISCONNECTOR, events.LIMITER_CHANGED, now)
            self._settle(now)
        return result

    def action(
        self,
        class_id: int,
        obis: Obis | str | bytes,
        method: int,
        parameters: TypedValue | None = None,
        *,
        now: datetime,
        client: int,
    ) -> ActionResult:
        """(Action-Result name, optional return typed value)."""
        now = _check_now(now)
        self._advance(now)
        found = self._find(class_id, obis, client)
        if isinstance(found, str):
            return (found, None)
        obj, public = found
        if not 1 <= method <= len(obj.interface.methods):
            return ("object-undefined", None)
        if _method_access(obj, method, public) == 0:
            return ("read-write-denied", None)
        result = obj.action(method, parameters, now)
        if result[0] == "success":
            self._settle(now)
        return result

    def object_list(self, client: int) -> TypedValue:
        """Association LN attribute 2 for ``client``: every object it can see."""
        public = self._is_public(client)
        entries = [
            object_list_entry(self._resolve(obis, client), public)
            for obis in self.objects
            if not public or obis in PUBLIC_OBJECTS
        ]
        if ASSOCIATION not in self.objects:
            entries.insert(0, object_list_entry(self.association(client), public))
        return {"type": "array", "value": entries}

    def take_pushes(self) -> list[PushMessage]:
        """The queued push messages, oldest first; the queue is emptied."""
        out, self.outbox = self.outbox, []
        return out

    # ---------------------------------------------------------------- simulated events
    def power_outage(self, now: datetime) -> None:
        """Mains lost: log power down, queue the last-gasp alarm push, stop."""
        now = _check_now(now)
        self._advance(now)
        if not self.powered:
            return
        self._log(events.STANDARD, events.POWER_DOWN, now)
        self._raise_alarm(events.ALARM_POWER_DOWN, now, "power-down")
        self.powered = False
        self._outage_start = now
        self.status_flags |= events.STATUS_POWER_DOWN

    def power_restored(self, now: datetime) -> None:
        """Mains back: log power up (and a long power failure), queue a push."""
        now = _check_now(now)
        self._advance(now)
        if self.powered:
            return
        self.powered = True
        self._log(events.STANDARD, events.POWER_UP, now)
        if self._outage_start is not None:
            duration = int((now - self._outage_start).total_seconds())
            if duration >= self.options.long_power_failure_s:
                self._data(POWER_FAILURE_DURATION).value = double_long_unsigned(duration)
                self._profile(POWER_FAILURE_LOG).capture(now, self.clock.meter_time(now))
        self._outage_start = None
        self._raise_alarm(events.ALARM_POWER_UP, now, "power-up")
        self._settle(now)

    def press_button(self, now: datetime) -> str | None:
        """The customer's button: manual reconnect (e) or disconnect (f)."""
        now = _check_now(now)
        self._advance(now)
        name = "manual_reconnect" if self.disconnect.control_state == 2 else "manual_disconnect"
        letter = self.disconnect.trigger(name, now)
        self._settle(now)
        return letter

    def open_terminal_cover(self, now: datetime) -> None:
        now = _check_now(now)
        self._advance(now)
        self._log(events.FRAUD, events.TERMINAL_COVER_OPENED, now)
        self._raise_alarm(events.ALARM_TAMPER, now, "tamper")

    def han_join(self, device: HanDevice, now: datetime) -> int | None:
        """A HAN device joins the M-Bus; the channel it is (or gets) installed on."""
        now = _check_now(now)
        self._advance(now)
        if not self.powered:
            raise ValueError("the meter is unpowered: nothing joins its bus now")
        return self.han.join(device, now)

    def han_leave(self, identification: int, now: datetime) -> int | None:
        """The HAN device with these 8 digits leaves; the channel that held it, if any."""
        now = _check_now(now)
        self._advance(now)
        return self.han.leave(to_bcd(identification), now)

    def customer_opt_out(self, now: datetime, source: str = "ihd") -> bool:
        """The customer opts out of the DR event from the in-home display (``ihd``) or
        the meter's local interface (``local``); False when it cannot reach the meter
        (from the display while the customer interface is off, or the meter unpowered)."""
        now = _check_now(now)
        if source not in SOURCES:
            raise ValueError(f"opt-out source {source!r}, allowed {', '.join(SOURCES)}")
        self._advance(now)
        if not self.powered or (source == "ihd" and not self.customer_interface_on(now)):
            return False
        code = events.CUSTOMER_OPT_OUT_IHD if source == "ihd" else events.CUSTOMER_OPT_OUT_LOCAL
        self._log(events.STANDARD, code, now)
        self._raise_alarm(events.ALARM_CUSTOMER_OPT_OUT, now, "opt-out")
        return True

    def customer_interface_on(self, now: datetime) -> bool:
        return as_bool(self._data(CUSTOMER_INTERFACE).current(now))

    def set_drift(self, now: datetime, drift_ppm: float) -> None:
        now = _check_now(now)
        self._advance(now)
        current = self.clock.meter_time(now)
        self.clock.reference, self.clock.base = now, current
        self.clock.drift_ppm = drift_ppm

    # ================================================================ measurement
    @property
    def supplied(self) -> bool:
        return self.powered and self.disconnect.output_state

    def energy_reading(self, index: int) -> int:
        return int(self._energy[index]) % (1 << 32)

    def power_w(self, now: datetime) -> int:
        return round(self.load.sample(slot_of(now)).import_w) if self.supplied else 0

    def voltage_dv(self, now: datetime) -> int:
        return round(self.load.sample(slot_of(now)).voltage_v * 10) if self.powered else 0

    # ================================================================ object callbacks
    def capture_value(self, capture: CaptureObject, now: datetime, stamp: datetime) -> TypedValue:
        if capture.class_id == 8 and capture.obis == CLOCK and capture.attribute == 2:
            return octet_string(self.clock.local_bytes(stamp))
        return self.read_value(capture, now)

    def read_value(self, capture: CaptureObject, now: datetime) -> TypedValue:
        obj = self.objects.get(capture.obis)
        if obj is None or obj.class_id != capture.class_id:
            return null()
        value = obj.get(capture.attribute, now, None, None)
        return null() if isinstance(value, str) else value

    def emit_push(self, now: datetime, setup: PushSetup, body: TypedValue) -> None:
        self.outbox.append(PushMessage(setup.obis, now, self._push_reason, setup.destination, body))

    def run_script_action(self, table: Obis, action: ScriptAction, now: datetime) -> None:
        target = self.objects.get(action.obis)
        if target is None or target.class_id != action.class_id:
            return
        if table == DISCONNECTOR_SCRIPTS and target is self.disconnect:
            trigger = "local_disconnect" if action.index == 1 else "local_reconnect"
            self.disconnect.trigger(trigger, now)
        elif action.service == EXECUTE_METHOD:
            target.action(action.index, action.parameter, now)
        elif isinstance(target, Data):
            target.value = action.parameter

    # ================================================================ internals
    _push_reason = "method"

    def _is_public(self, client: int) -> bool:
        self.association(client)
        return client == self.options.public_client

    def _resolve(self, obis: Obis, client: int) -> CosemObject:
        if obis == ASSOCIATION:
            return self.association(client)
        return self.objects[obis]

    def _find(
        self, class_id: int, obis: Obis | str | bytes, client: int
    ) -> tuple[CosemObject, bool] | str:
        public = self._is_public(client)
        if not self.powered:
            return "temporary-failure"
        code = Obis.coerce(obis)
        if code != ASSOCIATION and code not in self.objects:
            return "object-undefined"
        if public and code not in PUBLIC_OBJECTS:
            return "object-undefined"
        obj = self._resolve(code, client)
        if obj.class_id != class_id:
            return "object-class-inconsistent"
        return obj, public

    def _data(self, obis: Obis) -> Data:
        obj = self.objects[obis]
        assert isinstance(obj, Data)
        return obj

    def _profile(self, obis: Obis) -> ProfileGeneric:
        obj = self.objects[obis]
        assert isinstance(obj, ProfileGeneric)
        return obj

    def _log(self, kind: str, code: int, now: datetime) -> None:
        profile_obis, event_obis = events.EVENT_LOGS[kind]
        if self._play is not None:
            code = self._play.code(kind, code)
        self._data(event_obis).value = unsigned(code)
        self._profile(profile_obis).capture(now, self.clock.meter_time(now))

    def _raise_alarm(self, bit: int, now: datetime, reason: str) -> None:
        if self._play is not None:
            self._raise_played(bit, now, reason)
            return
        alarm = self._data(ALARM)
        alarm.value = double_long_unsigned(as_int(alarm.current(now)) | bit)
        if as_int(self._data(ALARM_FILTER).current(now)) & bit:
            push = self.objects[ALARM_PUSH]
            assert isinstance(push, PushSetup)
            self._push_reason = reason
            try:
                push.push(now)
            finally:
                self._push_reason = "method"

    # ---------------------------------------------------------------- a model played
    def _play_model(self) -> None:
        """The played model's alarm registers, filters and push setups, the limiter's
        monitored value in its scaler and unit, and its FLAG id (model_play.py)."""
        assert self._play is not None
        model = self._play.model
        opts = self.options
        for obis in (ALARM, ALARM_FILTER, ALARM_PUSH):
            self.objects.pop(obis, None)
        for reg in model.alarms:
            self.objects[Obis.coerce(reg.obis)] = Data(
                reg.obis, double_long_unsigned(0), writable=True
            )
            if reg.filter_obis:
                self.objects[Obis.coerce(reg.filter_obis)] = Data(
                    reg.filter_obis, double_long_unsigned(0xFFFFFFFF), writable=True
                )
            if reg.descriptor_obis:
                self.objects[Obis.coerce(reg.descriptor_obis)] = Data(
                    reg.descriptor_obis, double_long_unsigned(0), writable=True
                )
        for layout in model.pushes:
            caps = [
                CaptureObject(o.class_id, Obis.coerce(o.obis), o.attribute) for o in layout.objects
            ]
            self.objects[Obis.coerce(layout.obis)] = PushSetup(
                layout.obis,
                caps,
                destination=opts.push_destination,
                reader=self.read_value,
                emit=self.emit_push,
            )
        ldn = self.objects.get(LOGICAL_DEVICE_NAME)
        if isinstance(ldn, Data):
            ldn.value = octet_string(self._flag + opts.serial.encode())
        scaler, unit = self._play.limiter_scale()
        if (scaler, unit) != (0, WATT):
            self.objects[POWER] = Register(
                POWER,
                lambda now: double_long_unsigned(round(self.power_w(now) / 10**scaler)),
                scaler,
                unit,
            )
            self.limiter.threshold_normal = round(opts.limiter_threshold_w / 10**scaler)
            self.limiter.threshold_emergency = round(self.limiter.threshold_emergency / 10**scaler)

    def _raise_played(self, mask: int, now: datetime, reason: str) -> None:
        assert self._play is not None
        for target in self._play.alarm_targets(mask):
            register = self._data(target.register)
            register.value = double_long_unsigned(as_int(register.current(now)) | 1 << target.bit)
            if (
                target.filter is not None
                and target.filter in self.objects
                and not as_int(self._data(target.filter).current(now)) >> target.bit & 1
            ):
                continue
            for obj in list(self.objects.values()):
                if isinstance(obj, PushSetup) and any(
                    c.obis == target.register for c in obj.objects
                ):
                    self._push_reason = reason
                    try:
                        obj.push(now)
                    finally:
                        self._push_reason = "method"

    def _month_start_after(self, meter_time: datetime) -> datetime:
        local = self.clock.local(meter_time)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        start_local = datetime(year, month, 1, tzinfo=UTC)
        return start_local + timedelta(minutes=self.clock.deviation_at(meter_time))

    def _on_time_set(self, now: datetime, old: datetime, new: datetime) -> None:
        for code, stamp in ((events.CLOCK_ADJUSTED_OLD, old), (events.CLOCK_ADJUSTED_NEW, new)):
            if self._play is not None:
                code = self._play.code(events.STANDARD, code)
            self._data(events.EVENT_LOGS[events.STANDARD][1]).value = unsigned(code)
            self._profile(events.EVENT_LOGS[events.STANDARD][0]).capture(now, stamp)
        self.status_flags |= events.STATUS_CLOCK_ADJUSTED
        if LAST_CLOCK_SYNC in getattr(self, "objects", {}):
            self._data(LAST_CLOCK_SYNC).value = octet_string(self.clock.local_bytes(new))
        self._next_capture = _quarter_after(new)
        self._next_billing = self._month_start_after(new)

    def _on_transition(self, now: datetime, letter: str, state: int) -> None:
        for code in events.TRANSITION_EVENTS.get(letter, ()):
            self._log(events.DISCONNECTOR, code, now)

    def _on_limiter(self, now: datetime, what: str) -> None:
        if what == "over":
            self._log(events.DISCONNECTOR, events.LIMITER_EXCEEDED, now)
            self._raise_alarm(events.ALARM_LIMITER, now, "limiter")
        else:
            self._log(events.DISCONNECTOR, events.LIMITER_OK, now)

    def _on_firmware_activated(self, now: datetime, identifier: bytes, image: bytes) -> None:
        self.firmware_version = identifier.decode("ascii", errors="replace")
        self._log(events.STANDARD, events.FIRMWARE_ACTIVATED, now)
        self._raise_alarm(events.ALARM_FIRMWARE, now, "firmware")

    def _read_monitored(self, class_id: int, obis: Obis, attr: int, now: datetime) -> int | None:
        value = self.read_value(CaptureObject(class_id, obis, attr), now)
        payload = value.get("value")
        return payload if isinstance(payload, int) and not isinstance(payload, bool) else None

    def _run_script_ref(self, ref: ScriptRef, now: datetime) -> None:
        table = self.objects.get(ref.obis)
        if isinstance(table, ScriptTable):
            table.execute(ref.selector, now)

    def _run_tariff(self, now: datetime) -> None:
        naive = self.clock.local(self.clock.meter_time(now))
        current = self.calendar.current_action(naive, self.special_days.day_id_for(naive.date()))
        if current is not None and current != self._tariff_action:
            self._tariff_action = current
            self._run_script_ref(ScriptRef(current[0], current[1]), now)

    def _settle(self, now: datetime) -> None:
        """Re-evaluate what depends on state just changed by a request."""
        self._run_tariff(now)
        self.limiter.evaluate(now)

    def _deadlines(self) -> list[datetime]:
        out = [
            slot_start(slot_of(self._t) + 1),
            self.clock.real_time_of(self._next_capture) + _EPSILON,
            self.clock.real_time_of(self._next_billing) + _EPSILON,
        ]
        activation = self.calendar.activation_instant()
        if activation is not None:
            out.append(self.clock.real_time_of(activation) + _EPSILON)
        out.extend(self.clock.real_time_of(m) + _EPSILON for m in self.image_activation.pending())
        charge_at = self.charge.activation_instant()
        if charge_at is not None:
            out.append(self.clock.real_time_of(charge_at) + _EPSILON)
        out.extend(self.limiter.next_deadline(lambda m: self.clock.real_time_of(m) + _EPSILON))
        return out

    def _advance(self, now: datetime) -> None:
        while self._t < now:
            t = self._t
            nxt = min([now, *(d for d in self._deadlines() if d > t)])
            if self.supplied:
                sample = self.load.sample(slot_of(t))
                hours = (nxt - t).total_seconds() / 3600.0
                flows = (sample.import_w, sample.export_w, sample.import_var, sample.export_var)
                for i, flow in enumerate(flows):
                    self._energy[i] += flow * hours
            self._t = nxt
            self._instant(nxt)
        self._customer_side(now)

    def _customer_side(self, now: datetime) -> None:
        """Timed HAN joins/leaves and opt-out (options), and the consumer information
        push to the display (only the latest matters to a display: no catch-up)."""
        if not self.powered:
            return
        age = (now - self.created).total_seconds()
        for plan in self.options.han_devices:
            ident, state = (
                plan.device.identification,
                self._plans_done.get(plan.device.identification),
            )
            if state is None and plan.join_after_s is not None and age >= plan.join_after_s:
                self._plans_done[ident] = "joined"
                self.han.join(plan.device, now)
            elif state == "joined" and plan.leave_after_s is not None and age >= plan.leave_after_s:
                self._plans_done[ident] = "left"
                self.han.leave(plan.device.bcd, now)
        after = self.options.opt_out_after_s
        if after is not None and not self._opt_out_done and age >= after:
            self._opt_out_done = True
            self.customer_opt_out(now, self.options.opt_out_source)
        if not self.customer_interface_on(now):
            self.display.stale = self.display.view is not None
        elif self.display.due(now):
            self.display.receive(self._consumer_information(now))

    def _consumer_information(self, now: datetime) -> DisplayView:
        tariff = as_int(self._data(ACTIVE_TARIFF).current(now))
        found = self.charge.price(str(tariff).encode())
        return DisplayView(
            at=now,
            text=as_bytes(self._data(CONSUMER_MESSAGE).current(now)).decode("utf-8", "replace"),
            code=as_bytes(self._data(CONSUMER_CODE).current(now)).decode("ascii", "replace"),
            tariff=tariff,
            price=price_text(*found) if found is not None else None,
            emergency=bool(self.limiter.emergency_active(now)),
        )

    def _instant(self, t: datetime) -> None:
        m = self.clock.meter_time(t)
        if self._next_capture <= m:
            if self.powered:
                self._profile(LOAD_PROFILE).capture(t, self._next_capture)
                self.status_flags = 0
            self.demand.close_period(self._next_capture)
            self._next_capture = _quarter_after(m)
        if self._next_billing <= m:
            if self.powered:
                self._profile(BILLING).capture(t, self._next_billing)
            self._next_billing = self._month_start_after(m)
        activation = self.calendar.activation_instant()
        if activation is not None and activation <= m:
            self.calendar.activate_passive()
            self._log(events.STANDARD, events.CALENDAR_ACTIVATED, t)
        charge_at = self.charge.activation_instant()
        if charge_at is not None and charge_at <= m:
            self.charge.activate_passive()
        if self.powered:
            self.image_activation.run_due(m, t)
            self._run_tariff(t)
            self.limiter.evaluate(t)


__all__ = ["MeterOptions", "PushMessage", "SimulatedMeter", "UnknownClientError"]
