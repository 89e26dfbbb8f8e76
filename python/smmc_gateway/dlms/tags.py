"""APDU tags by name, as the core states them (``_core.apdu_tag_names``).

Python code that looks at the first byte of an APDU (push reception, the
simulator's fault injection) takes the tag from here instead of spelling the
number again: ``TAGS["aarq"]`` is 0x60, ``TAGS["general-glo-ciphering"]`` 0xDB.
"""

from __future__ import annotations

from smmc_gateway import _core

TAGS: dict[str, int] = {name: tag for tag, name in _core.apdu_tag_names()}
