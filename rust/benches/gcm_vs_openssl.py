"""AES-GCM-128 (12-byte tag) decrypt through smmc_gateway._core vs OpenSSL via
pyca/cryptography. Run after a release build (`maturin develop --release`):

    python rust/benches/gcm_vs_openssl.py

Prints MB/s per size and µs per call; the fair OpenSSL comparison is the
Cipher(AES, GCM(iv, tag, min_tag_length=12)) decryptor (AESGCM only takes
16-byte tags)."""

from __future__ import annotations

import timeit
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smmc_gateway import _core

KEY = bytes(range(16))
IV = bytes.fromhex("4D4D4D0000BC614E01234567")
AAD = b"\x30" + bytes(range(0xD0, 0xE0))


def openssl_decrypt(data: bytes) -> bytes:
    d = Cipher(algorithms.AES(KEY), modes.GCM(IV, data[-12:], min_tag_length=12)).decryptor()
    d.authenticate_additional_data(AAD)
    return d.update(data[:-12]) + d.finalize()


def best_us(fn: Callable[[], object], n: int) -> float:
    return min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6


def main() -> None:
    gk = _core.GcmKey(KEY)
    print(f"{'size':>7} {'ours fn':>10} {'ours GcmKey':>12} {'openssl':>10}  ratio(fn)  ratio(key)   µs fn / key / openssl")
    for size in (256, 4096, 65536):
        pt = bytes(i & 0xFF for i in range(size))
        data = _core.gcm_encrypt(KEY, IV, AAD, pt)
        assert openssl_decrypt(data) == pt == gk.decrypt(IV, AAD, data)
        n = max(20, 2_000_000 // size)
        ours = best_us(lambda: _core.gcm_decrypt(KEY, IV, AAD, data), n)
        ours_k = best_us(lambda: gk.decrypt(IV, AAD, data), n)
        ossl = best_us(lambda: openssl_decrypt(data), n)

        def mbs(us: float) -> float:
            return size / us

        print(
            f"{size:>7} {mbs(ours):>10.0f} {mbs(ours_k):>12.0f} {mbs(ossl):>10.0f}"
            f"  {ossl / ours:>8.2f}  {ossl / ours_k:>9.2f}   {ours:.2f} / {ours_k:.2f} / {ossl:.2f}"
        )


if __name__ == "__main__":
    main()
