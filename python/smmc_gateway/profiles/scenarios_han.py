"""The scenarios of aspect 4 (interface I1: meter to in-home display / HAN devices) and the
customer side of aspect 8, in the style of :mod:`~smmc_gateway.profiles.scenarios`.

Each is a :class:`~smmc_gateway.profiles.scenarios.Scenario` run against the same lab (a
real Mosquitto, simulated meters on TCP, the gateway daemon's classes): a display joins
meter A's M-Bus (the meter installs it and pushes its alarm; the gateway reads the
channels and publishes the linkage), the central system links it to a usage point and
later removes it, writes a consumer message and prices, announces a DR event, switches
the customer interface off and on, and the customer opts out at the meter.

The display is made here from the fleet's seed (:func:`display`), so the fleet needs no
HAN devices of its own. The keyed install (:data:`KEYED`) needs ``hanKeys`` enabled and
the meters' master keys in the lab's key file (:func:`with_master_keys`); the others run
on the lab as :func:`~smmc_gateway.profiles.scenarios.run_all` builds it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smmc_gateway import _core
from smmc_gateway.profiles.observe import Step
from smmc_gateway.profiles.scenarios import Context, Scenario
from smmc_gateway.simulator.fleet import SimulatedFleet, han_device
from smmc_gateway.simulator.han import HanDevice, aes_cbc_zero_iv

MDLC = "MasterDataLinkageConfig"
USAGE_POINT = "up-A"
DISPLAY_MRID = "ihd-A"


def display(fleet: SimulatedFleet) -> HanDevice:
    """Meter A's in-home display (identity and default key from the fleet seed)."""
    return han_device(fleet.spec.seed, 0, 0)


def _serial(device: HanDevice) -> str:
    return f"{device.identification:08d}"


def _control(ref: str, meter: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndDeviceControl": [
            {"EndDeviceControlType": {"ref": ref}, "EndDevices": [{"mRID": meter}], **extra}
        ]
    }


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def han_join(c: Context) -> None:
    """A display joins meter A's M-Bus: alarm push, linkage and events published."""
    c.recorder.add(
        Step("In-home display", "Meter A", "joins the M-Bus (wireless M-Bus installation)")
    )
    c.fleet.han_join(0, display(c.fleet))
    await c.wait_for(f"meter/{c.ids[0]}/linkage")
    await c.wait_for(f"meter/{c.ids[0]}/events")


async def han_install(c: Context) -> None:
    """The central system links the display to meter A and a usage point."""
    dev = display(c.fleet)
    body = {
        "ConfigurationEvent": {"reason": "hanInstall"},
        "Meter": [{"mRID": c.ids[0]}],
        "EndDevice": [
            {
                "serialNumber": _serial(dev),
                "mRID": DISPLAY_MRID,
                "UsagePoint": {"mRID": USAGE_POINT},
            }
        ],
    }
    await c.command(
        MDLC, "create", "han-1", body, f"hanInstall display on meter A, usage point {USAGE_POINT}"
    )
    await c.wait_for("reply/han-1")
    await c.wait_for(f"meter/{c.ids[0]}/linkage")


async def han_install_keyed(c: Context) -> None:
    """As :func:`han_install`, with the display's key: wrapped by meter A's master key, and
    encrypted with the display's default key for transfer_key. Needs hanKeys and the
    master key (:func:`with_master_keys`)."""
    dev = display(c.fleet)
    runtime = c.fleet.meters[0]
    key = bytes(range(0x40, 0x50))
    body = {
        "ConfigurationEvent": {"reason": "hanInstall"},
        "Meter": [{"mRID": c.ids[0]}],
        "EndDevice": [
            {
                "serialNumber": _serial(dev),
                "mRID": DISPLAY_MRID,
                "UsagePoint": {"mRID": USAGE_POINT},
                "key": {
                    "encryptionKey": _core.aes_key_wrap(runtime.credentials.kek, key).hex(),
                    "transferKey": aes_cbc_zero_iv(dev.default_key, key, decrypt=False).hex(),
                },
            }
        ],
    }
    await c.command(MDLC, "create", "han-key", body, "hanInstall display with its key")
    await c.wait_for("reply/han-key")
    await c.wait_for(f"meter/{c.ids[0]}/linkage")


