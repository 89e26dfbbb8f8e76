"""``smmc_gateway.connect``: check everything, then build an unopened :class:`Meter`
(see :mod:`smmc_gateway.api` for the parameters)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smmc_gateway import _core
from smmc_gateway.api.meter import Meter
from smmc_gateway.api.url import parse_url
from smmc_gateway.dlms.association import SessionSettings
from smmc_gateway.dlms.client import ClientSession
from smmc_gateway.dlms.endpoint import (
    Addressing,
    ConfigurationError,
    build_security,
    build_transport,
    fresh_title,
    installation_title,
    key_scope,
)

if TYPE_CHECKING:
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

Referencing = Literal["ln", "sn", "auto"]


def _key(value: bytes | str | None, name: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ConfigurationError(name, f"{name}: not hex ({len(value)} characters)") from None
    raise ConfigurationError(
        name, f"{name}: expected bytes or hex text, got {type(value).__name__}"
    )


def connect(
    url: str,
    *,
    client: int | None = None,
    server: int | None = None,
    logical_device: int = 1,
    auth: str = "none",
    password: bytes | str | None = None,
    ek: bytes | str | None = None,
    ak: bytes | str | None = None,
    system_title: bytes | str | None = None,
    ic_store: str | Path | InvocationCounterStore | None = None,
    timeout: float = 10.0,
    referencing: Referencing = "ln",
    quirks: Iterable[str] | None = None,
) -> Meter:
    """An unopened :class:`Meter` for ``url``; everything is checked here, before any
    connection (see :mod:`smmc_gateway.api` for the parameters)."""
    endpoint = parse_url(url)
    if auth not in ("none", "lls", "hls-gmac"):
        raise ConfigurationError("auth", f"auth {auth!r}: expected 'none', 'lls' or 'hls-gmac'")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigurationError("timeout", f"timeout {timeout!r}: a number of seconds > 0")
    client_sap = client if client is not None else (16 if auth == "none" else 1)
    for name, number, top in (
        ("client", client_sap, 0x7F),
        ("server", server, 0x3FFF),
        ("logical_device", logical_device, 0x3FFF),
    ):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= top
        ):
            raise ConfigurationError(name, f"{name} {number!r}: expected 0..{top}")
    if server is not None and endpoint.kind == "wrapper":
        raise ConfigurationError(
            "server",
            "server (the HDLC physical address) has no meaning for tcp:// "
            "(the wrapper); use logical_device, or hdlc+tcp://",
        )
    _check_referencing(referencing)
    tolerated = _quirks(quirks)
    pw = password.encode() if isinstance(password, str) else password
    if auth != "lls" and pw is not None:
        raise ConfigurationError("password", f"a password is for auth='lls', not {auth!r}")
    keys = (_key(ek, "ek"), _key(ak, "ak"))
    title = _key(system_title, "system_title")
    store, owned = None, None
    if auth == "hls-gmac":
        # refuse a missing key before a store is opened or a title file written
        build_security("hls-gmac", ek=keys[0], ak=keys[1], system_title=title or bytes(8))
        store, owned, title = _counters(ic_store, title)
    elif ek is not None or ak is not None:
        raise ConfigurationError("ek", f"keys are for auth='hls-gmac', not {auth!r}")
    security = build_security(
        auth,
        password=pw,
        ek=keys[0],
        ak=keys[1],
        system_title=title,
        ic_store=store,
        ic_scope=key_scope(keys[0], keys[1]) if keys[0] and keys[1] else "",
    )
    addressing = Addressing(client=client_sap, logical_device=logical_device, physical=server)
    transport = build_transport(endpoint, addressing, hdlc_response_timeout=max(timeout / 4, 0.5))
    settings = _settings(client_sap, security, timeout, referencing, tolerated)
    session = ClientSession(transport, settings, meter_id=endpoint.describe())
    return Meter(session, url=url, owned_store=owned)


def _counters(
    ic_store: str | Path | InvocationCounterStore | None,
    title: bytes | None,
) -> tuple[InvocationCounterStore | None, InvocationCounterStore | None, bytes]:
    """(store, the store we opened and close, our system title) for HLS-GMAC."""
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

    if ic_store is None:
        if title is not None:
            raise ConfigurationError(
                "ic_store",
                "a fixed system_title needs ic_store= (a counter store file): without one "
                "the invocation counters restart at 1 and would repeat AES-GCM nonces; "
                "leave system_title out for a fresh random title per connection",
            )
        return None, None, fresh_title()
    if isinstance(ic_store, InvocationCounterStore):
        if title is None:
            if ic_store.path in ("", ":memory:"):
                raise ConfigurationError(
                    "system_title", "an in-memory counter store needs an explicit system_title"
                )
            title = installation_title(Path(ic_store.path))
        return ic_store, None, title
    path = Path(ic_store)
    if title is None:
        title = installation_title(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        store = InvocationCounterStore(path)
    except OSError as exc:
        raise ConfigurationError(
            "ic_store", f"invocation counter store {path}: cannot open it ({exc.strerror or exc})"
        ) from None
    return store, store, title


def _check_referencing(referencing: str) -> None:
    if referencing not in ("ln", "sn", "auto"):
        raise ConfigurationError(
            "referencing", f"referencing {referencing!r}: expected 'ln', 'sn' or 'auto'"
        )
    if referencing == "sn" and "referencing" not in SessionSettings.__dataclass_fields__:
        raise ConfigurationError(
            "referencing",
            "short-name (SN) referencing is not supported by this version's "
            "client session; use 'ln'",
        )


def _quirks(quirks: Iterable[str] | None) -> frozenset[str] | None:
    """None (the session's default tolerance) or the checked set of quirk names."""
    if quirks is None:
        return None
    if isinstance(quirks, str):
        raise ConfigurationError("quirks", f"quirks {quirks!r}: give a list of names, not text")
    names = frozenset(quirks)
    known = {name for name, _, _ in _core.known_quirks()}
    unknown = sorted(names - known)
    if unknown:
        raise ConfigurationError(
            "quirks", f"quirks {unknown} unknown; known: {', '.join(sorted(known))}"
        )
    return names


def _settings(
    client: int, security: Any, timeout: float, referencing: str, quirks: frozenset[str] | None
) -> SessionSettings:
    extra: dict[str, Any] = {}
    if "referencing" in SessionSettings.__dataclass_fields__:
        extra["referencing"] = referencing
    if quirks is not None:
        extra["quirks"] = quirks
    return SessionSettings(
        client_sap=client,
        security=security,
        response_timeout=timeout,
        association_timeout=max(30.0, timeout * 3),
        **extra,
    )
