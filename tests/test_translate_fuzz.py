"""The translator never raises, whatever the bytes: random input and mutated valid frames
always give layers (errors inside them), and the JSON form always serialises."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core
from smmc_gateway.translate import Keys, translate

EK = bytes(range(16))
AK = bytes(range(16, 32))
TITLE = b"ABCDEFGH"
PLAIN = bytes.fromhex("C0010000080000010000FF0200")
SEEDS = [
    bytes.fromhex("7EA020210373739881801405020200060202000704000000010804000000016FEF7E"),
    bytes.fromhex("7EA0190321326FD8E6E600C0018100010101000001FF0200A8E37E"),
    _core.wrapper_encode(1, 16, bytes.fromhex("C401C1000906" + "00" * 6)),
    _core.cipher_apdu(
        PLAIN, security_control=0x30, system_title=TITLE, invocation_counter=1, ek=EK, ak=AK
    ),
    _core.cipher_apdu(
        PLAIN,
        security_control=0x30,
        system_title=TITLE,
        invocation_counter=1,
        ek=EK,
        ak=AK,
        general=True,
    ),
    bytes.fromhex(
        "0F000000010C07E0071302082728410000000203090E333431353733303030323830303312000102040900"
    ),
]


def _check(data: bytes, keys: Keys | None) -> None:
    layers = translate(data, keys)
    assert layers
    json.dumps([layer.to_json() for layer in layers], default=str)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes(data: bytes, with_keys: bool) -> None:
    _check(data, Keys(EK, AK, TITLE) if with_keys else None)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
    st.booleans(),
)
def test_mutated_frames(seed: bytes, flips: list[tuple[int, int]], cut: int, keys: bool) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    if cut and cut < len(data):
        data = data[:cut]
    _check(bytes(data), Keys(EK, AK, TITLE) if keys else None)
