"""WRITE and FSYNC requests through the io engine, both backends: plain writes (unaligned and
O_DIRECT-aligned) read back byte for byte, compressed writes that dsd.codec / zstandard decode to
the source, and the failures a user must see cleanly (read-only file, full filesystem, limits)."""

from __future__ import annotations

import errno
import os
import random
import subprocess

import pytest
import zstandard

from dsd import _native
from dsd.codec import gdeflate
from dsd.ioengine import (
    COMPRESSION_GDEFLATE, COMPRESSION_ZSTD, STATUS_FAILED, STATUS_OK, pack_fsync, pack_request, pack_write,
)

from io_ops_support import E, check, collect_msgs, open_rw, rig, skip_unless_root
from io_support import backend

pytestmark = pytest.mark.timeout(120)


def test_plain_writes_read_back(backend, tmp_path):
    rng = random.Random(11)
    payload = rng.randbytes(3 << 20)
    path = tmp_path / "out.bin"
    fd = open_rw(path)
    try:
        with rig(backend, len(payload), workers=2) as (eng, reg, shm):
            os.pwrite(shm.fd, payload, 0)
            reg.add_file(5, fd, writable=True)
            plan, recs, pos = {}, [], 0
            for rid in range(300):
                if rid % 3 == 0:  # aligned: O_DIRECT eligible
                    size = rng.randrange(1, 9) * 4096
                    src = rng.randrange(0, (len(payload) - size) // 4096) * 4096
                    pos = (pos + 4095) // 4096 * 4096
                else:
                    size = rng.randrange(0, 20000)
                    src = rng.randrange(0, len(payload) - size)
                plan[rid] = (src, size, pos)
                recs.append(pack_write(rid, 1, src, size, 5, pos))
                pos += size + rng.randrange(0, 3)
            assert eng.submit(reg, 1, b"".join(recs)) == len(recs)
            got = collect_msgs(eng, len(recs))
            st = eng.stats()
        data = path.read_bytes()
        for rid, (src, size, at) in plan.items():
            c = got[rid].completion
            assert (c.status, c.bytes, c.hresult) == (STATUS_OK, size, 0), got[rid]
            assert data[at:at + size] == payload[src:src + size], rid
        assert st["writes"] == len(recs)  # 0-byte writes complete OK at once and count too
        assert st["bytes_written"] == sum(s[1] for s in plan.values())
        ok, _ = _native.odirect_probe(str(tmp_path))
        if ok:
            assert st["direct_reads"] > 0  # the aligned writes went around the page cache
    finally:
        os.close(fd)


@pytest.mark.parametrize("compression, level", [
    (COMPRESSION_GDEFLATE, 1), (COMPRESSION_GDEFLATE, 9), (COMPRESSION_GDEFLATE, 12),
    (COMPRESSION_ZSTD, -5), (COMPRESSION_ZSTD, 3), (COMPRESSION_ZSTD, 19),
])
def test_compressed_writes_decode_to_source(backend, tmp_path, compression, level):
    rng = random.Random(level)
    words = [rng.randbytes(rng.randrange(2, 9)) for _ in range(300)]
    payload = b" ".join(rng.choice(words) for _ in range(60000))[:400_000]
    sizes = [len(payload), 1, 0, 65536, 65537, 123_457]
    fd = open_rw(tmp_path / "packed.bin")
    try:
        with rig(backend, len(payload), workers=2, codec_workers=2) as (eng, reg, shm):
            os.pwrite(shm.fd, payload, 0)
            reg.add_file(9, fd, writable=True)
            slots = [i * (1 << 20) for i in range(len(sizes))]  # each stream at its own file offset
            recs = [pack_write(i, 1, 0, n, 9, slots[i], compression=compression, level=level)
                    for i, n in enumerate(sizes)]
            assert eng.submit(reg, 1, b"".join(recs)) == len(recs)
            got = collect_msgs(eng, len(recs))
            st = eng.stats()
        for i, n in enumerate(sizes):
            c = got[i].completion
            assert c.status == STATUS_OK, got[i]
            stream = os.pread(fd, c.bytes, slots[i])
            if compression == COMPRESSION_GDEFLATE:
                assert gdeflate.decompress(stream) == payload[:n]
            else:
                assert zstandard.ZstdDecompressor().decompress(stream) == payload[:n]
                assert zstandard.get_frame_parameters(stream).content_size == n
        assert st["encoded"] == len(sizes)
        assert st["bytes_written"] == sum(got[i].completion.bytes for i in range(len(sizes)))
        assert st["staging_in_use"] == 0 and 0 < st["staging_peak"] <= st["staging_bytes"]
    finally:
        os.close(fd)


def test_compressed_write_over_dst_limit_fails(backend, tmp_path):
    payload = random.Random(3).randbytes(100_000)  # incompressible
    fd = open_rw(tmp_path / "limit.bin")
    try:
        with rig(backend, len(payload), workers=1) as (eng, reg, shm):
            os.pwrite(shm.fd, payload, 0)
            reg.add_file(1, fd, writable=True)
            recs = [
                pack_write(1, 1, 0, len(payload), 1, 0, compression=COMPRESSION_ZSTD, level=3, max_size=50_000),
                pack_write(2, 1, 0, len(payload), 1, 0, compression=COMPRESSION_GDEFLATE, level=9, max_size=50_000),
                pack_write(3, 1, 0, 1000, 1, 0, compression=COMPRESSION_GDEFLATE, level=13),  # no such level
                pack_write(4, 1, 0, 1000, 1, 0, compression=COMPRESSION_ZSTD, level=3, max_size=2000),
            ]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, 4)
        for rid in (1, 2):
            check(got[rid], STATUS_FAILED, "SIZE_MISMATCH", E["INVALID_DESTINATION_SIZE"], errno.EFBIG)
            assert "more than dst_size 50000" in got[rid].message
        check(got[3], STATUS_FAILED, "UNSUPPORTED", E["NOTIMPL"], errno.EINVAL)
        assert "level 13" in got[3].message
        check(got[4], STATUS_OK, "NONE")
        assert os.fstat(fd).st_size == got[4].completion.bytes  # the failed ones wrote nothing
    finally:
        os.close(fd)


