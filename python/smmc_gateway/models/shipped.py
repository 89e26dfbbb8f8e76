"""The device models shipped with the gateway (``models/data/*.toml``) and ``extends``.

A model file holds one ``[models.NAME]`` table, the same shape as a configuration's
section (so a shipped model goes through the same validation:
:func:`smmc_gateway.ops.config_sections.model_section`), named like the file.
:func:`resolve` applies ``extends``: the named shipped model's table (itself resolved)
with the section's keys laid over it, tables merged key by key, except the whole-valued
ones (:data:`WHOLE`: a bit map, a code table, a push layout, the register list) which the
section replaces as a whole. A section without ``extends`` extends the shipped model of
its own name if there is one, else :data:`BASE`: the simulator's conventions, which the
gateway followed before models were data.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_values import Problems, Table, join

BASE = "smmc-sim"
"""The model a section without ``extends`` builds on (and the ``default`` model)."""
WHOLE = frozenset({"bits", "codes", "event_codes", "objects", "registers", "quirks"})
"""Keys whose value an extending model replaces rather than merges."""


class ShippedModelError(ValueError):
    """A shipped model file is broken (a packaging or editing mistake)."""


@functools.cache
def _tables() -> Mapping[str, Table]:
    out: dict[str, Table] = {}
    folder = resources.files("smmc_gateway.models").joinpath("data")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        name = entry.name[:-5]
        try:
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ShippedModelError(f"models/data/{entry.name}: {exc}") from None
        models = doc.get("models")
        if set(doc) != {"models"} or not isinstance(models, dict) or set(models) != {name}:
            raise ShippedModelError(
                f"models/data/{entry.name} must hold exactly one "
                f"[models.{name}] table (named like the file)"
            )
        out[name] = models[name]
    return out


def shipped_names() -> tuple[str, ...]:
    """Names of the shipped models, sorted."""
    return tuple(sorted(_tables()))


def raw_table(name: str) -> Table:
    """The table of shipped model ``name`` as written (KeyError when there is none)."""
    return _tables()[name]


def merge(base: Table, over: Table) -> Table:
    """``over`` laid over ``base``: tables merged key by key, :data:`WHOLE` keys and
    non-table values replaced."""
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and key not in WHOLE:
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def resolve(name: str, t: Table, p: str, probs: Problems, shipped: bool = False) -> Table:
    """The table of model ``name`` with its ``extends`` chain applied (``extends`` kept).
    ``shipped``: ``t`` is the shipped model ``name`` itself."""
    if shipped:
        seen, parent = [name], t.get("extends")
    else:  # a section named like a shipped model overrides it
        seen, parent = [], t.get("extends", name if name in _tables() else BASE)
    out = dict(t)
    while parent is not None:
        if not isinstance(parent, str) or parent not in _tables():
            names = shipped_names()
            probs.add(
                join(p, "extends"),
                f"{v.show(parent)} is not a shipped model"
                f"{v.suggest(str(parent), names)} (shipped: {', '.join(names)})",
            )
            return out
        if parent in seen:
            probs.add(join(p, "extends"), f"extends {' -> '.join([*seen, parent])}: a cycle")
            return out
        seen.append(parent)
        base = raw_table(parent)
        out = merge({k: x for k, x in base.items() if k != "extends"}, out)
        parent = base.get("extends")
    if "extends" not in t and not shipped:
        out["extends"] = name if name in _tables() else BASE
    return out
