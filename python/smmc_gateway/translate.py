"""The decode translator's layer walk: bytes in, a tree of named layers and fields out.

Input may be one or several HDLC frames (with noise between them), one or several
wrapper frames (IEC 62056-47), or a bare APDU (plain or ciphered). :func:`translate`
detects which, checks what can be checked (HCS/FCS through the core, GCM tags when
keys are given) and returns :class:`Layer` objects; nothing here does IO or printing.
An error is kept at the layer where it occurred, with the field and the absolute
byte offset, and the walk continues with whatever can still be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smmc_gateway import _core
from smmc_gateway.quirk_hints import untagged_descriptors_hint

# APDU tags and names, as the core states them (one home per protocol fact).
_CIPHERED_TAGS: dict[int, str] = {t: name for t, name, _, _ in _core.ciphered_apdu_tags()}
# Plain APDU tags, used to name an APDU when the core cannot decode it.
_PLAIN_TAGS: dict[int, str] = {
    t: name for t, name in _core.apdu_tag_names() if t not in _CIPHERED_TAGS
}


@dataclass
class Field:
    """One named field. ``value`` is JSON-able; ``text`` is the human rendering."""

    name: str
    value: Any
    text: str | None = None
    offset: int | None = None
    typed: bool = False
    """True when ``value`` is a typed A-XDR value tree (rendered as a tree)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value}
        if self.text is not None and not self.typed:
            out["text"] = self.text
        if self.offset is not None:
            out["offset"] = self.offset
        return out


@dataclass
class LayerError:
    """What went wrong at a layer: the field and the absolute byte offset."""

    field: str
    offset: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "offset": self.offset, "message": self.message}


@dataclass
class Layer:
    """One protocol layer (HDLC frame, wrapper, APDU, A-XDR data, …)."""

    name: str
    offset: int
    length: int
    fields: list[Field] = field(default_factory=list)
    children: list[Layer] = field(default_factory=list)
    error: LayerError | None = None
    notes: list[str] = field(default_factory=list)
    quirks: list[tuple[str, str]] = field(default_factory=list)
    """The quirks this layer decodes only with ((name, detail); it is then an error too)."""

    def add(
        self, name: str, value: Any, text: str | None = None, offset: int | None = None
    ) -> None:
        self.fields.append(Field(name, value, text, offset))

    def failed(self) -> bool:
        return self.error is not None or any(c.failed() for c in self.children)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "layer": self.name,
            "offset": self.offset,
            "length": self.length,
            "fields": [f.to_json() for f in self.fields],
        }
        if self.notes:
            out["notes"] = self.notes
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.quirks:
            out["quirks"] = [{"quirk": q, "detail": d} for q, d in self.quirks]
        if self.children:
            out["layers"] = [c.to_json() for c in self.children]
        return out


@dataclass(frozen=True)
class Keys:
    """Keys for deciphering; ``system_title`` is the sender's (for glo-/ded- forms)."""

    ek: bytes
    ak: bytes
    system_title: bytes | None = None

    def __repr__(self) -> str:  # never show key material
        return "Keys(<redacted>)"


def parse_hex(text: str) -> bytes:
    """Hex with optional spaces, colons, dashes, ``0x`` prefixes and newlines.
    Raises ValueError naming the first bad character and its position."""
    cleaned: list[str] = []
    t = text.replace("0x", "  ").replace("0X", "  ")
    for i, ch in enumerate(t):
        if ch in " \t\r\n:-,":
            continue
        if ch not in "0123456789abcdefABCDEF":
            raise ValueError(
                f"not hex: {ch!r} at character {i + 1}; expected hex digits like 7EA0…"
            )
        cleaned.append(ch)
    if not cleaned:
        raise ValueError("no bytes given; expected hex digits like 7EA0…")
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)}); each byte is two digits")
    return bytes.fromhex("".join(cleaned))


def translate(data: bytes, keys: Keys | None = None) -> list[Layer]:
    """Detect the framing of ``data`` and walk every layer."""
    if _looks_like_hdlc(data):
        return _hdlc_stream(data, keys)
    if _looks_like_wrapper(data):
        return _wrapper_stream(data, keys)
    return [apdu_layer(data, 0, keys)]


def _looks_like_hdlc(data: bytes) -> bool:
    if len(data) >= 2 and data[0] == 0x7E and data[1] & 0xF0 == 0xA0:
        return True
    if not data or data[0] in _PLAIN_TAGS or data[0] in _CIPHERED_TAGS or _looks_like_wrapper(data):
        return False
    # Noise before the first frame: somewhere a flag followed by a frame format byte.
    return _frame_start(data, 0) is not None


