"""``dsd bench gpu [--json]``: GDeflate decompression on the Vulkan GPU against the CPU.

Data: a game-like mix (English-like text, vertex-like binary records, triangle indices,
incompressible blocks standing in for already-compressed textures) built deterministically, cut into
requests of --request-kib and compressed with the dsd GDeflate codec (or taken from --data
.gdef streams, replicated up to --mib). Contenders, all on the same streams in one run:

- gpu-shader      our shader, decode only (input already in device memory, output stays there);
                  GPU time from timestamp queries, and the wall time of submit -> fence
- gpu-nv          the driver's VK_NV_memory_decompression, same conditions (where present)
- gpu-file        end to end: each request read from the file straight into the staging
                  buffer (reserve_staging/decode_staged, preadv on 8 threads), uploaded, decoded
                  into a device buffer
- gpu-file-host   the same with the output copied back into host memory (a client's region)
- cpu-codec       the dsd CPU codec on every core (when dsd.codec is built)
- zlib-64k        zlib on one core over the same data cut in 64 KiB chunks (always there)
- nvcomp          NVIDIA nvCOMP's batched GDeflate decoder on the same tiles (when its wheel
                  and CuPy are importable); also checks that nvCOMP reads our tiles
- dispatch        host wall time of one decode_batch_pool() call on a batch of one small tile
                  (plan, reuse the recording, submit, wait, status read), median of 400, against
                  the 50 µs goal; beside it the submit-to-complete round trip and the GPU's own
                  time (timestamps around the dispatch)

Every GPU output is checked against the CPU's (or nvCOMP's) by SHA-256 before it is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import struct
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when texture mesh shader vertex index buffer level "
    "actor spawn light shadow material normal tangent bone anim frame sound music quest dialog player enemy "
    "health damage weapon armor item inventory map zone"
).split()


def _text_block(rng: random.Random, n: int) -> bytes:
    words = rng.choices(WORDS, k=n // 5 + 8)
    out = " ".join(words).encode()
    return out[:n]


def _record_block(rng: random.Random, n: int) -> bytes:
    # Vertex-like records: positions on a 1/64 grid moving in small steps, normals and UVs
    # from small sets, ascending ids: the kind of binary a mesh or a save file holds.
    count = n // 32 + 1
    pos = [rng.randrange(-4096, 4096) / 64 for _ in range(3)]
    parts = []
    for i in range(count):
        pos = [p + rng.choice((-2, -1, 0, 0, 1, 2)) / 64 for p in pos]
        parts.append(struct.pack("<3f4bHHI", *pos, rng.choice((0, 127, -127)), rng.choice((0, 127)), 0, 0,
                                 (i * 7) & 0xFFFF, rng.randrange(8) * 256, i))
    return b"".join(parts)[:n]


def _index_block(rng: random.Random, n: int) -> bytes:
    # Triangle-strip indices (u16) with occasional restarts.
    out, v = [], rng.randrange(1000)
    while len(out) * 2 < n:
        out += [v, v + 1, v + 2]
        v += 1 if rng.random() < 0.95 else rng.randrange(2, 50)
    return struct.pack(f"<{len(out)}H", *[x & 0xFFFF for x in out])[:n]


def game_like_corpus(size: int, seed: int = 2026) -> bytes:
    """`size` bytes of a deterministic mix; blocks of 3..60 KiB so tiles differ."""
    rng = random.Random(seed)
    pool = []
    for i in range(96):
        n = rng.randrange(3 << 10, 60 << 10)
        kind = i % 24  # 9 text, 8 records, 4 index, 3 incompressible (ratio ~2.5 at level 9)
        if kind < 9:
            pool.append(_text_block(rng, n))
        elif kind < 17:
            pool.append(_record_block(rng, n))
        elif kind < 21:
            pool.append(_index_block(rng, n))
        else:
            pool.append(rng.randbytes(n))
    out = bytearray()
    while len(out) < size:
        blk = pool[rng.randrange(len(pool))]
        key = rng.randrange(256)
        # A different byte per copy keeps copies from being identical tiles.
        out += bytes([key]) + blk
    return bytes(out[:size])


def _median(xs):
    return statistics.median(xs) if xs else None


def _gbps(nbytes, seconds):
    return None if not seconds else nbytes / seconds / 1e9


def _encoder():
    try:
        from dsd.codec import gdeflate  # type: ignore[attr-defined]

        return gdeflate
    except ImportError:
        return None


def _build_streams(args) -> tuple[list[bytes], list[int], str]:
    target = args.mib << 20
    if args.data:
        blobs = []
        for path in args.data:
            with open(path, "rb") as f:
                blobs.append(f.read())
        from dsd.daemon.gpu.container import plan_stream

        sizes = [plan_stream(memoryview(b), None).out_len for b in blobs]
        streams, out_sizes, total = [], [], 0
        while total < target:
            for b, s in zip(blobs, sizes):
                streams.append(b)
                out_sizes.append(s)
                total += s
        return streams, out_sizes, f"{len(args.data)} .gdef files replicated"
    codec = _encoder()
    if codec is None:
        raise SystemExit("dsd bench gpu: no GDeflate encoder (dsd.codec is not built); pass --data FILE.gdef ...")
    corpus = game_like_corpus(target)
    req = args.request_kib << 10
    streams, out_sizes = [], []
    for off in range(0, len(corpus), req):
        chunk = corpus[off: off + req]
        streams.append(codec.compress(chunk, level=args.level, threads=0))
        out_sizes.append(len(chunk))
    return streams, out_sizes, f"game-like corpus, {args.request_kib} KiB requests, dsd GDeflate level {args.level}"


def _warm_up(run, items, seconds=1.0):
    # GPUs idle at low clocks (an H200 sat at 345 MHz between phases and timed 5x slow):
    # keep it busy for a while before any timed run.
    t = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t < seconds:
        run(items)
        n += 1


def _time_gpu(dec, items, repeat, run):
    _warm_up(run, items)
    gpu_t, wall_t = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        run(items)
        wall_t.append(time.perf_counter() - t)
        st = dec.statistics().last_batch
        if st.dispatch_seconds:
            gpu_t.append(st.dispatch_seconds)
    return _median(gpu_t), _median(wall_t)


def _nvcomp_contender(streams, out_sizes, repeat, expect_sha, chunk_order=None):
    """nvCOMP batched GDeflate over every tile of every stream, as raw chunks (handed to it in
    batch order, or in `chunk_order`, a permutation of the batch's tiles)."""
    try:
        import ctypes

        import cupy as cp  # type: ignore[import-not-found]
        import nvidia.libnvcomp as libnvcomp  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available here"
        return {"available": False, "why": f"nvCOMP/CuPy not importable: {exc}"}
    root = os.path.dirname(libnvcomp.__file__)
    lib = None
    for cand in ("lib64/libnvcomp.so.6", "lib/libnvcomp.so.6", "lib64/libnvcomp.so", "lib/libnvcomp.so"):
        p = os.path.join(root, cand)
        if os.path.exists(p):
            lib = ctypes.CDLL(p)
            break
    if lib is None:
        return {"available": False, "why": f"libnvcomp.so not found under {root}"}

    class Opts(ctypes.Structure):
        _fields_ = [("backend", ctypes.c_int), ("reserved", ctypes.c_char * 60)]

    chunks, sizes = [], []
    for s, total in zip(streams, out_sizes):
        n = s[2] | s[3] << 8
        table = struct.unpack_from(f"<{n}I", s, 8)
        offs = [0] + list(table[1:]) + [(table[-1] if n > 1 else 0) + table[0]]
        data = 8 + 4 * n
        for t in range(n):
            chunks.append(s[data + offs[t]: data + offs[t + 1]])
            sizes.append(65536 if t + 1 < n else total - 65536 * (n - 1))
    if chunk_order is not None:
        chunks = [chunks[k] for k in chunk_order]
        sizes = [sizes[k] for k in chunk_order]
    # Pack chunks 16-byte aligned into one device buffer.
    pos, offsets = 0, []
    for c in chunks:
        offsets.append(pos)
        pos += (len(c) + 15) & ~15
    host = bytearray(pos)
    for o, c in zip(offsets, chunks):
        host[o: o + len(c)] = c
    n = len(chunks)
    d_in = cp.asarray(memoryview(host).cast("B"), dtype=cp.uint8)
    out_offsets = [i * 65536 for i in range(n)]
    d_out = cp.empty(n * 65536, dtype=cp.uint8)
    in_ptrs = cp.asarray([d_in.data.ptr + o for o in offsets], dtype=cp.uint64)
    out_ptrs = cp.asarray([d_out.data.ptr + o for o in out_offsets], dtype=cp.uint64)
    in_bytes = cp.asarray([len(c) for c in chunks], dtype=cp.uint64)
    out_cap = cp.asarray(sizes, dtype=cp.uint64)
    out_act = cp.empty(n, dtype=cp.uint64)
    statuses = cp.empty(n, dtype=cp.int32)
    opts = Opts(0)
    temp = ctypes.c_size_t(0)
    lib.nvcompBatchedGdeflateDecompressGetTempSize.argtypes = [ctypes.c_size_t, ctypes.c_size_t, Opts,
                                                               ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                                                               ctypes.c_void_p]
    rc = lib.nvcompBatchedGdeflateDecompressGetTempSize(n, 65536, opts, ctypes.byref(temp), sum(sizes), None)
    if rc != 0:
        return {"available": False, "why": f"nvcompBatchedGdeflateDecompressGetTempSize -> {rc}"}
    d_temp = cp.empty(max(temp.value, 1), dtype=cp.uint8)
    fn = lib.nvcompBatchedGdeflateDecompressAsync
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, Opts,
                                           ctypes.c_void_p, ctypes.c_void_p]
    stream = cp.cuda.Stream(non_blocking=True)

    def launch():
        return fn(in_ptrs.data.ptr, in_bytes.data.ptr, out_cap.data.ptr, out_act.data.ptr, n, d_temp.data.ptr,
                  temp.value, out_ptrs.data.ptr, opts, statuses.data.ptr, stream.ptr)

    with stream:
        rc = launch()
        stream.synchronize()
    if rc != 0:
        return {"available": False, "why": f"nvcompBatchedGdeflateDecompressAsync -> {rc}"}
    bad = int((statuses != 0).sum())
    # Reassemble per stream to compare with the CPU/GPU output.
    h = hashlib.sha256()
    host_out = cp.asnumpy(d_out)
    at = list(range(n))  # where each batch tile's output landed
    if chunk_order is not None:
        for pos, k in enumerate(chunk_order):
            at[k] = pos
    k = 0
    for total in out_sizes:
        ntiles = -(-total // 65536)
        for t in range(ntiles):
            p = at[k + t]
            h.update(memoryview(host_out[p * 65536: p * 65536 + sizes[p]]))
        k += ntiles
    same = h.hexdigest() == expect_sha
    times = []
    start, end = cp.cuda.Event(), cp.cuda.Event()
    with stream:
        t = time.perf_counter()
        while time.perf_counter() - t < 1.0:  # warm-up, as for our decoder
            launch()
            stream.synchronize()
        for _ in range(repeat):
            start.record(stream)
            launch()
            end.record(stream)
            end.synchronize()
            times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return {"available": True, "chunks": n, "failed_chunks": bad, "output_matches": same,
            "seconds": _median(times), "gbps": _gbps(sum(sizes), _median(times))}


def _default_mib(report: dict) -> int:
    """512 MiB batches on a GPU; a CPU driver (lavapipe, ~2 MB/s) gets a small correctness-sized one."""
    from dsd.daemon.gpu import GpuError, VulkanDevice

    try:
        device = VulkanDevice()
    except GpuError:
        return 512  # the run reports that no GPU opened
    try:
        if device.info.kind == "cpu":
            report["note"] = (f"{device.info.name} is a CPU Vulkan driver: a 4 MiB batch checks the path; "
                              "its GB/s are not GPU figures")
            return 4
        return 512
    finally:
        device.close()


def run(args: argparse.Namespace) -> int:
    from dsd.daemon.gpu import GpuDecoder, GpuError

    report: dict = {"case": "gpu", "contenders": {}}
    if args.mib is None:
        args.mib = _default_mib(report)
    t0 = time.perf_counter()
    streams, out_sizes, source = _build_streams(args)
    total_out = sum(out_sizes)
    total_in = sum(len(s) for s in streams)
    report["data"] = {"source": source, "requests": len(streams), "decoded_bytes": total_out,
                      "compressed_bytes": total_in, "ratio": round(total_out / total_in, 3),
                      "prepare_seconds": round(time.perf_counter() - t0, 2)}
    items = list(zip(streams, out_sizes))
    C = report["contenders"]

    # CPU reference output (also the CPU contender) and its hash.
    codec = _encoder()
    expect = None
    if codec is not None:
        times = []
        for _ in range(max(1, args.repeat // 2)):
            h = hashlib.sha256()
            t = time.perf_counter()
            outs = [codec.decompress(s, threads=0) for s in streams]
            times.append(time.perf_counter() - t)
            for o in outs:
                h.update(o)
            del outs
        expect = h.hexdigest()
        C["cpu-codec"] = {"available": True, "threads": os.cpu_count(), "seconds": _median(times),
                          "gbps": _gbps(total_out, _median(times))}
    else:
        C["cpu-codec"] = {"available": False, "why": "dsd.codec (CPU GDeflate) not built on this branch"}

    # zlib baseline: one core, 64 KiB chunks of up to 64 MiB of the same decoded bytes.
    try:
        dec = GpuDecoder()
    except GpuError as exc:
        report["error"] = f"no Vulkan GPU: {exc}"
        _emit(report, args)
        return 1
    try:
        report["device"] = {"name": dec.device.info.name, "kind": dec.device.info.kind, "shader": dec.shader,
                            "subgroup_size": dec.device.info.subgroup_size, "persistent": dec.persistent, "tile_order": dec.tile_order,
                            "nv_memory_decompression": dec.device.info.nv_memory_decompression}
        res = dec.decode_batch_pool(items)
        errors = [r for r in res if r is not None]
        if errors:
            report["error"] = f"{len(errors)} requests failed on the GPU: {errors[0]}"
            _emit(report, args)
            return 1
        h = hashlib.sha256()
        offs = _pool_offsets(out_sizes)
        step = 64 << 20
        for o, s in zip(offs, out_sizes):
            for a in range(0, s, step):
                h.update(dec.read_pool_output(o + a, min(step, s - a)))
        gpu_sha = h.hexdigest()
        if expect is None:
            expect = gpu_sha
        sample = b"".join(_read_all(dec, offs, out_sizes, 64 << 20))
        C["zlib-64k"] = _zlib_baseline(sample, args.repeat)
        gpu_t, wall_t = _time_gpu(dec, items, args.repeat, dec.decode_batch_resident)
        C["gpu-shader"] = {"output_matches": gpu_sha == expect, "gpu_seconds": gpu_t, "gbps": _gbps(total_out, gpu_t),
                           "wall_seconds": wall_t, "wall_gbps": _gbps(total_out, wall_t)}
        if dec.device.info.nv_memory_decompression:
            try:
                dec.decode_batch_nv(items)
                h = hashlib.sha256()
                for chunk in _read_all(dec, offs, out_sizes, None):
                    h.update(chunk)
                nv_ok = h.hexdigest() == expect
                gpu_t, wall_t = _time_gpu(dec, items, args.repeat, lambda it: dec.decode_batch_nv(it, resident=True))
                C["gpu-nv"] = {"output_matches": nv_ok, "gpu_seconds": gpu_t, "gbps": _gbps(total_out, gpu_t),
                               "wall_seconds": wall_t, "wall_gbps": _gbps(total_out, wall_t)}
            except Exception as exc:  # noqa: BLE001 - report the driver path's failure, keep the rest
                C["gpu-nv"] = {"available": False, "why": f"{type(exc).__name__}: {exc}"}
        else:
            C["gpu-nv"] = {"available": False, "why": "driver lacks VK_NV_memory_decompression"}

        # End to end from a file: each request read (page cache -> staging buffer, the one CPU
        # copy, as the io engine does), uploaded and decoded on the GPU.
        lens = [len(s) for s in streams]
        with tempfile.NamedTemporaryFile(dir=args.dir, prefix="dsd-bench-gpu-", suffix=".gdef") as f:
            for s in streams:
                f.write(s)
            f.flush()

            offsets = [0]
            for n in lens[:-1]:
                offsets.append(offsets[-1] + n)
            fd = os.open(f.name, os.O_RDONLY)
            # Reads run on a few threads (preadv releases the GIL), as the io engine's would.
            pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))

            def file_to_gpu(outputs=None):
                views = dec.reserve_staging(lens)
                list(pool.map(lambda vo: os.preadv(fd, [vo[0]], vo[1]), zip(views, offsets)))
                del views
                return dec.decode_staged(out_sizes, outputs=outputs)

            _warm_up(dec.decode_batch_resident, items)
            walls = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                file_to_gpu()
                walls.append(time.perf_counter() - t)
            C["gpu-file"] = {"wall_seconds": _median(walls), "gbps": _gbps(total_out, _median(walls)),
                             "page_cache": "warm"}
            host = bytearray(total_out)
            hv = memoryview(host)
            outs, pos = [], 0
            for size in out_sizes:
                outs.append(hv[pos: pos + size])
                pos += size
            _warm_up(dec.decode_batch_resident, items)
            walls = []
            for _ in range(max(1, args.repeat // 2)):
                t = time.perf_counter()
                errs = file_to_gpu(outs)
                walls.append(time.perf_counter() - t)
            host_ok = not any(errs) and hashlib.sha256(host).hexdigest() == expect
            C["gpu-file-host"] = {"output_matches": host_ok, "wall_seconds": _median(walls),
                                  "gbps": _gbps(total_out, _median(walls))}
            del outs, hv
            pool.shutdown()
            os.close(fd)
        # Dispatch overhead: the host wall time of one whole decode_batch_pool() call on a batch
        # of one small tile (plan, record or reuse, submit, wait, status read), its command
        # buffer reused as the daemon's would be; median of many. The GPU's own part (timestamps
        # around the dispatch) and the submit-to-complete round trip are reported beside it.
        C["dispatch"] = _dispatch_overhead(dec, items)
    finally:
        dec.close()
    if not args.no_nvcomp:
        C["nvcomp"] = _nvcomp_contender(streams, out_sizes, args.repeat, expect)
    base = C.get("cpu-codec", {}).get("gbps") or C["zlib-64k"]["gbps"]
    report["baseline"] = "cpu-codec" if C.get("cpu-codec", {}).get("gbps") else "zlib-64k"
    for name, c in C.items():
        if isinstance(c, dict) and c.get("gbps") and base:
            c["vs_baseline"] = round(c["gbps"] / base, 2)
    _emit(report, args)
    return 0


def _dispatch_overhead(dec, items, calls: int = 400) -> dict:
    tiny = [(_one_tile_stream(), 1)]
    _warm_up(dec.decode_batch_resident, items, 0.5)  # clocks up, as they are under load
    for _ in range(20):
        dec.decode_batch_pool(tiny)
    host_t, submit_t, gpu_t = [], [], []
    for _ in range(calls):
        t = time.perf_counter()
        res = dec.decode_batch_pool(tiny)
        host_t.append(time.perf_counter() - t)
        if res != [None]:
            raise SystemExit(f"dsd bench gpu: the one-tile batch failed: {res}")
        st = dec.statistics().last_batch
        submit_t.append(st.submit_seconds)
        if st.dispatch_seconds:
            gpu_t.append(st.dispatch_seconds)
    host_t.sort()
    return {"batch_host_us": round(_median(host_t) * 1e6, 1),
            "batch_host_p10_p90_us": [round(host_t[len(host_t) // 10] * 1e6, 1), round(host_t[len(host_t) * 9 // 10] * 1e6, 1)],
            "submit_wait_us": round(_median(submit_t) * 1e6, 1),
            "one_tile_gpu_us": round(_median(gpu_t) * 1e6, 1) if gpu_t else None,
            "completion": dec.completion, "calls": calls, "goal_us": 50}


def _one_tile_stream() -> bytes:
    tile = bytes.fromhex("73040000") + bytes(33 * 4)  # 'A', format doc §2.10
    return bytes([4, 0xFB, 1, 0]) + struct.pack("<II", 1 | (1 << 2), len(tile)) + tile


def _pool_offsets(out_sizes):
    offs, pos = [], 0
    for s in out_sizes:
        offs.append(pos)
        pos = (pos + s + 255) // 256 * 256
    return offs


def _read_all(dec, offs, sizes, limit):
    got = 0
    for o, s in zip(offs, sizes):
        if limit is not None and got >= limit:
            return
        step = 64 << 20
        for a in range(0, s, step):
            yield dec.read_pool_output(o + a, min(step, s - a))
        got += s


def _zlib_baseline(sample: bytes, repeat: int) -> dict:
    chunks = [zlib.compress(sample[i: i + 65536], 6) for i in range(0, len(sample), 65536)]
    times = []
    for _ in range(max(1, repeat // 2)):
        t = time.perf_counter()
        for c in chunks:
            zlib.decompress(c)
        times.append(time.perf_counter() - t)
    return {"threads": 1, "sample_bytes": len(sample), "ratio": round(len(sample) / sum(map(len, chunks)), 3),
            "seconds": _median(times), "gbps": _gbps(len(sample), _median(times))}


def _emit(report: dict, args) -> None:
    if args.json:
        print(json.dumps(report, default=str))
        return
    d = report.get("data", {})
    print(f"dsd bench gpu: {d.get('source')}: {d.get('requests')} requests, "
          f"{(d.get('decoded_bytes') or 0) / 2**20:.0f} MiB decoded, ratio {d.get('ratio')}")
    if "device" in report:
        dv = report["device"]
        print(f"device: {dv['name']} ({dv['kind']}), shader {dv['shader']}, subgroup {dv['subgroup_size']}")
    if "error" in report:
        print("error:", report["error"])
    print(f"{'contender':<15} {'GB/s':>8} {'vs ' + str(report.get('baseline')):>14}  notes")
    for name, c in report.get("contenders", {}).items():
        if name == "dispatch":
            continue
        if c.get("available") is False:
            print(f"{name:<15} {'-':>8} {'-':>14}  unavailable: {c.get('why')}")
            continue
        notes = {k: v for k, v in c.items() if k not in ("gbps", "vs_baseline")}
        g = c.get("gbps")
        print(f"{name:<15} {g if g is None else round(g, 2):>8} {c.get('vs_baseline', '-'):>14}  {notes}")
    if "dispatch" in report.get("contenders", {}):
        print("dispatch:", report["contenders"]["dispatch"])
    sys.stdout.flush()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gpu", help="GDeflate decode on the Vulkan GPU vs the CPU codec (and nvCOMP)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--mib", type=int, default=None,
                   help="decoded MiB per batch (default 512 on a GPU, 4 on a CPU Vulkan driver such as lavapipe)")
    p.add_argument("--request-kib", type=int, default=1024, help="decoded size of each request (default 1024)")
    p.add_argument("--level", type=int, default=9, help="GDeflate level for the built-in corpus (default 9)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions, median reported")
    p.add_argument("--data", nargs="*", help=".gdef streams to replicate instead of the built-in corpus")
    p.add_argument("--dir", default=None, help="folder for the end-to-end file (default: $TMPDIR)")
    p.add_argument("--no-nvcomp", action="store_true", help="skip the nvCOMP anchor")
    p.set_defaults(func=run)
