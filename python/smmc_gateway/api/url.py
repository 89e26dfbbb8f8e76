"""Meter URLs of the public API: ``tcp://H:P`` and friends -> an :class:`Endpoint`.

=============================  ==================================================
``tcp://HOST:PORT``            TCP with the IEC 62056-47 wrapper (port 4059 usual)
``hdlc+tcp://HOST:PORT``       HDLC over TCP (serial-to-IP converters)
``mode-e+tcp://HOST:PORT``     IEC 62056-21 mode E sign-on, then HDLC, over TCP
``serial:///dev/ttyX``         HDLC on a serial / RS-485 line (``?baud=9600``)
``optical:///dev/ttyX``        the optical head: mode E sign-on, then HDLC
=============================  ==================================================

``?baud=N`` is the line speed (serial, default 9600) or the highest speed a mode E
sign-on may switch to (optical, mode-e). IPv6 hosts go in brackets
(``tcp://[2001:db8::7]:4059``). A bad URL raises
:class:`~smmc_gateway.dlms.endpoint.ConfigurationError` whose message and ``part``
name what is wrong (``scheme``, ``host``, ``port``, ``path``, ``query``, ``baud``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from smmc_gateway.dlms.endpoint import ConfigurationError, Endpoint, Kind

SCHEMES: dict[str, Kind] = {
    "tcp": "wrapper",
    "hdlc+tcp": "hdlc",
    "mode-e+tcp": "mode-e",
    "serial": "serial",
    "optical": "optical",
}
EXAMPLES = "tcp://127.0.0.1:4059, hdlc+tcp://HOST:PORT, serial:///dev/ttyUSB0?baud=9600"


def parse_url(url: str) -> Endpoint:
    """The endpoint of a meter URL (see the module doc)."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            "scheme", f"meter URL {url!r} has no scheme; expected e.g. {EXAMPLES}"
        )
    scheme = url.split("://", 1)[0].lower()
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise ConfigurationError(
            "scheme",
            f"meter URL {url!r}: scheme {scheme!r} is not one of {', '.join(SCHEMES)}",
        )
    parts = urlsplit(url)
    if parts.fragment:
        raise ConfigurationError("fragment", f"meter URL {url!r}: a '#' part has no meaning here")
    baud = _query(url, parts.query, kind)
    if kind in ("wrapper", "hdlc", "mode-e"):
        if parts.path not in ("", "/"):
            raise ConfigurationError(
                "path", f"meter URL {url!r}: a TCP URL has no path ({parts.path!r})"
            )
        host = parts.hostname
        if not host:
            raise ConfigurationError(
                "host", f"meter URL {url!r} has no host; expected {scheme}://HOST:PORT"
            )
        try:
            port = parts.port
        except ValueError:
            raw = parts.netloc.rpartition(":")[2]
            raise ConfigurationError(
                "port", f"meter URL {url!r}: port {raw!r} is not a number 1..65535"
            ) from None
        if port is None or port == 0:
            raise ConfigurationError(
                "port",
                f"meter URL {url!r} has no port; expected {scheme}://{host}:PORT (e.g. 4059)",
            )
        if kind == "wrapper" and baud is not None:
            raise ConfigurationError("query", f"meter URL {url!r}: baud applies to serial links")
        return Endpoint(kind, host=host, port=port, baud=baud)
    if parts.netloc:
        raise ConfigurationError(
            "path",
            f"meter URL {url!r}: a device path goes after three slashes, "
            f"e.g. {scheme}:///dev/ttyUSB0 (found host {parts.netloc!r})",
        )
    if not parts.path or parts.path == "/":
        raise ConfigurationError(
            "path", f"meter URL {url!r} names no device, e.g. {scheme}:///dev/ttyUSB0"
        )
    return Endpoint(kind, device=parts.path, baud=baud)


def _query(url: str, query: str, kind: Kind) -> int | None:
    baud: int | None = None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(
            "query", f"meter URL {url!r}: query {query!r} is not k=v"
        ) from None
    for key, value in pairs:
        if key != "baud":
            raise ConfigurationError(
                "query", f"meter URL {url!r}: unknown parameter {key!r} (known: baud)"
            )
        if not value.isascii() or not value.isdigit() or int(value) <= 0:
            raise ConfigurationError(
                "baud", f"meter URL {url!r}: baud {value!r} is not a positive number"
            )
        baud = int(value)
    return baud
