"""Compressed and MEMORY-source READs through the io engine, both backends: every GDeflate
conformance stream (shared corpus and tests/data) read from its file and decoded on the codec
pool equals the manifest's sha256; zstd frames likewise; corrupt streams fail alone with
DECOMPRESS and the codec's words; size rules; MEMORY copies and decodes with bounds checks."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import random
from pathlib import Path

import pytest
import zstandard

from dsd.codec import gdeflate
from dsd.ioengine import (
    COMPRESSION_GDEFLATE, COMPRESSION_ZSTD, SOURCE_MEMORY, STATUS_FAILED, STATUS_OK, pack_read, pack_request,
)

from io_ops_support import E, ShmRegion, check, collect_msgs, rig
from io_support import backend

pytestmark = pytest.mark.timeout(180)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "conformance" / "gdeflate"
LOCAL = HERE / "data" / "gdeflate"


def manifest(folder: Path) -> list[dict[str, str]]:
    path = folder / "MANIFEST.tsv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def read_compressed(rid, file_id, offset, size, dst_offset, dst_size, compression=COMPRESSION_GDEFLATE, **kw):
    return pack_request(rid, src_id=file_id, src_offset=offset, src_size=size, dst_id=1, dst_offset=dst_offset,
                        dst_size=dst_size, compression=compression, **kw)


@pytest.mark.parametrize("folder", [
    pytest.param(SHARED, id="shared", marks=pytest.mark.skipif(not SHARED.is_dir(), reason=f"no corpus at {SHARED}")),
    pytest.param(LOCAL, id="local"),
])
def test_conformance_streams_decode_from_files(backend, folder):
    rows = manifest(folder)
    assert rows
    fds, recs, places, dst = [], [], {}, 0
    try:
        for rid, row in enumerate(rows):
            fd = os.open(folder / row["file"], os.O_RDONLY)
            fds.append(fd)
            size, out = int(row["compressed_bytes"]), int(row["uncompressed_bytes"])
            places[rid] = (dst, out, row)
            recs.append(read_compressed(rid, rid, 0, size, dst, out))
            dst += out + 3
        with rig(backend, dst + 1, workers=2, codec_workers=2) as (eng, reg, shm):
            for rid, fd in enumerate(fds):
                reg.add_file(rid, fd)
            assert eng.submit(reg, 1, b"".join(recs)) == len(recs)
            got = collect_msgs(eng, len(recs))
            st = eng.stats()
            view = reg.region_view(1)
            for rid, (at, out, row) in places.items():
                c = got[rid].completion
                assert (c.status, c.bytes) == (STATUS_OK, out), (row["file"], got[rid])
                assert hashlib.sha256(view[at:at + out]).hexdigest() == row["sha256_of_uncompressed"], row["file"]
            view.release()
        assert st["decoded"] == len(rows) and st["decode_failures"] == 0
        assert st["staging_in_use"] == 0 and st["staging_peak"] <= st["staging_bytes"]
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize("folder", [
    pytest.param(SHARED, id="shared", marks=pytest.mark.skipif(not SHARED.is_dir(), reason=f"no corpus at {SHARED}")),
    pytest.param(LOCAL, id="local"),
])
def test_corrupt_streams_fail_alone(backend, folder):
    bad = sorted(p for p in folder.glob("bad-*.gdef"))
    good = LOCAL / "mixed-196625.9.gdef"
    assert bad and good.exists()
    files = [good, *bad]
    fds = [os.open(p, os.O_RDONLY) for p in files]
    try:
        with rig(backend, 64 << 20, workers=2) as (eng, reg, shm):
            recs = []
            for i, (p, fd) in enumerate(zip(files, fds)):
                reg.add_file(i, fd)
                size = os.fstat(fd).st_size
                recs.append(read_compressed(i, i, 0, size, i * 300_000, 196625))
            assert eng.submit(reg, 1, b"".join(recs)) == len(recs)
            got = collect_msgs(eng, len(recs))
            st = eng.stats()
            ok = reg.region_view(1)[:196625]
        assert got[0].completion.status == STATUS_OK
        assert hashlib.sha256(ok).hexdigest() == hashlib.sha256(gdeflate.decompress(good.read_bytes())).hexdigest()
        for i in range(1, len(files)):
            check(got[i], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"], errno.EBADMSG)
            assert got[i].message.startswith("GDeflate: "), got[i]
            assert got[i].completion.bytes == 0
        assert st["decode_failures"] == len(bad)
        # a bad tile is named
        assert any("tile" in got[i].message for i in range(1, len(files))), [got[i].message for i in got]
    finally:
        for fd in fds:
            os.close(fd)


def zstd_frame(data: bytes, *, level: int = 3, content_size: bool = True) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(level, write_content_size=content_size)
    cctx = zstandard.ZstdCompressor(compression_params=params)
    if content_size:
        return cctx.compress(data)
    out = cctx.compressobj()  # streaming: no content size in the header
    return out.compress(data) + out.flush()


def test_zstd_frames(backend, tmp_path):
    rng = random.Random(9)
    text = b"".join(rng.choice([b"alpha ", b"beta ", b"gamma ", rng.randbytes(5)]) for _ in range(80000))
    cases = {
        1: (zstd_frame(text[:300_000], level=1), 300_000, "ok"),
        2: (zstd_frame(text[:65536], level=19), 65536, "ok"),
        3: (zstd_frame(text[:100_000], content_size=False), 100_000, "ok"),
        4: (zstd_frame(b""), 0, "ok"),
        5: (zstd_frame(text[:1000]) + zstd_frame(text[:10]), 1000, "after the frame"),  # two frames
        6: (zstd_frame(text[:5000]), 4999, "holds 5000 bytes"),  # frame content size disagrees
        7: (zstd_frame(text[:5000], content_size=False), 4000, "Zstandard"),  # decodes past the destination
        8: (b"\x00" * 64, 64, "bad magic"),
        9: (zstd_frame(text[:5000])[:-7], 5000, "Zstandard"),  # truncated
    }
    blob, offs = b"", {}
    for rid, (frame, _, _) in cases.items():
        offs[rid] = len(blob)
        blob += frame
    path = tmp_path / "frames.zst"
    path.write_bytes(blob)
    fd = os.open(path, os.O_RDONLY)
    try:
        with rig(backend, 1 << 20, workers=2) as (eng, reg, shm):
            reg.add_file(3, fd)
            recs = [read_compressed(rid, 3, offs[rid], len(frame), 0 if rid == 1 else rid * 65536 + 300_000, out,
                                    COMPRESSION_ZSTD) for rid, (frame, out, _) in cases.items()]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, len(cases))
            view = reg.region_view(1)
            for rid, (frame, out, expect) in cases.items():
                if expect == "ok":
                    check(got[rid], STATUS_OK, "NONE")
                    at = 0 if rid == 1 else rid * 65536 + 300_000
                    assert bytes(view[at:at + out]) == zstandard.ZstdDecompressor().decompress(
                        frame, max_output_size=max(out, 1)), rid
                else:
                    check(got[rid], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
                    assert expect in got[rid].message, got[rid]
            view.release()
    finally:
        os.close(fd)


def test_size_rules(backend, tmp_path):
    payload = random.Random(4).randbytes(100_000)
    stream = gdeflate.compress(payload, level=1)
    path = tmp_path / "s.gdef"
    path.write_bytes(stream)
    fd = os.open(path, os.O_RDONLY)
    try:
        with rig(backend, 1 << 20, workers=1, staging_bytes=128 << 10) as (eng, reg, shm):
            reg.add_file(1, fd)
            n = len(stream)
            recs = [
                read_compressed(1, 1, 0, n, 0, 100_000, uncompressed_size=99_999),  # != dst_size
                read_compressed(2, 1, 0, n, 0, 99_999),       # stream decodes to more than the destination
                read_compressed(3, 1, 0, n, 0, 100_001),      # ... to less
                read_compressed(4, 1, 0, n, 0, 200_000),      # uncompressed size over the staging limit
                read_compressed(5, 1, 0, n, 500_000, 100_000),  # fine
                read_compressed(6, 1, 0, 0, 0, 0),            # empty source
                read_compressed(7, 1, 1, n, 0, 100_000),      # runs past the end of the file
            ]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, len(recs))
            assert reg.region_view(1)[500_000:600_000] == payload
        check(got[1], STATUS_FAILED, "SIZE_MISMATCH", E["INVALID_DESTINATION_SIZE"])
        check(got[2], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
        assert "decodes to 100000 bytes, the destination is 99999" in got[2].message
        check(got[3], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
        check(got[4], STATUS_FAILED, "TOO_LARGE", E["REQUEST_TOO_LARGE"])
        assert "staging" in got[4].message
        check(got[5], STATUS_OK, "NONE")
        assert got[5].completion.bytes == 100_000
        check(got[6], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
        check(got[7], STATUS_FAILED, "EOF", E["END_OF_FILE"])
    finally:
        os.close(fd)


def test_memory_sources_copy_and_decode(backend):
    rng = random.Random(8)
    payload = rng.randbytes(50_000) + b"abc" * 40_000
    g = gdeflate.compress(payload, level=9)
    z = zstd_frame(payload)
    with rig(backend, 4 << 20, workers=1, codec_workers=2) as (eng, reg, shm):
        src_at = {"raw": 0, "g": 1 << 20, "z": 2 << 20}
        os.pwrite(shm.fd, payload, src_at["raw"])
        os.pwrite(shm.fd, g, src_at["g"])
        os.pwrite(shm.fd, z, src_at["z"])
        n = len(payload)

        def mem(rid, src, size, dst, dst_size, compression=0, **kw):
            return pack_request(rid, src_id=1, src_offset=src, src_size=size, dst_id=1, dst_offset=dst,
                                dst_size=dst_size, compression=compression, source_type=SOURCE_MEMORY, **kw)

        recs = [
            mem(1, src_at["raw"], n, 3 << 20, n),
            mem(2, src_at["g"], len(g), (3 << 20) + 200_000, n, COMPRESSION_GDEFLATE),
            mem(3, src_at["z"], len(z), (3 << 20) + 400_000, n, COMPRESSION_ZSTD),
            mem(4, (4 << 20) - 10, 11, 0, 11),                   # source past the region's end
            mem(5, 0, 10, (4 << 20) - 5, 10),                     # destination past the end
            pack_request(6, src_id=42, src_size=10, dst_id=1, source_type=SOURCE_MEMORY),  # unknown region
            mem(7, src_at["g"] + 1, len(g) - 1, 3 << 20, n, COMPRESSION_GDEFLATE),  # not a stream
            mem(8, 5, 0, 9, 0),                                   # empty copy: OK at once
            mem(9, 100, 1000, 600, 1000),                         # overlapping copy inside one region
        ]
        before = bytes(reg.region_view(1)[100:1100])
        eng.submit(reg, 1, b"".join(recs))
        got = collect_msgs(eng, len(recs))
        view = reg.region_view(1)
        for rid, at in ((1, 3 << 20), (2, (3 << 20) + 200_000), (3, (3 << 20) + 400_000)):
            check(got[rid], STATUS_OK, "NONE")
            assert got[rid].completion.bytes == n
            assert bytes(view[at:at + n]) == payload, rid
        check(got[4], STATUS_FAILED, "REGION_BOUNDS", E["ACCESS_VIOLATION"])
        check(got[5], STATUS_FAILED, "REGION_BOUNDS", E["ACCESS_VIOLATION"])
        check(got[6], STATUS_FAILED, "BAD_REGION", E["ACCESS_VIOLATION"])
        check(got[7], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
        check(got[8], STATUS_OK, "NONE")
        check(got[9], STATUS_OK, "NONE")
        assert bytes(view[600:1600]) == before  # memmove semantics
        view.release()
        st = eng.stats()
        assert st["copies"] == 2 and st["decoded"] == 2


def test_plain_reads_unchanged_with_pack_read(backend, tmp_path):
    """The old READ/FILE/NONE path keeps working beside the new ones (one batch of each kind)."""
    data = random.Random(1).randbytes(70_000)
    p = tmp_path / "plain.bin"
    p.write_bytes(data + gdeflate.compress(data, level=1))
    fd = os.open(p, os.O_RDONLY)
    try:
        with rig(backend, 1 << 20, workers=2) as (eng, reg, shm):
            reg.add_file(1, fd)
            clen = len(p.read_bytes()) - len(data)
            recs = pack_read(1, 1, 0, len(data), 1, 0) + read_compressed(2, 1, len(data), clen, 100_000, len(data))
            eng.submit(reg, 1, recs)
            got = collect_msgs(eng, 2)
            view = reg.region_view(1)
            assert bytes(view[:70_000]) == data and bytes(view[100_000:170_000]) == data
            view.release()
        assert got[1].completion.status == got[2].completion.status == STATUS_OK
    finally:
        os.close(fd)


def test_region_truncated_under_a_memory_copy_fails_cleanly(backend):
    """A client shrinking its shared memory after registering it must not kill the daemon: the
    codec job touching the lost pages fails with EFAULT (a SIGBUS guard), everything else runs."""
    with rig(backend, 1 << 20, workers=1, codec_workers=1) as (eng, reg, shm):
        with ShmRegion(1 << 20, "shrink") as victim:
            reg.add_region(2, victim.fd, 1 << 20)
            os.ftruncate(victim.fd, 4096)
            recs = [
                pack_request(1, src_id=2, src_offset=8192, src_size=65536, dst_id=1, source_type=SOURCE_MEMORY),
                pack_request(2, src_id=1, src_offset=0, src_size=100, dst_id=2, dst_offset=200_000,
                             source_type=SOURCE_MEMORY),  # the destination is the lost part
                pack_request(3, src_id=2, src_offset=0, src_size=100, dst_id=1, dst_offset=500,
                             source_type=SOURCE_MEMORY),  # still there
            ]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, 3)
        check(got[1], STATUS_FAILED, "IO", None, errno.EFAULT)
        check(got[2], STATUS_FAILED, "IO", None, errno.EFAULT)
        assert "went away" in got[1].message
        check(got[3], STATUS_OK, "NONE")