def test_write_to_read_only_file_fails_with_ebadf(backend, tmp_path):
    path = tmp_path / "ro.bin"
    path.write_bytes(b"x" * 100)
    ro = os.open(path, os.O_RDONLY)
    try:
        with rig(backend, 4096, workers=1) as (eng, reg, shm):
            with pytest.raises(OSError) as info:
                reg.add_file(2, ro, writable=True)
            assert info.value.errno == errno.EBADF
            reg.add_file(2, ro)  # readable only
            eng.submit(reg, 1, pack_write(1, 1, 0, 10, 2, 0) + pack_fsync(2, 2))
            got = collect_msgs(eng, 2)
        check(got[1], STATUS_FAILED, "IO", E["INVALID_HANDLE"], errno.EBADF)
        assert "not opened for writing" in got[1].message
        check(got[2], STATUS_OK, "NONE")
        assert path.read_bytes() == b"x" * 100
    finally:
        os.close(ro)


def test_add_file_writable_refuses_append_and_is_keyword_only(tmp_path):
    fd = os.open(tmp_path / "a.bin", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with _native.Registry() as reg:
            with pytest.raises(ValueError, match="O_APPEND"):
                reg.add_file(1, fd, writable=True)
            with pytest.raises(TypeError):
                reg.add_file(1, fd, True)
            reg.add_file(1, fd)  # reading from it is fine
    finally:
        os.close(fd)


@pytest.fixture
def small_tmpfs(tmp_path):
    skip_unless_root()
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_write_to_full_filesystem_fails_with_enospc(backend, small_tmpfs):
    payload = random.Random(5).randbytes(2 << 20)
    fd = open_rw(small_tmpfs / "big.bin")
    try:
        with rig(backend, len(payload), workers=1) as (eng, reg, shm):
            os.pwrite(shm.fd, payload, 0)
            reg.add_file(3, fd, writable=True)
            recs = [pack_write(1, 1, 0, len(payload), 3, 0), pack_write(2, 1, 0, 1000, 3, 0), pack_fsync(3, 3)]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, 3)
        check(got[1], STATUS_FAILED, "IO", E["DISK_FULL"], errno.ENOSPC)
        assert got[1].completion.bytes == 0
        assert got[2].completion.status == STATUS_OK  # the rest of the batch still runs
        check(got[3], STATUS_OK, "NONE")
    finally:
        os.close(fd)


def test_fsync_rules(backend, tmp_path):
    fd = open_rw(tmp_path / "s.bin")
    try:
        with rig(backend, 4096, workers=1) as (eng, reg, shm):
            reg.add_file(4, fd, writable=True)
            recs = [
                pack_write(1, 1, 0, 4096, 4, 0),
                pack_fsync(2, 4),
                pack_fsync(3, 99),
                pack_request(4, op=2, dst_id=4, src_size=1),
                pack_request(5, op=2, dst_id=4, compression=COMPRESSION_ZSTD),
            ]
            assert eng.submit(reg, 1, b"".join(recs)) == 2
            got = collect_msgs(eng, 5)
            st = eng.stats()
        check(got[2], STATUS_OK, "NONE", 0)
        assert got[2].completion.bytes == 0
        check(got[3], STATUS_FAILED, "BAD_FILE", E["FILE_NOT_OPEN"])
        check(got[4], STATUS_FAILED, "SIZE_MISMATCH")
        check(got[5], STATUS_FAILED, "UNSUPPORTED")
        assert st["fsyncs"] == 1
    finally:
        os.close(fd)


def test_write_validation(backend, tmp_path):
    fd = open_rw(tmp_path / "v.bin")
    try:
        with rig(backend, 4096, workers=1) as (eng, reg, shm):
            reg.add_file(4, fd, writable=True)
            recs = [
                pack_write(1, 77, 0, 10, 4, 0),                    # unknown source region
                pack_write(2, 1, 4000, 100, 4, 0),                 # outside the region
                pack_write(3, 1, 0, 10, 77, 0),                    # unknown file
                pack_request(4, op=1, src_id=1, src_size=10, dst_id=4, dst_size=9),
                pack_write(5, 1, 0, 10, 4, 2**63 - 5),             # past the largest file offset
                pack_write(6, 1, 0, 0, 4, 0),                      # nothing to write: OK at once
                pack_request(7, op=1, src_id=1, src_size=10, dst_id=4, compression=COMPRESSION_ZSTD,
                             uncompressed_size=11),
            ]
            eng.submit(reg, 1, b"".join(recs))
            got = collect_msgs(eng, len(recs))
        check(got[1], STATUS_FAILED, "BAD_REGION", E["ACCESS_VIOLATION"])
        check(got[2], STATUS_FAILED, "REGION_BOUNDS", E["ACCESS_VIOLATION"])
        check(got[3], STATUS_FAILED, "BAD_FILE", E["FILE_NOT_OPEN"])
        check(got[4], STATUS_FAILED, "SIZE_MISMATCH", E["INVALID_DESTINATION_SIZE"])
        check(got[5], STATUS_FAILED, "IO", None, errno.EFBIG)
        check(got[6], STATUS_OK, "NONE")
        check(got[7], STATUS_FAILED, "SIZE_MISMATCH")
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
