"""The shipped device models as validated ModelConfig, by name.

:func:`shipped_model` runs a shipped file's table through the same validation as a
configuration section (:func:`smmc_gateway.ops.config_sections.model_section`) and
raises :class:`~smmc_gateway.models.shipped.ShippedModelError` naming every problem:
a broken shipped file is a packaging mistake, never silently half-used.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from smmc_gateway.models.shipped import BASE, ShippedModelError, raw_table, shipped_names
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.ops.config_values import Problems


@functools.cache
def shipped_model(name: str) -> ModelConfig:
    """Shipped model ``name`` (KeyError naming the shipped ones when there is none)."""
    if name not in shipped_names():
        raise KeyError(f"{name!r} is not a shipped model (shipped: {', '.join(shipped_names())})")
    from smmc_gateway.ops.config_sections import model_section  # it imports models.*

    probs = Problems()
    model = model_section(name, raw_table(name), probs, shipped=True)
    if probs.items:
        raise ShippedModelError(
            f"models/data/{name}.toml: " + "; ".join(str(p) for p in probs.items)
        )
    return model


def shipped_models() -> Mapping[str, ModelConfig]:
    """Every shipped model by name."""
    return MappingProxyType({name: shipped_model(name) for name in shipped_names()})


def base_model() -> ModelConfig:
    """The simulator's conventions (:data:`~smmc_gateway.models.shipped.BASE`): what a
    caller that names no model gets."""
    return shipped_model(BASE)