def _looks_like_wrapper(data: bytes) -> bool:
    return len(data) >= 8 and data[0] == 0x00 and data[1] == 0x01


# ---------------------------------------------------------------- wrapper
def _wrapper_stream(data: bytes, keys: Keys | None) -> list[Layer]:
    layers: list[Layer] = []
    pos = 0
    while pos < len(data):
        rest = data[pos:]
        try:
            version, src, dst, length = _core.wrapper_header(rest)
        except _core.WrapperError as exc:
            layer = Layer("wrapper", pos, len(rest))
            layer.error = _error_from(exc, pos, "header")
            layers.append(layer)
            break
        layer = Layer("wrapper", pos, min(len(rest), 8 + length))
        layer.add("version", version, None, pos)
        layer.add("source wPort", src, _wport_name(src), pos + 2)
        layer.add("destination wPort", dst, _wport_name(dst), pos + 4)
        layer.add("length", length, f"{length} bytes of APDU", pos + 6)
        layers.append(layer)
        if version != 1:
            layer.error = LayerError("version", pos, f"version {version}, expected 1")
            break
        apdu = rest[8 : 8 + length]
        if len(apdu) < length:
            layer.error = LayerError(
                "length",
                pos + 6,
                f"the header announces {length} bytes of APDU, only {len(apdu)} follow",
            )
        if apdu:
            layer.children.append(apdu_layer(apdu, pos + 8, keys))
        pos += 8 + length
    return layers


_WPORTS = {
    0: "no station",
    1: "management (client or logical device)",
    16: "public client",
    0x7F: "all stations (broadcast)",
}


def _wport_name(port: int) -> str | None:
    return _WPORTS.get(port)


# ---------------------------------------------------------------- HDLC
def _hdlc_stream(data: bytes, keys: Keys | None) -> list[Layer]:
    """Find frames (flag, format A/S/length, …, flag) and decode each; bytes outside
    frames are reported as noise. Segmented I-frame information is reassembled."""
    layers: list[Layer] = []
    pos = 0
    noise_start: int | None = None
    segments: list[tuple[int, bytes]] = []
    while pos < len(data):
        start = _frame_start(data, pos)
        if start is None:
            noise_start = pos if noise_start is None else noise_start
            pos = len(data)
            break
        if start > pos:
            noise_start = pos if noise_start is None else noise_start
        if noise_start is not None and start > noise_start:
            layers.append(_noise(data, noise_start, start))
        noise_start = None
        length = ((data[start + 1] & 0x07) << 8) | data[start + 2]
        end = start + length + 2  # opening flag + length bytes + closing flag
        frame = data[start:end]
        layer, decoded = _hdlc_frame(frame, start)
        layers.append(layer)
        if decoded is not None:
            _hdlc_payload(layer, decoded, start, keys, segments)
        pos = end if end <= len(data) else len(data)
        # Frames may share one flag between them: the closing flag opens the next.
        if pos < len(data) and data[pos - 1] == 0x7E and data[pos] & 0xF0 == 0xA0:
            pos -= 1
    if noise_start is not None and noise_start < len(data):
        layers.append(_noise(data, noise_start, len(data)))
    if all(layer.name == "noise" for layer in layers):
        # Nothing but bytes outside any frame (e.g. "7ea0"): not a decode.
        layers[-1].error = LayerError(
            "HDLC frame",
            0,
            f"no HDLC frame in {len(data)} byte(s): a frame is 7E, A0..A7 and its length, "
            "addresses, control, HCS/FCS and 7E (at least 9 bytes)",
        )
    if segments:
        layer = Layer("HDLC reassembly", segments[0][0], sum(len(s) for _, s in segments))
        layer.error = LayerError(
            "segmentation",
            segments[-1][0],
            "the last frame still has the segmentation bit set; "
            "the APDU continues in frames not given",
        )
        layers.append(layer)
    return layers


def _frame_start(data: bytes, pos: int) -> int | None:
    for i in range(pos, len(data) - 2):
        if data[i] == 0x7E and data[i + 1] & 0xF0 == 0xA0:
            return i
    return None


def _noise(data: bytes, start: int, end: int) -> Layer:
    layer = Layer("noise", start, end - start)
    layer.add("bytes", data[start:end].hex(), None, start)
    layer.notes.append(f"{end - start} bytes outside any frame, skipped")
    return layer


