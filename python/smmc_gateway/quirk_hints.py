"""What a meter's model would need to read bytes the strict decode refuses, said once for
the push listener and the technician's ``decode``."""

from __future__ import annotations

from smmc_gateway import _core

UNTAGGED_DESCRIPTORS = "untagged-attribute-descriptors"
"""The quirk of a model whose push bodies carry untagged attribute descriptors."""


def untagged_descriptors_hint(apdu: bytes) -> str | None:
    """For a data-notification whose body reads only as items {attribute descriptor
    without data tags, value} (Sagemcom XT211): the quirk and model that read it."""
    if not apdu or apdu[0] != 0x0F:
        return None
    try:
        _id, _stamp, _body, found = _core.decode_data_notification_untagged(apdu)
    except _core.DlmsError:
        return None
    if not found:
        return None
    return (
        f"it reads as {found} item(s) {{attribute descriptor without data tags, value}}: "
        f"the quirk {UNTAGGED_DESCRIPTORS}, which a meter's model must name "
        "(e.g. the shipped sagemcom-xt211)"
    )
