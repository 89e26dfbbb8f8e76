"""Use case 4 (HAN devices) against the simulator over a ciphered session: read the M-Bus
channels, install by identification, give a key (wrapped as the meter and the device
expect), de-install, and the refusals that name what went wrong."""

from __future__ import annotations

import pytest
from smmc_gateway import _core
from smmc_gateway.simulator.han import aes_cbc_zero_iv
from smmc_gateway.usecases import han
from test_usecase_support import session_to

from tests.support_sim import FleetSpec, running_fleet

USER_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def key_for(sim: object, index: int, device: int = 0, user: bytes = USER_KEY) -> han.HanKey:
    rt = sim.fleet.meters[index]  # type: ignore[attr-defined]
    default = rt.meter.options.han_devices[device].device.default_key
    wrapped = _core.aes_key_wrap(rt.credentials.kek, user)
    return han.HanKey.unwrap(
        rt.credentials.kek, wrapped, aes_cbc_zero_iv(default, user, decrypt=False)
    )


async def test_channels_show_the_devices_that_joined() -> None:
    async with (
        running_fleet(FleetSpec(meters=1, han_devices=2)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        channels = await han.read_channels(s)
        assert [c.channel for c in channels] == [1, 2, 3, 4]
        joined = [c.describe() for c in channels if c.installed]
        expected = [d["identification"] for d in sim.info[0]["han"]]
        assert [d["serialNumber"] for d in joined] == expected
        assert joined[0]["deviceType"] == "customerUnit" and joined[1]["deviceType"] == "gas"
        assert joined[0]["manufacturer"] == "SMC" and joined[0]["reachable"] is True
        assert joined[0]["encryptionKeyStatus"] == "noEncryptionKey"


async def test_install_with_a_key_then_deinstall() -> None:
    spec = FleetSpec(meters=1, han_devices=1, han_join_after_s=None)  # joins on command only
    async with running_fleet(spec) as sim, session_to(sim.ports[0], sim.info[0]) as s:
        serial = sim.info[0]["han"][0]["identification"]
        meter = sim.fleet.meters[0].meter
        meter.han.auto_install = False
        sim.fleet.han_join(0)
        assert not any(c.installed for c in await han.read_channels(s))
        key = key_for(sim, 0)
        assert "0011" not in repr(key) and repr(key) == "HanKey('***')"
        r = await han.install(s, serial, channel=3, manufacturer="SMC", key=key)
        assert r.channel.channel == 3 and r.channel.serial == serial
        assert r.channel.describe()["encryptionKeyStatus"] == "encryptionKeyInUse"
        assert r.steps[0] == "installed on channel 3 (slave_install)"
        assert "key set in the meter (set_encryption_key)" in r.steps
        device = meter.han.present[int(serial, 16)]
        assert device.user_key == USER_KEY  # the device decrypted what transfer_key carried
        again = await han.install(s, serial)
        assert again.steps == ("already installed on channel 3",)
        with pytest.raises(han.HanNotConfirmed, match="installed on channel 3, not 1"):
            await han.install(s, serial, channel=1)
        before = await han.deinstall(s, serial)
        assert before.channel == 3
        assert not (await han.read_channel(s, 3)).installed
        with pytest.raises(han.HanNotConfirmed, match="is on no channel"):
            await han.deinstall(s, serial)


async def test_refusals_name_the_problem() -> None:
    async with (
        running_fleet(FleetSpec(meters=1, han_devices=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        with pytest.raises(han.HanNotConfirmed, match="no device 99999999 answers"):
            await han.install(s, "99999999")
        # the identification written to select it was taken back
        assert [c.installed for c in await han.read_channels(s)] == [True, False, False, False]
        serial = sim.info[0]["han"][0]["identification"]
        with pytest.raises(han.HanNotConfirmed, match="channel 1 holds device"):
            await han.install(s, "99999999", channel=1)
        # a key for another device: the meter and the device disagree, and it is said so
        wrong = aes_cbc_zero_iv(bytes(16), USER_KEY, decrypt=False)
        rt = sim.fleet.meters[0]
        key = han.HanKey.unwrap(
            rt.credentials.kek, _core.aes_key_wrap(rt.credentials.kek, USER_KEY), wrong
        )
        with pytest.raises(han.HanNotConfirmed, match="do not hold the same key"):
            await han.install(s, serial, key=key)
        # a key wrapped for another meter does not unwrap
        with pytest.raises(han.HanKeyRefused, match="does not unwrap"):
            han.HanKey.unwrap(bytes(16), _core.aes_key_wrap(rt.credentials.kek, USER_KEY), None)
