"""Security suite 0 through the Python API: public vectors (Green Book, NIST,
RFC 3394), tamper detection, error reporting and round trips."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core
from smmc_gateway._core import AuthenticationError, SecurityError

VECTORS = Path(__file__).parent / "vectors" / "security"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def _hex(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


GB = _load("green_book.json")
EK = _hex(GB["ek"])
AK = _hex(GB["ak"])
SERVER_ST = _hex(GB["server_system_title"])


@pytest.mark.parametrize("case", _load("nist_gcm.json")["cases"], ids=lambda c: f"case{c['case']}")
def test_nist_gcm(case: dict[str, Any]) -> None:
    key, iv, aad, pt = (_hex(case[k]) for k in ("key", "iv", "aad", "pt"))
    want = _hex(case["ct"]) + _hex(case["tag"])
    assert _core.gcm_encrypt(key, iv, aad, pt, 16) == want
    assert _core.gcm_decrypt(key, iv, aad, want, 16) == pt
    # 12-byte tag = the leading 12 bytes of the full tag.
    assert _core.gcm_encrypt(key, iv, aad, pt) == want[:-4]
    assert _core.gcm_decrypt(key, iv, aad, want[:-4]) == pt
    gk = _core.GcmKey(key)
    assert gk.encrypt(iv, aad, pt, 16) == want
    assert gk.decrypt(iv, aad, want[:-4], 12) == pt


@pytest.mark.parametrize("case", GB["ciphered_apdus"], ids=lambda c: c["name"])
def test_green_book_ciphered_apdus(case: dict[str, Any]) -> None:
    plain, wire = _hex(case["plain"]), _hex(case["ciphered"])
    sc, ic = case["security_control"], case["invocation_counter"]
    sender = _hex(case.get("system_title", GB["server_system_title"]))
    got = _core.cipher_apdu(
        plain, security_control=sc, system_title=sender, invocation_counter=ic, ek=EK, ak=AK
    )
    assert got == wire
    assert _core.decipher_apdu(wire, system_title=sender, ek=EK, ak=AK) == (plain, sc, ic, sender)
    content = wire[2:]
    assert _core.protect(sc, sender, ic, EK, AK, plain) == content
    assert _core.unprotect(sender, EK, AK, content) == (sc, ic, plain)


def test_general_glo_and_ded_ciphering() -> None:
    case = GB["ciphered_apdus"][0]
    plain, wire = _hex(case["plain"]), _hex(case["ciphered"])
    kw: dict[str, Any] = {
        "security_control": 0x30,
        "system_title": SERVER_ST,
        "invocation_counter": 0x01234567,
    }
    general = _core.cipher_apdu(plain, ek=EK, ak=AK, general=True, **kw)
    assert general == b"\xdb\x08" + SERVER_ST + wire[1:]
    assert _core.decipher_apdu(general, system_title=None, ek=EK, ak=AK) == (
        plain,
        0x30,
        0x01234567,
        SERVER_ST,
    )
    ded = _core.cipher_apdu(plain, ek=EK, ak=AK, dedicated=True, **kw)
    assert ded == b"\xd0" + wire[1:]
    assert _core.cipher_apdu(plain, ek=EK, ak=AK, dedicated=True, general=True, **kw)[0] == 0xDC


@pytest.mark.parametrize("case", GB["hls_gmac"], ids=lambda c: c["name"])
def test_hls_gmac(case: dict[str, Any]) -> None:
    st_, ch, want = _hex(case["system_title"]), _hex(case["challenge"]), _hex(case["response"])
    assert _core.hls_gmac(0x10, st_, case["invocation_counter"], EK, AK, ch) == want
    assert _core.hls_gmac_verify(st_, EK, AK, ch, want) == case["invocation_counter"]
    with pytest.raises(AuthenticationError):
        _core.hls_gmac_verify(st_, EK, AK, ch + b"x", want)


@pytest.mark.parametrize("case", _load("rfc3394.json")["cases"], ids=lambda c: c["section"])
def test_rfc3394(case: dict[str, Any]) -> None:
    v = _load("rfc3394.json")
    kek, key = _hex(v["kek"])[: case["kek_len"]], _hex(v["key"])[: case["key_len"]]
    wrapped = _core.aes_key_wrap(kek, key)
    assert wrapped == _hex(case["wrapped"])
    assert _core.aes_key_unwrap(kek, wrapped) == key
    bad = bytes([wrapped[0] ^ 1]) + wrapped[1:]
    with pytest.raises(AuthenticationError) as exc:
        _core.aes_key_unwrap(kek, bad)
    assert exc.value.field == "wrapped key"


@pytest.mark.parametrize("sc", [0x10, 0x30])
def test_every_bit_flip_of_sc_ic_ciphertext_tag_is_rejected(sc: int) -> None:
    plain = _hex(GB["ciphered_apdus"][0]["plain"])
    wire = _core.cipher_apdu(
        plain, security_control=sc, system_title=SERVER_ST, invocation_counter=7, ek=EK, ak=AK
    )
    for i in range(2, len(wire)):
        for bit in range(8):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            with pytest.raises(SecurityError) as exc:
                _core.decipher_apdu(
                    bytes(bad), system_title=SERVER_ST, ek=EK, ak=AK, required_protection=sc
                )
            if i >= 3:  # IC, ciphertext/plaintext, tag
                assert isinstance(exc.value, AuthenticationError), (i, bit)


def test_downgrade_to_encryption_only_needs_the_policy() -> None:
    plain = _hex(GB["ciphered_apdus"][0]["plain"])
    content = bytearray(_core.protect(0x30, SERVER_ST, 1, EK, AK, plain))
    content[0] = 0x20  # strip "authenticated": no tag to check any more
    with pytest.raises(SecurityError) as exc:
        _core.unprotect(SERVER_ST, EK, AK, bytes(content), required_protection=0x30)
    assert (exc.value.field, exc.value.offset) == ("security control", 0)


def test_gcm_tamper_and_wrong_key() -> None:
    ct = _core.gcm_encrypt(EK, SERVER_ST + b"\0\0\0\1", b"aad", b"x" * 100)
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x80
        with pytest.raises(AuthenticationError):
            _core.gcm_decrypt(EK, SERVER_ST + b"\0\0\0\1", b"aad", bytes(bad))
    with pytest.raises(AuthenticationError):
        _core.gcm_decrypt(AK, SERVER_ST + b"\0\0\0\1", b"aad", ct)
    with pytest.raises(AuthenticationError):
        _core.gcm_decrypt(EK, SERVER_ST + b"\0\0\0\1", b"aaD", ct)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: _core.gcm_encrypt(b"k" * 15, b"i" * 12, b"", b""), "key"),
        (lambda: _core.gcm_encrypt(b"k" * 16, b"i" * 16, b"", b""), "IV"),
        (lambda: _core.gcm_encrypt(b"k" * 16, b"i" * 12, b"", b"", 8), "tag length"),
        (lambda: _core.gcm_decrypt(b"k" * 16, b"i" * 12, b"", b"short"), "authentication tag"),
        (
            lambda: _core.protect(0x31, SERVER_ST, 1, EK, AK, b"\xc0"),
            "security control: security suite",
        ),
        (
            lambda: _core.protect(0xB0, SERVER_ST, 1, EK, AK, b"\xc0"),
            "security control: compression",
        ),
        (lambda: _core.protect(0x00, SERVER_ST, 1, EK, AK, b"\xc0"), "security control"),
        (lambda: _core.protect(0x30, SERVER_ST[:7], 1, EK, AK, b"\xc0"), "system title"),
        (lambda: _core.protect(0x30, SERVER_ST, 1, EK[:8], AK, b"\xc0"), "EK"),
        (lambda: _core.protect(0x30, SERVER_ST, 1, EK, AK + b"x", b"\xc0"), "AK"),
        (lambda: _core.protect(0x30, SERVER_ST, 2**32, EK, AK, b"\xc0"), "invocation counter"),
        (lambda: _core.unprotect(SERVER_ST, EK, AK, b"\x30\x00\x00"), "invocation counter"),
        (
            lambda: _core.decipher_apdu(b"\xc8\x1e\x30", system_title=None, ek=EK, ak=AK),
            "system title",
        ),
        (
            lambda: _core.decipher_apdu(b"\xc8\x10\x30", system_title=SERVER_ST, ek=EK, ak=AK),
            "ciphered content",
        ),
        (
            lambda: _core.decipher_apdu(b"\x60\x00", system_title=SERVER_ST, ek=EK, ak=AK),
            "APDU tag",
        ),
        (lambda: _core.aes_key_wrap(b"k" * 20, b"x" * 16), "KEK"),
        (lambda: _core.protect(0x30, SERVER_ST, 1, "k" * 16, AK, b"\xc0"), "EK"),  # type: ignore[arg-type]
        (lambda: _core.aes_key_unwrap(b"k" * 16, b"x" * 20), "wrapped key"),
    ],
)
def test_bad_input_names_the_field(call: Any, field: str) -> None:
    with pytest.raises(SecurityError) as exc:
        call()
    assert exc.value.layer == "security"
    assert exc.value.field == field
    assert not isinstance(exc.value, AuthenticationError)


def test_large_apdu_round_trip_releases_nothing_wrong() -> None:
    big = b"\xc4" + bytes(range(256)) * 256  # 64 KiB + 1, beyond the GIL-release threshold
    wire = _core.cipher_apdu(
        big,
        security_control=0x30,
        system_title=SERVER_ST,
        invocation_counter=9,
        ek=EK,
        ak=AK,
        general=True,
    )
    assert wire[10:13] == b"\x83\x01\x00"  # 3-byte A-XDR length of the content
    assert _core.decipher_apdu(wire, system_title=None, ek=EK, ak=AK)[0] == big
    gk = _core.GcmKey(EK)
    assert _core.decipher_apdu(wire, system_title=None, ek=gk, ak=AK)[0] == big
    ct = gk.encrypt(b"\0" * 12, b"", big)
    assert gk.decrypt(b"\0" * 12, b"", ct) == big
    with pytest.raises(AuthenticationError):
        gk.decrypt(b"\0" * 12, b"", ct[:-1] + bytes([ct[-1] ^ 1]))
    assert "secret" in repr(gk)


@settings(max_examples=60, deadline=None)
@given(
    sc=st.sampled_from([0x10, 0x20, 0x30, 0x50, 0x70]),
    ic=st.integers(0, 2**32 - 1),
    body=st.binary(max_size=300),
    dedicated=st.booleans(),
    general=st.booleans(),
)
def test_round_trip(sc: int, ic: int, body: bytes, dedicated: bool, general: bool) -> None:
    apdu = b"\xc1" + body
    wire = _core.cipher_apdu(
        apdu,
        security_control=sc,
        system_title=SERVER_ST,
        invocation_counter=ic,
        ek=EK,
        ak=AK,
        dedicated=dedicated,
        general=general,
    )
    assert _core.decipher_apdu(
        wire, system_title=SERVER_ST, ek=EK, ak=AK, required_protection=sc & 0x30
    ) == (
        apdu,
        sc,
        ic,
        SERVER_ST,
    )


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_input_raises_only_security_errors(data: bytes) -> None:
    with contextlib.suppress(SecurityError):
        _core.decipher_apdu(data, system_title=SERVER_ST, ek=EK, ak=AK)
