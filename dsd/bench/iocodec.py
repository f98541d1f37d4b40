"""``dsd bench iocodec [--json]``: compressed requests through the io engine beside the same work
done in-process, measured in the same run.

Corpus: the deterministic mixed corpus (dsd.bench._corpus.mixed) cut into 1 MiB chunks, each
compressed on its own (GDeflate level 9, zstd level 3) as DirectStorage assets are, and stored back
to back in one file.

Cases, per backend (uring when usable, posix):
- ``read-gdeflate`` / ``read-zstd``: one batch of compressed FILE reads into a shared-memory region
  (read into staging, decoded on the codec pool). Baselines: the same chunks decoded from memory
  by dsd.codec / zstandard on one thread, and on all threads (a thread pool; both release the GIL).
- ``write-zstd``: compressed WRITEs (zstd level 3) from the region into a file. Baseline:
  zstandard.compress on one thread plus os.pwrite.
- ``write-plain``: 1 MiB WRITEs through the page cache (direct="off") vs an os.pwrite loop.

Figures are MB/s of uncompressed data, best of ``--repeat`` runs; ratios are engine / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import zstandard

from dsd import _native
from dsd.bench._corpus import mixed
from dsd.codec import gdeflate
from dsd.ioengine import (
    COMPRESSION_GDEFLATE, COMPRESSION_ZSTD, STATUS_OK, pack_request, pack_write, unpack_completions,
)

from ._common import best_of

MiB = 1 << 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("iocodec", help="compressed reads/writes through the io engine vs in-process codecs")
    p.add_argument("--json", action="store_true", help="print one JSON object with every case and contender")
    p.add_argument("--size", type=int, default=32, help="MiB of payload (default 32)")
    p.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept (default 3)")
    p.add_argument("--dir", default=None, help="directory for the test files (default: the temp dir)")
    p.set_defaults(func=run)


def _wait(eng: Any, n: int) -> None:
    got = 0
    while got < n:
        select.select([eng.fileno()], [], [], 1.0)
        for _key, data, _failed, messages in eng.reap(messages=True):
            for c in unpack_completions(data):
                if c.status != STATUS_OK:
                    raise RuntimeError(f"request {c.request_id} failed: {c.reason_name} errno {c.error} {messages}")
            got += len(data) // 32


class _Shm:
    def __init__(self, size: int) -> None:
        self.fd = os.memfd_create("dsd-bench-iocodec", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)

    def close(self) -> None:
        os.close(self.fd)


def _backends() -> list[str]:
    ok, _why = _native.io_uring_probe()
    return (["uring"] if ok else []) + ["posix"]


def measure(size_mib: int, repeat: int, folder: str) -> dict[str, Any]:
    n = max(size_mib, 2)
    corpus = mixed(f"iocodec-{n}", n * MiB)
    chunks = [corpus[i * MiB:(i + 1) * MiB] for i in range(n)]
    threads = os.cpu_count() or 1
    packed = {
        "gdeflate": [gdeflate.compress(c, level=9) for c in chunks],
        "zstd": [zstandard.ZstdCompressor(level=3).compress(c) for c in chunks],
    }
    local = threading.local()  # a ZstdDecompressor is not thread-safe: one per thread

    def zstd_decode(s: bytes) -> bytes:
        if not hasattr(local, "dctx"):
            local.dctx = zstandard.ZstdDecompressor()
        return local.dctx.decompress(s)

    decoders: dict[str, Callable[[bytes], bytes]] = {
        "gdeflate": lambda s: gdeflate.decompress(s, threads=1),
        "zstd": zstd_decode,
    }
    total_mb = n * MiB / 1e6
    res: dict[str, Any] = {"payload_bytes": n * MiB, "chunk_bytes": MiB, "threads_all": threads, "cases": {}}
    shm = _Shm(n * MiB)
    paths: list[str] = []
    try:
        for i, c in enumerate(chunks):
            os.pwrite(shm.fd, c, i * MiB)
        for fmt, streams in packed.items():
            path = os.path.join(folder, f"dsd-bench-iocodec-{os.getpid()}-{fmt}.bin")
            paths.append(path)
            offs, pos = [], 0
            with open(path, "wb") as f:
                for s in streams:
                    offs.append(pos)
                    f.write(s)
                    pos += len(s)
            dec = decoders[fmt]
            one = best_of(lambda: [dec(s) for s in streams], repeat)
            with ThreadPoolExecutor(threads) as pool:
                allt = best_of(lambda: list(pool.map(dec, streams)), repeat)
            case: dict[str, Any] = {
                "compressed_bytes": sum(map(len, streams)),
                "contenders": {f"{fmt}-1thread": {"mb_per_s": total_mb / one},
                               f"{fmt}-allthreads": {"mb_per_s": total_mb / allt}},
                "ratios": {},
            }
            comp = COMPRESSION_GDEFLATE if fmt == "gdeflate" else COMPRESSION_ZSTD
            recs = b"".join(pack_request(i, src_id=1, src_offset=offs[i], src_size=len(s), dst_id=1, dst_offset=i * MiB,
                                         dst_size=MiB, compression=comp) for i, s in enumerate(streams))
            fd = os.open(path, os.O_RDONLY)
            try:
                for backend in _backends():
                    with _native.Registry() as reg, _native.IoEngine(backend=backend, workers=2) as eng:
                        reg.add_file(1, fd)
                        reg.add_region(1, shm.fd, n * MiB)
                        t = best_of(lambda: (eng.submit(reg, 1, recs), _wait(eng, n)), repeat)
                        codec_workers = eng.stats()["codec_workers"]
                    name = f"dsd-{backend}"
                    case["contenders"][name] = {"mb_per_s": total_mb / t, "codec_workers": codec_workers}
                    case["ratios"][f"{name}/{fmt}-1thread"] = one / t
                    case["ratios"][f"{name}/{fmt}-allthreads"] = allt / t
            finally:
                os.close(fd)
            res["cases"][f"read-{fmt}"] = case

        # writes
        out_path = os.path.join(folder, f"dsd-bench-iocodec-{os.getpid()}-out.bin")
        paths.append(out_path)
        out = os.open(out_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            cctx = zstandard.ZstdCompressor(level=3)
            base = best_of(lambda: [os.pwrite(out, cctx.compress(c), i * 2 * MiB) for i, c in enumerate(chunks)], repeat)
            plain = best_of(lambda: [os.pwrite(out, c, i * MiB) for i, c in enumerate(chunks)], repeat)
            wz: dict[str, Any] = {"contenders": {"zstandard+pwrite-1thread": {"mb_per_s": total_mb / base}}, "ratios": {}}
            wp: dict[str, Any] = {"contenders": {"os.pwrite": {"mb_per_s": total_mb / plain}}, "ratios": {}}
            zrecs = b"".join(pack_write(i, 1, i * MiB, MiB, 1, i * 2 * MiB, compression=COMPRESSION_ZSTD, level=3)
                             for i in range(n))
            precs = b"".join(pack_write(i, 1, i * MiB, MiB, 1, i * MiB) for i in range(n))
            for backend in _backends():
                with _native.Registry() as reg, _native.IoEngine(backend=backend, workers=2, direct="off") as eng:
                    reg.add_file(1, out, writable=True)
                    reg.add_region(1, shm.fd, n * MiB)
                    tz = best_of(lambda: (eng.submit(reg, 1, zrecs), _wait(eng, n)), repeat)
                    tp = best_of(lambda: (eng.submit(reg, 1, precs), _wait(eng, n)), repeat)
                name = f"dsd-{backend}"
                wz["contenders"][name] = {"mb_per_s": total_mb / tz}
                wz["ratios"][f"{name}/zstandard+pwrite-1thread"] = base / tz
                wp["contenders"][name] = {"mb_per_s": total_mb / tp}
                wp["ratios"][f"{name}/os.pwrite"] = plain / tp
            res["cases"]["write-zstd"] = wz
            res["cases"]["write-plain"] = wp
        finally:
            os.close(out)
    finally:
        shm.close()
        for p in paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    return res


def run(args: argparse.Namespace) -> int:
    res = measure(args.size, args.repeat, args.dir or tempfile.gettempdir())
    if args.json:
        print(json.dumps({"case": "iocodec", **res}, indent=None, sort_keys=True))
        return 0
    print(f"iocodec benchmark: {res['payload_bytes'] / MiB:.0f} MiB in 1 MiB chunks, {res['threads_all']} CPUs")
    for name, case in res["cases"].items():
        print(f"{name}")
        for who, v in case["contenders"].items():
            print(f"  {who:<28} {v['mb_per_s']:9.1f} MB/s")
        for ratio, v in case["ratios"].items():
            print(f"  {ratio:<44} {v:6.2f}x")
    return 0
