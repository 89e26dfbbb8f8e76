"""The dispatcher is a table noun -> handler, one module per noun (issue 9 item 7)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import smmc_gateway.headend as headend_pkg
from smmc_gateway.headend import commands

from tests.security.requests_support import dead_fleet

NOUNS = (
    "EndDeviceControls",
    "MeterReadings",
    "MasterDataLinkageConfig",
    "EndDeviceFirmware",
    "MeterConfig",
    "PricingStructureConfig",
    "EndDeviceConfig",
    "CustomerMeterDataSet",
    "ReadingsReport",
    "MeterReadSchedule",
)


def _module_of(noun: str) -> str:
    return "smmc_gateway.headend.commands." + re.sub(r"(?<!^)([A-Z])", r"_\1", noun).lower()


async def test_each_served_noun_is_handled_by_its_own_module(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        table = lab.dispatcher._nouns
        assert sorted(table) == sorted(NOUNS)
        for noun, handler in table.items():
            assert type(handler).__module__ == _module_of(noun), noun


async def test_a_noun_not_in_the_table_names_the_served_ones(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        out = await lab("EndDeviceEvents", "get", {})
    assert out.result == "FAILED" and out.errors[0]["code"] == "NotImplemented"
    assert "served: " + ", ".join(sorted(NOUNS)) in out.errors[0]["details"]


def test_every_noun_module_exists_and_the_flat_modules_are_gone() -> None:
    present = {m.name for m in pkgutil.iter_modules(commands.__path__)}
    for noun in NOUNS:
        assert _module_of(noun).rsplit(".", 1)[1] in present, noun
    flat = {m.name for m in pkgutil.iter_modules(headend_pkg.__path__)}
    assert not {n for n in flat if n.startswith("commands_")}
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("smmc_gateway.headend.commands_store")