def _hdlc_frame(frame: bytes, base: int) -> tuple[Layer, _core.HdlcFrame | None]:
    layer = Layer("HDLC frame", base, len(frame))
    layer.add("opening flag", "7e", None, base)
    fmt = int.from_bytes(frame[1:3], "big")
    layer.add(
        "format",
        f"{fmt:04x}",
        f"type {fmt >> 12:X}, segmentation {(fmt >> 11) & 1}, length {fmt & 0x7FF}",
        base + 1,
    )
    decoded: _core.HdlcFrame | None = None
    try:
        decoded = _core.hdlc_decode(frame)
    except _core.DlmsError as exc:
        layer.error = _error_from(exc, base, "HDLC")
    if len(frame) < ((fmt & 0x7FF) + 2):
        layer.error = LayerError(
            "length",
            base + 1,
            f"the format field announces {fmt & 0x7FF} bytes between the flags, "
            f"only {max(len(frame) - 1, 0)} given (truncated)",
        )
        return layer, None
    if decoded is None:
        _raw_header(layer, frame, base)
        return layer, None
    d = decoded
    pos = 3
    layer.add(
        "destination address",
        frame[pos : pos + d.dest_size].hex(),
        _address_text(d.dest_upper, d.dest_lower),
        base + pos,
    )
    pos += d.dest_size
    layer.add(
        "source address",
        frame[pos : pos + d.src_size].hex(),
        _address_text(d.src_upper, d.src_lower),
        base + pos,
    )
    pos += d.src_size
    layer.add("control", f"{d.control:02x}", _control_text(d), base + pos)
    pos += 1
    if d.info:
        layer.add("HCS", frame[pos : pos + 2].hex(), "checked", base + pos)
        pos += 2
        layer.add("information", d.info.hex(), f"{len(d.info)} bytes", base + pos)
    fcs_at = len(frame) - 3
    layer.add("FCS", frame[fcs_at : fcs_at + 2].hex(), "checked", base + fcs_at)
    layer.add("closing flag", "7e", None, base + len(frame) - 1)
    return layer, decoded


