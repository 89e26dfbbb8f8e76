"""Many simulated meters in one process: their identities, keys, clocks,
faults and pushes.

:class:`FleetSpec` says how many meters and with which security;
:class:`SimulatedFleet` builds one :class:`MeterRuntime` per meter (serial,
HDLC physical address, system title and keys derived deterministically from
the fleet seed unless given), runs the clock (real UTC time plus an optional
offset and speed-up), calls ``meter.tick`` regularly and sends every push the
meters queue as a DLMS data-notification in a wrapper frame over TCP to the
push destination (general-glo-ciphered when the meter's management
association is ciphered). Transports (serve.py) look meters up here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.values import double_long_unsigned
from smmc_gateway.jsonvalue import JsonObject
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.simulator import sn
from smmc_gateway.simulator.acse import BASIC_CONFORMANCE, SERVER_CONFORMANCE, CipherCounters
from smmc_gateway.simulator.faults import FaultInjector, FaultOptions
from smmc_gateway.simulator.han import DISPLAY, GAS, HEAT, WATER, HanDevice, HanPlan
from smmc_gateway.simulator.layout import INVOCATION_COUNTER
from smmc_gateway.simulator.meter import SimulatedMeter
from smmc_gateway.simulator.objects.data import Data
from smmc_gateway.simulator.objects.security import SecurityCredentials
from smmc_gateway.simulator.options import MeterOptions, PushMessage, check_timezone

log = structlog.get_logger("smmc_gateway.simulator")

PUSH_CLIENT_WPORT = 102  # IDIS push client SAP (0x66)
SERVER_WPORT = 1  # management logical device
FIRST_PHYSICAL_ADDRESS = 16  # HDLC lower server address of meter 0 (then +1)


class SimClock:
    """Simulated UTC: real time since start × ``speed``, plus ``offset_s``."""

    def __init__(self, *, speed: float = 1.0, offset_s: float = 0.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed {speed}: must be > 0")
        self.speed = speed
        self.offset_s = offset_s
        self._start_utc = datetime.now(UTC)
        self._start_mono = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._start_mono) * self.speed
        return self._start_utc + timedelta(seconds=elapsed + self.offset_s)


def derive(seed: int, index: int, what: str, size: int = 16) -> bytes:
    """Deterministic per-meter material from the fleet seed."""
    return hashlib.sha256(f"smmc-sim/{seed}/{index}/{what}".encode()).digest()[:size]


@dataclass
class FleetSpec:
    """What the fleet looks like. Keys/title/password left None are derived
    from ``seed`` per meter; given ones are shared (the system title gets the
    meter index added to its last bytes)."""

    meters: int = 1
    seed: int = 1
    auth: str = "hls-gmac"  # management client 1: none | lls | hls-gmac
    password: bytes | None = None
    ek: bytes | None = None
    ak: bytes | None = None
    system_title: bytes | None = None
    push_destination: str = "127.0.0.1:4059"
    history_days: int = 2
    speed: float = 1.0
    time_offset_s: float = 0.0
    timezone: str | None = None  # IANA zone the meters' clocks follow (None: UTC, no DST)
    deviation_not_specified: bool = False  # the meters write 0x8000 as their deviation
    model: ModelConfig | None = None  # a device model the meters play (model_play.py)
    drift_ppm: float | None = None  # None: each meter its own, within ±20 ppm
    baud: int | None = None  # serial/optical: emulate this line speed
    faults: FaultOptions = field(default_factory=FaultOptions)
    tick_interval_s: float = 1.0
    general_block_transfer: bool = False  # offer GBT (Green Book) besides datablocks
    # use case 4: HAN (M-Bus) devices per meter (a display first, then gas, water, heat
    # meters; identities and default keys derived from the seed), when they join (s after
    # start; None: only on command) and leave (None: never), and the customer's opt-out
    han_devices: int = 0
    han_join_after_s: float | None = 0.0
    han_leave_after_s: float | None = None
    opt_out_after_s: float | None = None
    opt_out_source: str = "ihd"
    cip_period_s: float = 10.0
    referencing: str = "ln"
    """``ln`` or ``sn``: the meters answer logical or short names (``simulate --referencing``)."""

    def validate(self) -> None:
        if not 1 <= self.meters <= 10_000:
            raise ValueError(f"meters {self.meters}: allowed 1..10000")
        if self.auth not in ("none", "lls", "hls-gmac"):
            raise ValueError(f"auth {self.auth!r}: allowed none, lls, hls-gmac")
        for name in ("ek", "ak"):
            key = getattr(self, name)
            if key is not None and len(key) != 16:
                raise ValueError(f"{name}: 16 bytes (32 hex digits), got {len(key)} bytes")
        if self.system_title is not None and len(self.system_title) != 8:
            raise ValueError(
                f"system title: 8 bytes (16 hex digits), got {len(self.system_title)} bytes"
            )
        if self.baud is not None and self.baud <= 0:
            raise ValueError(f"baud {self.baud}: must be > 0")
        if not 0 <= self.han_devices <= 4:
            raise ValueError(f"han_devices {self.han_devices}: allowed 0..4 (M-Bus channels)")
        for name in ("han_join_after_s", "han_leave_after_s", "opt_out_after_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} {value}: must be >= 0")
        if self.timezone is not None:
            check_timezone(self.timezone)
        self.faults.validate()


def _drift(seed: int, index: int) -> float:
    """A per-meter clock drift in ppm, -20..+20, from the fleet seed."""
    return round((int.from_bytes(derive(seed, index, "drift", 4), "big") / 2**32 - 0.5) * 40, 2)


HAN_TYPES = (DISPLAY, GAS, WATER, HEAT)


def han_device(seed: int, index: int, number: int) -> HanDevice:
    """The ``number``-th (0..3) HAN device of meter ``index``: identity and default key
    derived from the fleet seed."""
    ident = int.from_bytes(derive(seed, index, f"han{number}", 4), "big") % 90_000_000
    return HanDevice(
        identification=10_000_000 + ident,
        default_key=derive(seed, index, f"han{number}-default-key"),
        manufacturer="SMC",
        version=1,
        device_type=HAN_TYPES[number],
    )


def _title(spec: FleetSpec, index: int) -> bytes:
    if spec.system_title is None:
        return b"SMC" + (index + 1).to_bytes(5, "big")
    value = int.from_bytes(spec.system_title, "big") + index
    return (value % (1 << 64)).to_bytes(8, "big")


class MeterRuntime:
    """One simulated meter as it lives in the fleet."""

    def __init__(self, spec: FleetSpec, index: int, clock: SimClock) -> None:
        self.index = index
        self.clock = clock
        self.serial = f"SMC{spec.seed % 1000:03d}{index + 1:06d}"
        self.meter_id = self.serial
        self.physical_address = FIRST_PHYSICAL_ADDRESS + index
        ek = spec.ek or derive(spec.seed, index, "ek")
        ak = spec.ak or derive(spec.seed, index, "ak")
        password = spec.password or derive(spec.seed, index, "pw", 8).hex()[:8].encode()
        #: What the meter is configured with (and what a client must use).
        self.credentials = SecurityCredentials(
            system_title=_title(spec, index),
            guek=ek,
            gbek=derive(spec.seed, index, "bek"),
            gak=ak,
            kek=derive(spec.seed, index, "kek"),
            lls_password=password,
        )
        held = self.credentials
        if spec.faults.wrong_keys:
            flip = bytes(b ^ 0x5A for b in ek), bytes(b ^ 0xA5 for b in ak)
            held = replace(self.credentials, guek=flip[0], gak=flip[1])
        options = MeterOptions(
            serial=self.serial,
            seed=spec.seed * 100_003 + index,
            history_days=spec.history_days,
            drift_ppm=spec.drift_ppm if spec.drift_ppm is not None else _drift(spec.seed, index),
            timezone=spec.timezone,
            deviation_not_specified=spec.deviation_not_specified,
            model=spec.model,
            management_auth=spec.auth,
            credentials=held,
            push_destination=spec.push_destination,
            key_unwrap=_unwrap,
            han_devices=tuple(
                HanPlan(
                    han_device(spec.seed, index, n), spec.han_join_after_s, spec.han_leave_after_s
                )
                for n in range(spec.han_devices)
            ),
            cip_period_s=spec.cip_period_s,
            opt_out_after_s=spec.opt_out_after_s,
            opt_out_source=spec.opt_out_source,
            referencing=spec.referencing,
        )
        self.meter = SimulatedMeter(options, now=clock.now())
        self.counters = CipherCounters()
        self.offered = SERVER_CONFORMANCE if spec.general_block_transfer else BASIC_CONFORMANCE
        if spec.general_block_transfer:
            for association in self.meter.associations.values():
                association.conformance_bits = (2, *association.conformance_bits)
        counters = self.counters
        self.meter.objects[INVOCATION_COUNTER] = Data(
            INVOCATION_COUNTER,
            source=lambda _now: double_long_unsigned(counters.highest_seen() % (1 << 32)),
        )
        self.faults = FaultInjector(replace(spec.faults, seed=spec.faults.seed + index))
        self.baud = spec.baud
        self.push_invoke_id = 0
        self.pushes_sent = 0
        #: Called (no arguments) to close every open connection of this meter.
        self.closers: set[Callable[[], None]] = set()

    @property
    def powered(self) -> bool:
        return self.meter.powered

    def describe(self) -> JsonObject:
        creds = self.credentials
        return {
            "meter_id": self.meter_id,
            "serial": self.serial,
            "index": self.index,
            "hdlc_address": self.physical_address,
            "auth": self.meter.options.management_auth,
            "drift_ppm": self.meter.options.drift_ppm,
            "system_title": creds.system_title.hex(),
            "ek": creds.guek.hex(),
            "ak": creds.gak.hex(),
            "password": creds.lls_password.decode("ascii", "replace"),
            "han": [
                {
                    "identification": f"{p.device.identification:08d}",
                    "manufacturer": p.device.manufacturer,
                    "device_type": p.device.device_type,
                    "default_key": p.device.default_key.hex(),
                }
                for p in self.meter.options.han_devices
            ],
        }

    def notification(self, push: PushMessage) -> bytes:
        """The data-notification APDU for one push (an InformationReport when the
        meter serves short names), ciphered when needed."""
        self.push_invoke_id = (self.push_invoke_id + 1) % (1 << 24)
        meter_time = self.meter.meter_time(push.at)
        stamp = self.meter.clock.local_bytes(meter_time)
        if self.meter.options.referencing == "sn":
            apdu = sn.information_report(self.meter, push.setup, stamp, push.body)
        else:
            apdu = _core.DataNotification(
                self.push_invoke_id, stamp, _core.encode(push.body)
            ).encode()
        cosem = self.meter.association(self.meter.options.management_client)
        if cosem.ciphered or self.meter.security.policy:
            held = self.meter.credentials
            apdu = _core.cipher_apdu(
                apdu,
                security_control=0x30,
                system_title=held.system_title,
                invocation_counter=self.counters.next_own(),
                ek=held.guek,
                ak=held.gak,
                general=True,
            )
        return apdu


def _unwrap(kek: bytes, wrapped: bytes) -> bytes | None:
    try:
        return _core.aes_key_unwrap(kek, wrapped)
    except _core.DlmsError:
        return None


async def send_push(runtime: MeterRuntime, push: PushMessage, *, wait_s: float = 5.0) -> bool:
    """Deliver one push (retries as the push setup says); True when sent."""
    host, _, port = push.destination.rpartition(":")
    frame = _core.wrapper_encode(SERVER_WPORT, PUSH_CLIENT_WPORT, runtime.notification(push))
    for attempt in range(4):
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host or "127.0.0.1", int(port)), wait_s
            )
            writer.write(frame)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            runtime.pushes_sent += 1
            log.info("sim_push_sent", meter_id=runtime.meter_id, reason=push.reason)
            return True
        except (OSError, TimeoutError, ValueError) as exc:
            log.info(
                "sim_push_failed",
                meter_id=runtime.meter_id,
                destination=push.destination,
                attempt=attempt + 1,
                error=str(exc),
            )
            await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
    return False


class SimulatedFleet:
    """The meters, their clock, and the tick/push loop (``run``/``stop``)."""

    def __init__(self, spec: FleetSpec | None = None) -> None:
        self.spec = spec or FleetSpec()
        self.spec.validate()
        self.clock = SimClock(speed=self.spec.speed, offset_s=self.spec.time_offset_s)
        self.meters = [MeterRuntime(self.spec, i, self.clock) for i in range(self.spec.meters)]
        self._by_address = {m.physical_address: m for m in self.meters}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()

    def by_address(self, physical_address: int | None) -> MeterRuntime | None:
        if physical_address is None:
            return self.meters[0] if len(self.meters) == 1 else None
        return self._by_address.get(physical_address)

    def now(self) -> datetime:
        return self.clock.now()

    # ------------------------------------------------------------------ field events
    def power_outage(self, index: int) -> None:
        """Mains lost: the meter queues its last-gasp push (sent at once) and
        its connections drop; it answers nothing until power is restored."""
        runtime = self.meters[index]
        log.info("sim_power_outage", meter_id=runtime.meter_id)
        runtime.meter.power_outage(self.now())
        self._flush(runtime)
        for close in list(runtime.closers):
            close()

    def power_restored(self, index: int) -> None:
        runtime = self.meters[index]
        log.info("sim_power_restored", meter_id=runtime.meter_id)
        runtime.meter.power_restored(self.now())
        self._flush(runtime)

    def han_join(self, index: int, device: HanDevice | int = 0) -> int | None:
        """A HAN device (one of the meter's planned ones by number, or any) joins meter
        ``index``'s bus; its alarm push (new device) is sent at once."""
        runtime = self.meters[index]
        if isinstance(device, int):
            device = runtime.meter.options.han_devices[device].device
        channel = runtime.meter.han_join(device, self.now())
        self._flush(runtime)
        return channel

    def han_leave(self, index: int, identification: int) -> int | None:
        runtime = self.meters[index]
        channel = runtime.meter.han_leave(identification, self.now())
        self._flush(runtime)
        return channel

    def customer_opt_out(self, index: int, source: str = "ihd") -> bool:
        """The customer of meter ``index`` opts out (alarm push sent at once)."""
        runtime = self.meters[index]
        done = runtime.meter.customer_opt_out(self.now(), source)
        self._flush(runtime)
        return done

    # ------------------------------------------------------------------ loop
    def _flush(self, runtime: MeterRuntime) -> None:
        for push in runtime.meter.take_pushes():
            task = asyncio.get_running_loop().create_task(send_push(runtime, push))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def tick(self) -> None:
        now = self.now()
        for runtime in self.meters:
            runtime.meter.tick(now)
            self._flush(runtime)

    async def run(self) -> None:
        """Tick every meter until :meth:`stop`."""
        while not self._stopped.is_set():
            self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.spec.tick_interval_s)

    async def stop(self) -> None:
        self._stopped.set()
        for runtime in self.meters:
            for close in list(runtime.closers):
                close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
