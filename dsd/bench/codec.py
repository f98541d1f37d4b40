"""``dsd bench codec [--json]``: GDeflate decode/encode speed beside zlib (and zstd) in one run.

Corpus: the deterministic mixed corpus ``mixed-8400000`` (text, C source, binary records, random,
zeros, patterns; 8,400,000 bytes) -- byte-identical to the shared conformance input of that name,
so our compressed sizes can be set beside the reference encoder's (REFERENCE_SIZES).

Decode cases (MB/s of output, best of several runs): GDeflate level 9 on 1 thread and on all
threads; zlib (level 6) decompressing the same data deflated in independent 64 KiB chunks, on 1
thread and on all threads (zlib releases the GIL); zstd level 3, one frame. The headline is
GDeflate 1-thread / zlib 1-thread. Encode cases: every GDeflate level (all threads and 1 thread).
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dsd import _native
from dsd.bench._corpus import mixed
from dsd.codec import gdeflate, zstd

from ._common import best_of

CORPUS_NAME = "mixed-8400000"
CORPUS_SIZE = 8_400_000
CHUNK = 65536
# Compressed sizes of this exact corpus by the reference GDeflate encoder (conformance MANIFEST.tsv).
REFERENCE_SIZES = {1: 2_512_368, 9: 2_146_848, 12: 2_126_648}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("codec", help="GDeflate decode/encode throughput vs zlib (64 KiB chunks) and zstd")
    p.add_argument("--json", action="store_true", help="print one JSON object with every case and contender")
    p.add_argument("--repeat", type=int, default=5, help="runs per decode case; the best is kept (default 5)")
    p.add_argument("--levels", default="0-12", help="GDeflate levels to time for compression (e.g. 1,9,12 or 0-12)")
    p.set_defaults(func=run)


def _levels(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return [lv for lv in out if 0 <= lv <= 12]


def _mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else 0.0


def measure(repeat: int = 5, levels: list[int] | None = None) -> dict[str, Any]:
    data = mixed(CORPUS_NAME, CORPUS_SIZE)
    n = len(data)
    cores = int(_native.gdeflate_effective_threads(0))
    result: dict[str, Any] = {"corpus": {"name": CORPUS_NAME, "bytes": n}, "threads_all": cores, "decode": {}, "encode": {}}

    # --- contenders' compressed inputs
    packed9 = gdeflate.compress(data, level=9)
    chunks = [zlib.compress(data[i : i + CHUNK], 6) for i in range(0, n, CHUNK)]
    zframe = zstd.compress(data, level=3)
    out = bytearray(n)

    def gd(threads: int) -> Callable[[], Any]:
        return lambda: gdeflate.decompress_into(packed9, out, threads=threads)

    def zlib_1() -> None:
        for c in chunks:
            zlib.decompress(c)

    pool = ThreadPoolExecutor(cores)

    def zlib_all() -> None:
        list(pool.map(zlib.decompress, chunks))

    assert gdeflate.decompress(packed9) == data
    cases = {
        "gdeflate_l9_1thread": (gd(1), len(packed9)),
        "gdeflate_l9_allthreads": (gd(0), len(packed9)),
        "zlib6_64k_1thread": (zlib_1, sum(map(len, chunks))),
        "zlib6_64k_allthreads": (zlib_all, sum(map(len, chunks))),
        "zstd3_frame_1thread": (lambda: zstd.decompress(zframe), len(zframe)),
    }
    for name, (fn, csize) in cases.items():
        secs = best_of(fn, repeat)
        result["decode"][name] = {"seconds": secs, "mb_per_s": _mbps(n, secs), "compressed_bytes": csize}
    pool.shutdown()
    d = result["decode"]
    result["ratios"] = {
        "gdeflate_vs_zlib_1thread": d["gdeflate_l9_1thread"]["mb_per_s"] / d["zlib6_64k_1thread"]["mb_per_s"],
        "gdeflate_vs_zlib_allthreads": d["gdeflate_l9_allthreads"]["mb_per_s"] / d["zlib6_64k_allthreads"]["mb_per_s"],
        "gdeflate_allthreads_vs_1thread": d["gdeflate_l9_allthreads"]["mb_per_s"] / d["gdeflate_l9_1thread"]["mb_per_s"],
    }

    for level in levels if levels is not None else list(range(13)):
        packed = b""

        def enc(threads: int) -> None:
            nonlocal packed
            packed = gdeflate.compress(data, level=level, threads=threads)

        t_all = best_of(lambda: enc(0), 1)
        t_one = best_of(lambda: enc(1), 1)
        entry = {
            "compressed_bytes": len(packed),
            "ratio": n / len(packed),
            "mb_per_s_allthreads": _mbps(n, t_all),
            "mb_per_s_1thread": _mbps(n, t_one),
        }
        if level in REFERENCE_SIZES:
            entry["reference_bytes"] = REFERENCE_SIZES[level]
            entry["size_vs_reference"] = len(packed) / REFERENCE_SIZES[level]
        result["encode"][f"gdeflate_l{level}"] = entry
    t = best_of(lambda: [zlib.compress(data[i : i + CHUNK], 6) for i in range(0, n, CHUNK)], 1)
    result["encode"]["zlib6_64k"] = {"compressed_bytes": sum(map(len, chunks)), "ratio": n / sum(map(len, chunks)),
                                     "mb_per_s_1thread": _mbps(n, t)}
    return result


def run(args: argparse.Namespace) -> int:
    res = measure(args.repeat, _levels(args.levels))
    if args.json:
        print(json.dumps({"case": "codec", **res}, indent=None, sort_keys=True))
        return 0
    print(f"codec benchmark: {res['corpus']['name']} ({res['corpus']['bytes']:,} bytes), "
          f"all threads = {res['threads_all']} on {os.cpu_count()} CPUs")
    print("decode (MB/s of output, best of runs)")
    for name, v in res["decode"].items():
        print(f"  {name:<26} {v['mb_per_s']:9.1f} MB/s   (input {v['compressed_bytes']:,} bytes)")
    r = res["ratios"]
    print(f"  GDeflate vs zlib (64 KiB chunks): {r['gdeflate_vs_zlib_1thread']:.2f}x on 1 thread, "
          f"{r['gdeflate_vs_zlib_allthreads']:.2f}x on all threads; all/1 thread scaling {r['gdeflate_allthreads_vs_1thread']:.2f}x")
    print("encode")
    for name, v in res["encode"].items():
        ref = f"  {v['size_vs_reference'] * 100 - 100:+.2f}% vs reference" if "size_vs_reference" in v else ""
        speed = f"{v['mb_per_s_allthreads']:7.1f} MB/s all, " if "mb_per_s_allthreads" in v else " " * 19
        print(f"  {name:<12} {v['compressed_bytes']:>10,} bytes ratio {v['ratio']:.3f}  {speed}{v['mb_per_s_1thread']:7.1f} MB/s 1 thread{ref}")
    return 0
