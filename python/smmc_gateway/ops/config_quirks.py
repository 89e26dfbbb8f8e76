"""The quirk settings of a ``[models.NAME]`` section: which of a meter's quirks the
gateway tolerates (``docs/configuration.md``, ``[models.NAME]``).

* ``quirks = [...]``: tolerated on top of the defaults (``plain-initiate-response``,
  which touches security, is tolerated only when listed here);
* ``refuse_quirks = [...]``: default quirks this model refuses;
* ``strict = true``: every quirk refused (an answer that needs one is an error naming it).

The result is the set of quirk names tolerated, as ``ModelConfig.quirks`` holds it.
"""

from __future__ import annotations

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_model import DEFAULT_QUIRKS, KNOWN_QUIRKS
from smmc_gateway.ops.config_values import Problems, Table, join

QUIRK_KEYS = ("quirks", "refuse_quirks", "strict")


def _names(t: Table, key: str, p: str, probs: Problems) -> set[str]:
    names: set[str] = set()
    for i, q in enumerate(v.get_str_list(t, key, p, probs)):
        if q in KNOWN_QUIRKS:
            names.add(q)
            continue
        known = "; ".join(f"{k} ({d})" for k, d in KNOWN_QUIRKS.items())
        probs.add(
            join(join(p, key), i),
            f"{v.show(q)} is not a known quirk{v.suggest(q, KNOWN_QUIRKS)}; known: {known}",
        )
    return names


def quirk_settings(t: Table, p: str, probs: Problems) -> frozenset[str]:
    """The quirks tolerated for the model at ``p`` (its table ``t``)."""
    tolerate = _names(t, "quirks", p, probs)
    refuse = _names(t, "refuse_quirks", p, probs)
    strict = v.get_bool(t, "strict", p, probs, False)
    for q in sorted(tolerate & refuse):
        probs.add(join(p, "refuse_quirks"), f"{q} is also in quirks: tolerate it or refuse it")
    if strict:
        if tolerate:
            probs.add(
                join(p, "strict"),
                "strict = true refuses every quirk, but quirks lists "
                f"{', '.join(sorted(tolerate))}: drop one or the other",
            )
        return frozenset()
    return frozenset((DEFAULT_QUIRKS | tolerate) - refuse)
