"""Use case 12 against the simulator: move-out (final read, disconnect) and move-in."""

from __future__ import annotations

from smmc_gateway.ops.config_model import DEFAULT_OBIS, ModelConfig, RegisterSpec
from smmc_gateway.usecases.account import last_billing_row, move_in, move_out
from smmc_gateway.usecases.connect import read_state
from smmc_gateway.usecases.readings import ReadingsUseCase
from test_usecase_support import session_to

from tests.support_sim import FleetSpec, running_fleet

MODEL = ModelConfig(name="default", obis=dict(DEFAULT_OBIS), capture_period_s=900,
                    registers=(RegisterSpec("1.0.1.8.0.255", "active_energy_import", None, None),
                               RegisterSpec("1.0.2.8.0.255", "active_energy_export", 0, "Wh")))


async def test_move_out_captures_a_billing_entry_reads_and_disconnects_then_move_in() -> None:
    uc = ReadingsUseCase()
    async with running_fleet(FleetSpec(meters=1)) as sim, \
            session_to(sim.ports[0], sim.info[0]) as s:
        before = await last_billing_row(s, MODEL)
        out = await move_out(s, "m", MODEL, uc)
        assert out.billing_row is not None and out.billing_row != before
        # the captured entry holds the energy the final read sees (no load between: same Wh)
        final = {r["obis"]: r["value"] for r in out.readings}
        assert set(final) == {"1.0.1.8.0.255", "1.0.2.8.0.255"}
        assert abs(out.billing_row["1.0.1.8.0.255"] - final["1.0.1.8.0.255"]) < 100
        # the simulator has no end-of-billing script table: the capture fallback is named
        assert "captured" in out.steps[0] and "0.0.10.0.1.255" in out.steps[0]
        assert out.switch is not None and out.switch.confirmed
        assert (await read_state(s, "0.0.96.3.10.255")).output_state is False
        back = await move_in(s, "m", MODEL, uc)
        assert back.switch is not None and back.switch.confirmed
        assert [r["obis"] for r in back.readings] == ["1.0.1.8.0.255", "1.0.2.8.0.255"]
        assert back.steps[0].startswith("reconnected")
