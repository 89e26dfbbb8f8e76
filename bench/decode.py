#!/usr/bin/env python3
"""Throughput of the Rust core on the hot paths of a head-end, side by side
with the pure-Python DLMS libraries where they are installed.

Rows measured on the same bytes:
* a 9,600-row IDIS-style load profile (clock date-time octet-string, status
  unsigned, four double-long-unsigned energy registers) decoded to Python rows
  and straight to MeterReadings JSON;
* HDLC deframing with FCS checks (HdlcFramer feed + drain) over max-size frames;
* AES-GCM-128 decryption (12-byte tag) of 256 B, 4 KiB and 64 KiB APDUs, and
  the latency of one 256-byte decryption.

Run: ``python bench/decode.py [--json] [--smoke] [--wall]`` (build the extension
with ``maturin develop --release`` first: debug builds are many times slower).
Optional competitors: ``pip install dlms-cosem gurux-dlms cryptography``. Runtime is
well under a minute; ``--smoke`` is a quick run with a tenth of the rows (what
``dev.sh test`` does), ``--json`` prints one object of named figures (items/s; the
``*_mb_per_s`` ones MB/s). A wrong result of our core ends the run with status 1.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from smmc_gateway import _core

ROWS = 960 if "--smoke" in sys.argv else 9_600
PERIOD = 900  # seconds
WALL = "--wall" in sys.argv
SMOKE = "--smoke" in sys.argv
KEY = bytes(range(16))
IV = bytes.fromhex("4d4d4d0000bc614e01234567")
AAD = bytes.fromhex("30") + bytes(range(16, 32))


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def cosem_datetime(t: dt.datetime, deviation: int) -> bytes:
    return struct.pack(
        ">HBBBBBBBhB",
        t.year,
        t.month,
        t.day,
        t.isoweekday(),
        t.hour,
        t.minute,
        t.second,
        0,
        deviation,
        0,
    )


def load_profile(rows: int = ROWS) -> bytes:
    """An array of structures as an IDIS load profile buffer carries it."""
    start = dt.datetime(2026, 8, 1)
    out = bytearray(b"\x01")
    out += b"\x82" + rows.to_bytes(2, "big")
    for i in range(rows):
        clock = cosem_datetime(start + dt.timedelta(seconds=PERIOD * i), -60)
        out += b"\x02\x06" + b"\x09\x0c" + clock + b"\x11" + bytes([0x80 if i % 97 == 0 else 0])
        for reg in range(4):
            out += b"\x06" + (1_000_000 * reg + 17 * i).to_bytes(4, "big")
    return bytes(out)


def best_of(fn: Callable[[], Any], repeat: int = 5, min_time: float = 0.2) -> float:
    if SMOKE:
        repeat, min_time = 1, 0.02
    return _best_of(fn, repeat, min_time)


def _best_of(fn: Callable[[], Any], repeat: int, min_time: float) -> float:
    """Seconds per call: the best mean over `repeat` batches of >= min_time each.

    Measured as CPU time of this process (``time.process_time``): on a shared
    machine wall time counts the time other processes held the core; every
    case here runs on one thread, so CPU time is its cost. ``--wall`` switches
    to wall-clock time.
    """
    clock = time.perf_counter if WALL else time.process_time
    n = 1
    while True:
        t0 = clock()
        for _ in range(n):
            fn()
        el = clock() - t0
        if el >= min_time / 4 or n >= 1 << 20:
            break
        n *= 4
    per = el / n
    runs = max(1, int(min_time / max(per, 1e-9)))
    times = []
    for _ in range(repeat):
        t0 = clock()
        for _ in range(runs):
            fn()
        times.append((clock() - t0) / runs)
    return min(times)


Row = tuple[str, str, float | None, float | None, str]
table: list[Row] = []
figures: dict[str, float] = {}


class WrongResult(RuntimeError):
    """Our core computed something else than the input holds."""


def add(
    case: str,
    impl: str,
    secs: float | None,
    nbytes: int,
    items: int | None,
    vs: str = "",
    key: str = "",
) -> None:
    if secs is None:
        table.append((case, impl, None, None, vs))
        return
    rate = items / secs if items else None
    table.append((case, impl, rate, nbytes / secs / 1e6, vs))
    if key:
        if rate is not None:
            figures[key] = rate
        figures[key.replace("_per_s", "") + "_mb_per_s"] = nbytes / secs / 1e6


def ratio(ours: float, theirs: float) -> str:
    r = theirs / ours
    return f"{r:,.1f}x faster" if r >= 1 else f"{1 / r:,.1f}x slower"


def bench_profile(buf: bytes) -> None:
    ours = best_of(lambda: _core.decode_profile_buffer(buf, PERIOD))
    add("profile -> Python rows", "smmc _core", ours, len(buf), ROWS, key="profile_rows_per_s")
    if have("dlms_cosem"):
        from dlms_cosem.utils import parse_as_dlms_data

        theirs = best_of(lambda: parse_as_dlms_data(buf), repeat=2, min_time=0.5)
        add(
            "profile -> Python rows",
            "dlms-cosem parse_as_dlms_data",
            theirs,
            len(buf),
            ROWS,
            ratio(ours, theirs),
            key="profile_rows_per_s_dlms_cosem",
        )
    else:
        add("profile -> Python rows", "dlms-cosem (not installed)", None, 0, None)
    if have("gurux_dlms"):
        from gurux_dlms.GXByteBuffer import GXByteBuffer
        from gurux_dlms.GXDLMSSettings import GXDLMSSettings
        from gurux_dlms.internal._GXCommon import _GXCommon
        from gurux_dlms.internal._GXDataInfo import _GXDataInfo

        def gurux() -> Any:
            return _GXCommon.getData(GXDLMSSettings(False, None), GXByteBuffer(buf), _GXDataInfo())

        theirs = best_of(gurux, repeat=2, min_time=0.5)
        add(
            "profile -> Python rows",
            "gurux-dlms GXCommon.getData",
            theirs,
            len(buf),
            ROWS,
            ratio(ours, theirs),
            key="profile_rows_per_s_gurux",
        )
    else:
        add("profile -> Python rows", "gurux-dlms (not installed)", None, 0, None)

    cols = [
        _core.ColumnSpec(
            2 + k,
            f"0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.{k}",
            obis=f"1.0.{k + 1}.8.0.255",
            unit="kWh",
            scaler=-3,
        )
        for k in range(4)
    ]
    ours_json = best_of(
        lambda: _core.profile_to_json(
            buf, clock_column=0, columns=cols, status_column=1, capture_period=PERIOD
        )
    )
    add(
        "profile -> MeterReadings JSON",
        "smmc _core",
        ours_json,
        len(buf),
        ROWS,
        key="profile_json_rows_per_s",
    )


def bench_hdlc() -> None:
    if not (hasattr(_core, "hdlc_encode") and hasattr(_core, "HdlcFramer")):
        add("HDLC deframe + FCS", "smmc _core: not available in this build", None, 0, None)
        return
    info_len = 2030  # the largest information field of a 2047-byte frame
    frames = [
        _core.hdlc_encode(
            "I",
            dest_upper=1,
            src_upper=16,
            send_seq=i % 8,
            recv_seq=0,
            segmented=True,
            info=bytes((i + k) & 0xFF for k in range(info_len)),
        )
        for i in range(64)
    ]
    stream = b"".join(frames)

    def deframe() -> int:
        framer = _core.HdlcFramer(max_frame=2048)
        n = 0
        for pos in range(0, len(stream), 4096):
            framer.feed(stream[pos : pos + 4096])
            while framer.next_frame() is not None:
                n += 1
        return n

    got = deframe()
    if got != len(frames):
        raise WrongResult(f"HDLC deframe: decoded {got}/{len(frames)} frames")
    ours = best_of(deframe)
    add(
        "HDLC deframe + FCS",
        "smmc _core HdlcFramer",
        ours,
        len(stream),
        len(frames),
        key="hdlc_frames_per_s",
    )
    if have("dlms_cosem"):
        from dlms_cosem.hdlc.exceptions import HdlcException
        from dlms_cosem.hdlc.frames import InformationFrame

        def theirs_fn() -> None:
            for f in frames:
                InformationFrame.from_bytes(f)

        try:
            theirs_fn()
        except (HdlcException, ValueError, IndexError) as e:  # reported, not fatal: theirs
            add("HDLC deframe + FCS", f"dlms-cosem failed: {type(e).__name__}", None, 0, None)
            return
        theirs = best_of(theirs_fn, repeat=2, min_time=0.5)
        add(
            "HDLC deframe + FCS",
            "dlms-cosem InformationFrame.from_bytes",
            theirs,
            len(stream),
            len(frames),
            ratio(ours, theirs),
            key="hdlc_frames_per_s_dlms_cosem",
        )


def bench_gcm() -> None:
    if not hasattr(_core, "gcm_decrypt"):
        add("AES-GCM decrypt", "smmc _core: not available in this build", None, 0, None)
        return
    crypto = have("cryptography")
    for size in (256, 4096, 65536):
        pt = bytes(i & 0xFF for i in range(size))
        if hasattr(_core, "gcm_encrypt"):
            ct = _core.gcm_encrypt(KEY, IV, AAD, pt, 12)
        elif crypto:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            full = AESGCM(KEY).encrypt(IV, pt, AAD)  # 16-byte tag; DLMS uses the first 12
            ct = full[:-4]
        else:
            add(f"AES-GCM decrypt {size} B", "no encryptor to build the input", None, 0, None)
            continue
        if _core.gcm_decrypt(KEY, IV, AAD, ct, 12) != pt:
            raise WrongResult(f"AES-GCM decrypt {size} B: not the plaintext")
        ours = best_of(lambda ct=ct: _core.gcm_decrypt(KEY, IV, AAD, ct, 12))
        add(
            f"AES-GCM decrypt {size} B",
            "smmc _core gcm_decrypt",
            ours,
            size,
            1,
            key=f"gcm_{size}_per_s",
        )
        if crypto:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            def theirs_fn(ct: bytes = ct) -> bytes:
                d = Cipher(
                    algorithms.AES(KEY), modes.GCM(IV, ct[-12:], min_tag_length=12)
                ).decryptor()
                d.authenticate_additional_data(AAD)
                return d.update(ct[:-12]) + d.finalize()

            assert theirs_fn() == pt
            theirs = best_of(theirs_fn)
            add(
                f"AES-GCM decrypt {size} B",
                "cryptography (OpenSSL)",
                theirs,
                size,
                1,
                ratio(ours, theirs),
                key=f"gcm_{size}_per_s_openssl",
            )
        if size == 256:
            lat = []
            for _ in range(200 if SMOKE else 2000):
                t0 = time.perf_counter_ns()
                _core.gcm_decrypt(KEY, IV, AAD, ct, 12)
                lat.append(time.perf_counter_ns() - t0)
            table.append(
                (
                    "AES-GCM 256 B latency",
                    "smmc _core (median)",
                    None,
                    None,
                    f"{statistics.median(lat) / 1000:.2f} µs",
                )
            )
            figures["gcm_256_latency_us"] = statistics.median(lat) / 1000
    if not crypto:
        add("AES-GCM decrypt", "cryptography (not installed)", None, 0, None)


def main() -> int:
    buf = load_profile()
    rows = _core.decode_profile_buffer(buf, PERIOD)
    if len(rows) != ROWS or rows[1][0] - rows[0][0] != dt.timedelta(seconds=PERIOD):
        print(
            "bench/decode.py: WrongResult: the profile did not decode to its rows", file=sys.stderr
        )
        return 1
    as_json = "--json" in sys.argv
    if not as_json:
        print(f"load profile: {ROWS} rows, {len(buf):,} bytes of A-XDR")
        clock = "wall clock" if WALL else "CPU time of this process (--wall for wall clock)"
        print(f"timing: {clock}")
    try:
        bench_profile(buf)
        bench_hdlc()
        bench_gcm()
    except (WrongResult, _core.DlmsError) as exc:
        print(f"bench/decode.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"rows": ROWS, **figures}, sort_keys=True))
        return 0
    w = max(len(r[1]) for r in table)
    print(f"{'case':<32} {'implementation':<{w}} {'items/s':>12} {'MB/s':>9}  vs")
    for case, impl, rate, mbs, vs in table:
        r = f"{rate:,.0f}" if rate is not None else "-"
        m = f"{mbs:,.1f}" if mbs is not None else "-"
        print(f"{case:<32} {impl:<{w}} {r:>12} {m:>9}  {vs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