async def han_list(c: Context) -> None:
    await c.command(
        MDLC, "get", "han-get", {"Meter": [{"mRID": c.ids[0]}]}, "HAN devices of meter A"
    )
    await c.wait_for("reply/han-get")


async def han_remove(c: Context) -> None:
    body = {
        "ConfigurationEvent": {"reason": "hanRemove"},
        "Meter": [{"mRID": c.ids[0]}],
        "EndDevice": [{"mRID": DISPLAY_MRID}],
    }
    await c.command(MDLC, "change", "han-rm", body, "hanRemove the display of meter A")
    await c.wait_for("reply/han-rm")
    await c.wait_for(f"meter/{c.ids[0]}/linkage")


async def customer_display(c: Context) -> None:
    """A consumer message and the prices per tariff, each read back."""
    await c.command(
        "EndDeviceControls",
        "create",
        "msg-1",
        _control(
            "displayMessage",
            c.ids[0],
            textMessage="Mantención programada 12/03 9:00-13:00",
            messageCode="17",
        ),
        "displayMessage to meter A",
    )
    await c.wait_for("reply/msg-1")
    c.seen.clear()
    await c.command(
        "EndDeviceControls",
        "create",
        "price-1",
        _control(
            "priceSignal",
            c.ids[0],
            PanPricingDetail=[
                {"priceTier": t, "price": p} for t, p in ((1, 152.3), (2, 98), (3, 120), (4, 80.25))
            ],
        ),
        "priceSignal (4 tariffs) to meter A",
    )
    await c.wait_for("reply/price-1")


async def dr_event(c: Context) -> None:
    """A DR event shown to the customer and enforced (the Limiter's emergency profile)."""
    start = datetime.now(UTC) + timedelta(hours=1)
    await c.command(
        "EndDeviceControls",
        "create",
        "dr-1",
        _control(
            "demandResponseEvent",
            c.ids[0],
            drProgramLevel=1,
            scheduledInterval={"start": _iso(start), "end": _iso(start + timedelta(hours=2))},
            demandLimit={"value": 2, "unit": "kW"},
        ),
        "demandResponseEvent level 1 to meter A",
    )
    await c.wait_for("reply/dr-1")


async def customer_interface(c: Context) -> None:
    for cid, on in (("cii-off", False), ("cii-on", True)):
        c.seen.clear()
        await c.command(
            "EndDeviceControls",
            "create",
            cid,
            _control("customerInterface", c.ids[0], enabled=on),
            f"customerInterface {'on' if on else 'off'} on meter A",
        )
        await c.wait_for(f"reply/{cid}")


async def opt_out(c: Context) -> None:
    c.recorder.add(Step("Customer", "Meter A", "opts out of the DR event (local interface)"))
    if not c.fleet.customer_opt_out(0, "local"):
        raise RuntimeError("meter A did not register the opt-out (unpowered?)")
    await c.wait_for(f"meter/{c.ids[0]}/events")


HAN_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(4, "han-join", "A HAN device (in-home display) joins the meter's M-Bus", han_join),
    Scenario(
        4, "han-install", "The central system links the HAN device to a usage point", han_install
    ),
    Scenario(4, "han-list", "The HAN devices of a meter, on request", han_list),
    Scenario(
        4, "customer-display", "Consumer message and prices shown to the customer", customer_display
    ),
    Scenario(4, "dr-event", "A DR event announced to the customer and enforced", dr_event),
    Scenario(
        4, "customer-interface", "The customer interface switched off and on", customer_interface
    ),
    Scenario(4, "opt-out", "The customer opts out at the meter", opt_out),
    Scenario(4, "han-remove", "The HAN device removed", han_remove),
)
KEYED: tuple[Scenario, ...] = (
    Scenario(4, "han-install-keyed", "The HAN device gets its encryption key", han_install_keyed),
)
ENABLE = ("hanKeys",)
"""The [commands.enabled] switches :data:`KEYED` needs."""


def with_master_keys(key_file: Path, fleet: SimulatedFleet) -> None:
    """Give every meter's table of a lab key file (``write_lab_config``) its master key."""
    text = key_file.read_text()
    for rt in fleet.meters:
        section = f'["k-{rt.meter_id}"]\n'
        text = text.replace(section, f'{section}master_key = "{rt.credentials.kek.hex()}"\n')
    key_file.write_text(text)
