"""The public API (`smmc_gateway.connect`) with short names: ``referencing="sn"``
and ``"auto"`` against the simulator serving SN, over the wrapper and HDLC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import smmc_gateway
from smmc_gateway.cosem.objects import DisconnectControl
from smmc_gateway.dlms import sn

from tests.support_sim import FleetSpec, running_fleet

PASSWORD = b"pw123456"


@pytest.fixture(autouse=True)
def _forget_short_names() -> Iterator[None]:
    """Short names and learnt referencing are kept per meter id in the process:
    none leaks into other tests (the simulator's meter ids repeat)."""
    sn.forget_short_names()
    yield
    sn.forget_short_names()


@pytest.mark.parametrize("framing", ["tcp", "hdlc+tcp"])
@pytest.mark.parametrize("referencing", ["sn", "auto"])
async def test_connect_with_short_names(framing: str, referencing: str) -> None:
    sn.forget_short_names()
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=1, referencing="sn")
    async with running_fleet(spec, hdlc=framing == "hdlc+tcp") as sim:
        url = f"{framing}://127.0.0.1:{sim.ports[0]}"
        meter = smmc_gateway.connect(url, auth="lls", password=PASSWORD, referencing=referencing)
        async with meter as m:
            assert m.session.referencing == "sn"
            energy = await m.get("3/1.0.1.8.0.255/2")
            assert isinstance(energy, int) and energy > 0
            assert await m.get("3/1.0.1.8.0.255/3") == (0, 30)
            dc = DisconnectControl()
            await m.action(dc.remote_disconnect)
            assert await m.get(dc.output_state) is False
            model = await m.object_list()
            assert model.get("0.0.96.3.10.255") is not None
            now = await m.clock()
            assert abs(now - sim.fleet.meters[0].meter.meter_time(datetime.now(UTC))) < timedelta(
                seconds=5
            )
            rows = await m.profile("1.0.99.1.0.255", start=now - timedelta(hours=3), end=now)
            assert 10 <= len(rows) <= 13