def _raw_header(layer: Layer, frame: bytes, base: int) -> None:
    """Show what can be named of a frame the core rejected."""
    pos = 3
    for name in ("destination address", "source address"):
        if pos >= len(frame):
            return
        n = _address_length(frame, pos)
        raw = frame[pos : pos + n]
        text = None
        if n in (1, 2, 4):
            half = max(n // 2, 1)
            upper = _address_value(raw[:half])
            text = _address_text(upper, _address_value(raw[half:]) if n > 1 else None)
        layer.add(name, raw.hex(), text, base + pos)
        pos += n
    if pos < len(frame):
        layer.add("control", f"{frame[pos]:02x}", None, base + pos)


def _address_length(frame: bytes, pos: int) -> int:
    n = 0
    while pos + n < len(frame):
        n += 1
        if frame[pos + n - 1] & 1:
            break
    return n


def _address_value(raw: bytes) -> int:
    value = 0
    for b in raw:
        value = (value << 7) | (b >> 1)
    return value


def _address_text(upper: int, lower: int | None) -> str:
    if lower is None:
        return f"upper {upper} (0x{upper:x})"
    return f"upper {upper} (0x{upper:x}), lower {lower} (0x{lower:x})"


def _control_text(d: _core.HdlcFrame) -> str:
    parts: list[str] = [d.kind]
    if d.send_seq is not None:
        parts.append(f"N(S)={d.send_seq}")
    if d.recv_seq is not None:
        parts.append(f"N(R)={d.recv_seq}")
    parts.append("P/F=1" if d.poll_final else "P/F=0")
    return " ".join(parts)


def _hdlc_payload(
    layer: Layer,
    d: _core.HdlcFrame,
    base: int,
    keys: Keys | None,
    segments: list[tuple[int, bytes]],
) -> None:
    info_at = base + d.length - 3 - len(d.info)
    if d.kind in ("SNRM", "UA") and d.info:
        layer.children.append(_hdlc_parameters(d.info, info_at))
        return
    if d.kind not in ("I", "UI") or not d.info:
        return
    info = d.info
    at = info_at
    if not segments and len(info) >= 3 and info[0] == 0xE6 and info[1] in (0xE6, 0xE7):
        llc = Layer("LLC", at, 3)
        llc.add("destination LSAP", f"{info[0]:02x}", None, at)
        llc.add(
            "source LSAP",
            f"{info[1]:02x}",
            "command (client to server)" if info[1] == 0xE6 else "response (server to client)",
            at + 1,
        )
        llc.add("quality", f"{info[2]:02x}", None, at + 2)
        layer.children.append(llc)
        info, at = info[3:], at + 3
    if d.segmented:
        segments.append((at, info))
        layer.notes.append("segmented: the APDU continues in the next frame")
        return
    if segments:
        segments.append((at, info))
        whole = b"".join(s for _, s in segments)
        first = segments[0][0]
        segments.clear()
        layer.notes.append(f"last segment: APDU of {len(whole)} bytes reassembled")
        child = apdu_layer(whole, first, keys)
        child.notes.append("offsets inside this APDU count from its first segment")
        layer.children.append(child)
        return
    if info:
        layer.children.append(apdu_layer(info, at, keys))


def _hdlc_parameters(info: bytes, at: int) -> Layer:
    """The SNRM/UA parameters as the core parses them, each at its offset."""
    layer = Layer("HDLC parameters", at, len(info))
    try:
        entries = _core.hdlc_parameters(info)
    except _core.DlmsError as exc:
        layer.error = _error_from(exc, at, "HDLC parameters")
        return layer
    layer.add("format identifier", f"{info[0]:02x}", None, at)
    layer.add("group identifier", f"{info[1]:02x}", None, at + 1)
    layer.add("group length", info[2], None, at + 2)
    for pid, name, value, offset in entries:
        layer.add(name or f"parameter 0x{pid:02x}", value, None, at + offset)
    return layer


# ---------------------------------------------------------------- APDU
def apdu_layer(data: bytes, base: int, keys: Keys | None, *, tolerant: bool = True) -> Layer:
    """One APDU (plain or ciphered), with its A-XDR data and deciphered content.

    ``tolerant`` (not inside a ciphered APDU, as a session never is): an APDU that
    the strict decode refuses but that decodes with the quirks of tolerant reception
    is shown with its value, the quirks named, and still an error (not valid)."""
    tag = data[0] if data else -1
    if tag in _CIPHERED_TAGS:
        return _ciphered_layer(data, base, keys)
    layer = Layer("APDU", base, len(data))
    decode_apdu = getattr(_core, "decode_apdu", None)
    if decode_apdu is None:
        layer.add("tag", f"{tag:02x}" if data else "", _PLAIN_TAGS.get(tag, "unknown"), base)
        layer.add("bytes", data.hex(), None, base)
        layer.notes.append("this build of the core has no decode_apdu: fields not named")
        return layer
    try:
        fields = decode_apdu(data)
    except _core.DlmsError as exc:
        error = _error_from(exc, base, "APDU")
        taken = _tolerated(data) if tolerant else None
        if taken is None:
            layer.add("tag", f"{tag:02x}" if data else "", _PLAIN_TAGS.get(tag, "unknown"), base)
            layer.error = error
            hint = untagged_descriptors_hint(data) if tolerant else None
            if hint is not None:
                layer.error = LayerError(error.field, error.offset, f"{error.message}; {hint}")
            return layer
        fields, layer.quirks = taken
        names = ", ".join(q for q, _ in layer.quirks)
        layer.error = LayerError(
            error.field,
            error.offset,
            f"{error.message}; it decodes only with the quirk(s) {names} of tolerant "
            "reception: the value shown is what a session that tolerates them takes",
        )
        layer.notes.extend(f"quirk {q}: {d}" for q, d in layer.quirks)
    layer.name = f"APDU {fields.get('apdu', _PLAIN_TAGS.get(tag, '?'))}"
    # In an AARQ/AARE the sender's system title is its AP title (for ciphered user-information).
    title = fields.get("calling_ap_title") or fields.get("responding_ap_title")
    ctx = _ApduContext(data, base, keys, bytes(title) if isinstance(title, bytes) else None)
    _apdu_fields(layer, fields, "", ctx)
    return layer


@dataclass
class _ApduContext:
    data: bytes
    base: int
    keys: Keys | None
    sender_title: bytes | None
    absent: list[str] = field(default_factory=list)

    def offset_of(self, raw: bytes) -> int:
        at = self.data.rfind(raw) if raw else -1
        return self.base + at if at >= 0 else self.base


def _apdu_fields(layer: Layer, fields: dict[str, Any], prefix: str, ctx: _ApduContext) -> None:
    absent: list[str] = []
    for key, value in fields.items():
        if key == "apdu" and not prefix:
            layer.add("kind", value)
            continue
        name = f"{prefix}{key}"
        if value is None:
            absent.append(name)
        elif key.endswith("_raw") and isinstance(value, bytes | bytearray):
            raw = bytes(value)
            layer.children.append(data_layer(raw, name[: -len("_raw")], ctx.offset_of(raw)))
        elif key.endswith("_raw") and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, bytes | bytearray):
                    raw = bytes(item)
                    label = f"{name[: -len('_raw')]}[{i}]"
                    layer.children.append(data_layer(raw, label, ctx.offset_of(raw)))
        elif isinstance(value, bytes | bytearray) and key == "user_information" and value:
            layer.children.append(_nested(bytes(value), name, ctx))
        elif isinstance(value, dict) and isinstance(value.get("apdu"), str):
            encode_apdu = getattr(_core, "encode_apdu", None)
            try:
                raw = encode_apdu(value) if encode_apdu is not None else b""
            except _core.DlmsError:
                raw = b""
            if raw:
                layer.children.append(_nested(raw, name, ctx))
            else:
                sub = Layer(f"{name}: {value['apdu']}", ctx.base, 0)
                _apdu_fields(sub, value, "", ctx)
                layer.children.append(sub)
        elif isinstance(value, dict):
            _apdu_fields(layer, value, f"{name}.", ctx)
        elif isinstance(value, bytes | bytearray):
            raw = bytes(value)
            layer.add(name, raw.hex(), _bytes_text(key, raw))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                _apdu_fields(layer, item, f"{name}[{i}].", ctx)
        else:
            layer.add(name, value, _scalar_text(key, value))
    if absent:
        layer.notes.append("absent optional fields: " + ", ".join(absent))


def _nested(raw: bytes, name: str, ctx: _ApduContext) -> Layer:
    """An APDU inside another (user-information): deciphered with the AP title."""
    keys = ctx.keys
    if keys is not None and ctx.sender_title is not None:
        keys = Keys(keys.ek, keys.ak, ctx.sender_title)
    sub = apdu_layer(raw, ctx.offset_of(raw), keys)
    sub.name = f"{name.replace('_', '-')}: {sub.name}"
    return sub


def _bytes_text(key: str, raw: bytes) -> str | None:
    if len(raw) == 6 and ("instance" in key or "obis" in key or "logical_name" in key):
        return ".".join(str(b) for b in raw)
    if len(raw) == 12 and ("time" in key or "date" in key):
        try:
            dt = _core.decode_datetime(raw)
        except _core.DlmsError:
            return None
        return dt.isoformat() if dt is not None else "not specified"
    if len(raw) == 8 and "title" in key:
        printable = raw[:3].decode("ascii", "replace") if raw[:3].isalnum() else None
        return f"manufacturer {printable}, serial {raw[3:].hex()}" if printable else None
    if raw.isascii() and raw.decode().isprintable() and len(raw) >= 4:
        return repr(raw.decode())
    return None


def _scalar_text(key: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if key in ("invoke_id_and_priority", "invoke_id"):
            return (
                f"invoke id {value & 0x0F}, {'high' if value & 0x80 else 'normal'} priority, "
                + ("confirmed" if value & 0x40 else "unconfirmed")
            )
        if "security_control" in key:
            return security_control_text(value)
        if "conformance" in key:
            return f"0x{value:06x}"
        if key == "name":
            return f"short name 0x{value:04X}"
        if key == "vaa_name":
            kind = {0x0007: "LN", 0xFA00: "SN, the current association's base name"}
            return f"0x{value:04X}" + (f" ({kind[value]})" if value in kind else "")
    return None


def security_control_text(sc: int) -> str:
    modes = {
        0x00: "no protection",
        0x10: "authentication",
        0x20: "encryption",
        0x30: "authenticated encryption",
    }
    parts = [modes[sc & 0x30], f"suite {sc & 0x0F}"]
    parts.append("broadcast key" if sc & 0x40 else "unicast key")
    if sc & 0x80:
        parts.append("compressed")
    return ", ".join(parts)


def _ciphered_layer(data: bytes, base: int, keys: Keys | None) -> Layer:
    """A ciphered APDU as the core decodes its framing (system title, security
    control, invocation counter, ciphertext), then deciphered when keys are given."""
    kind = _CIPHERED_TAGS[data[0]]
    layer = Layer(f"APDU {kind}", base, len(data))
    layer.add("tag", f"{data[0]:02x}", kind, base)
    try:
        fields = _core.decode_apdu(data)
    except _core.DlmsError as exc:
        layer.error = _error_from(exc, base, "ciphered APDU")
        return layer
    pos = 1
    sender: bytes | None = None
    if isinstance(fields.get("system_title"), bytes):
        sender = bytes(fields["system_title"])
        pos += _ber_size(len(sender))
        layer.add("system title", sender.hex(), _bytes_text("title", sender), base + pos)
        pos += len(sender)
    sc: int = fields["security_control"]
    ciphertext = bytes(fields["ciphertext"])
    length = 5 + len(ciphertext)
    layer.add("length", length, None, base + pos)
    pos = len(data) - length  # the content runs to the end (the core refuses trailing bytes)
    layer.add("security control", f"{sc:02x}", security_control_text(sc), base + pos)
    layer.add("invocation counter", fields["invocation_counter"], None, base + pos + 1)
    tag_len = 12 if sc & 0x10 else 0
    body = ciphertext[: len(ciphertext) - tag_len] if tag_len else ciphertext
    layer.add(
        "ciphertext" if sc & 0x20 else "plaintext",
        body.hex(),
        f"{len(body)} bytes",
        base + pos + 5,
    )
    if tag_len:
        layer.add("authentication tag", ciphertext[-12:].hex(), None, base + len(data) - 12)
    if keys is None:
        layer.notes.append("give --ek and --ak (and --system-title of the sender) to decipher")
        if not sc & 0x20:
            layer.children.append(apdu_layer(body, base + pos + 5, None, tolerant=False))
        return layer
    title = sender or keys.system_title
    if title is None:
        layer.error = LayerError(
            "system title", base, "the sender's system title is needed: give --system-title"
        )
        return layer
    try:
        plain, _sc, _ic, _st = _core.decipher_apdu(data, system_title=title, ek=keys.ek, ak=keys.ak)
    except _core.AuthenticationError:
        layer.error = LayerError(
            "authentication tag",
            base + len(data) - tag_len,
            "the tag does not match: wrong key or system title, or tampered data",
        )
        return layer
    except _core.DlmsError as exc:
        layer.error = _error_from(exc, base, "security")
        return layer
    if tag_len:
        layer.fields[-1].text = "verified"
    layer.notes.append(f"deciphered with system title {title.hex()}")
    child = apdu_layer(plain, base + pos + 5, None, tolerant=False)
    child.notes.append("deciphered: offsets inside count from the start of the ciphertext")
    layer.children.append(child)
    return layer


def _ber_size(length: int) -> int:
    """How many bytes the A-XDR length ``length`` takes (the core wrote or read it)."""
    return 1 if length < 0x80 else 1 + (length.bit_length() + 7) // 8


# ---------------------------------------------------------------- A-XDR
def _tolerated(data: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
    """The APDU decoded with every quirk of tolerant reception, and the quirks taken."""
    try:
        fields, quirks = _core.decode_apdu_tolerant(data)
    except _core.DlmsError:
        return None
    return (fields, quirks) if quirks else None


def data_layer(raw: bytes, name: str, base: int) -> Layer:
    """A-XDR bytes to a layer holding the typed value tree."""
    layer = Layer(f"A-XDR data ({name})", base, len(raw))
    try:
        value = _core.decode(raw)
    except _core.DlmsError as exc:
        layer.add("bytes", raw.hex())
        layer.error = _error_from(exc, 0, "A-XDR")
        layer.notes.append("offset counts from the start of this data")
        return layer
    layer.fields.append(Field("value", value, typed=True))
    return layer


def _error_from(exc: _core.DlmsError, base: int, layer: str) -> LayerError:
    field_name = getattr(exc, "field", None) or layer
    offset = getattr(exc, "offset", None)
    return LayerError(str(field_name), base + offset if isinstance(offset, int) else None, str(exc))


def any_error(layers: list[Layer]) -> bool:
    return any(layer.failed() for layer in layers)


def quirks_taken(layers: list[Layer]) -> list[str]:
    """The names of the quirks some layer decodes only with (each once, in order)."""
    out: list[str] = []
    for layer in layers:
        for q, _ in layer.quirks:
            if q not in out:
                out.append(q)
        out.extend(q for q in quirks_taken(layer.children) if q not in out)
    return out
