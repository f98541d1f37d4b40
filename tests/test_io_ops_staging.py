"""The staging limit of the io engine, both backends: compressed requests that fit wait for
staging space (bounded memory) instead of failing, one that never fits fails TOO_LARGE at
submit, and requests waiting for staging can be cancelled, dropped with their client, or shut
down by close() -- with the staging arena back to empty afterwards."""

from __future__ import annotations

import os
import random
import time

import pytest

from dsd import _native
from dsd.codec import gdeflate
from dsd.ioengine import (
    COMPRESSION_GDEFLATE, COMPRESSION_ZSTD, STATUS_CANCELLED, STATUS_FAILED, STATUS_OK, io_settings, open_engine,
    pack_request, pack_write, settings,
)

from io_ops_support import E, check, collect_msgs, make_engine, rig
from io_support import ShmRegion, backend, wait_idle

pytestmark = pytest.mark.timeout(120)
KIB = 1024


@pytest.fixture
def streams(tmp_path):
    """A file of 40 GDeflate streams of 40 KiB incompressible data each (about 40 KiB compressed)."""
    rng = random.Random(2)
    payloads = [rng.randbytes(40 * KIB) for _ in range(40)]
    packed = [gdeflate.compress(p, level=1) for p in payloads]
    offs, blob = [], b""
    for s in packed:
        offs.append(len(blob))
        blob += s
    path = tmp_path / "streams.gdef"
    path.write_bytes(blob)
    fd = os.open(path, os.O_RDONLY)
    yield fd, payloads, packed, offs
    os.close(fd)


def read_rec(rid, offs, packed, i, tag=0):
    return pack_request(rid, src_id=1, src_offset=offs[i], src_size=len(packed[i]), dst_id=1,
                        dst_offset=i * 64 * KIB, dst_size=40 * KIB, compression=COMPRESSION_GDEFLATE, tag=tag)


def test_requests_wait_for_staging_instead_of_failing(backend, streams):
    fd, payloads, packed, offs = streams
    with rig(backend, 40 * 64 * KIB, workers=2, codec_workers=2, staging_bytes=100 * KIB) as (eng, reg, shm):
        reg.add_file(1, fd)
        recs = b"".join(read_rec(i, offs, packed, i) for i in range(40))
        assert eng.submit(reg, 1, recs) == 40
        got = collect_msgs(eng, 40)
        st = wait_idle(eng)
        view = reg.region_view(1)
        for i in range(40):
            assert got[i].completion.status == STATUS_OK, got[i]
            assert bytes(view[i * 64 * KIB:i * 64 * KIB + 40 * KIB]) == payloads[i]
        view.release()
    assert st["staging_waits"] > 0  # at most two 40 KiB streams fit at once
    assert st["staging_peak"] <= 100 * KIB and st["staging_in_use"] == 0 and st["staging_waiting"] == 0


def test_too_large_at_the_limit(backend, streams):
    fd, payloads, packed, offs = streams
    limit = 40 * KIB  # the uncompressed size fits exactly; the compressed one (40 KiB + headers) does not
    with rig(backend, 1 << 20, workers=1, staging_bytes=limit) as (eng, reg, shm):
        reg.add_file(1, fd)
        os.pwrite(shm.fd, payloads[0], 0)
        reg_file = os.open("/dev/null", os.O_WRONLY)
        try:
            reg.add_file(2, reg_file, writable=True)
            recs = [
                read_rec(1, offs, packed, 0),
                pack_request(2, src_id=1, src_offset=offs[1], src_size=len(packed[1]), dst_id=1, dst_size=limit + 1,
                             compression=COMPRESSION_GDEFLATE),
                pack_write(3, 1, 0, limit, 2, 0, compression=COMPRESSION_ZSTD, level=1),  # bound > limit
                pack_write(4, 1, 0, 1000, 2, 0, compression=COMPRESSION_ZSTD, level=1),   # fits
            ]
            assert eng.submit(reg, 1, b"".join(recs)) == 1
            got = collect_msgs(eng, 4)
        finally:
            os.close(reg_file)
    for rid in (1, 2, 3):
        check(got[rid], STATUS_FAILED, "TOO_LARGE", E["REQUEST_TOO_LARGE"])
        assert f"{limit}-byte staging buffer" in got[rid].message
    check(got[4], STATUS_OK, "NONE")
    with rig(backend, 4096, workers=1, staging_bytes=0) as (eng, reg, shm):
        reg.add_file(1, fd)
        eng.submit(reg, 1, read_rec(1, offs, packed, 0))
        check(collect_msgs(eng, 1)[1], STATUS_FAILED, "TOO_LARGE", E["REQUEST_TOO_LARGE"])



def test_cancel_waiting_requests(streams):
    """io_uring only (the pread pool gets ESPIPE from a pipe at once, so nothing can hold staging
    there on purpose): a read from an empty pipe holds staging; requests behind it wait and are
    cancelled by tag at once, the untagged one runs once the pipe delivers."""
    fd, payloads, packed, offs = streams
    r, w = os.pipe()
    try:
        with rig("uring", 40 * 64 * KIB, workers=1, codec_workers=1, staging_bytes=64 * KIB) as (eng, reg, shm):
            reg.add_file(1, fd)
            reg.add_file(2, r)
            hold = pack_request(100, src_id=2, src_size=32 * KIB, dst_id=1, dst_offset=39 * 64 * KIB,
                                dst_size=32 * KIB, compression=COMPRESSION_GDEFLATE)
            waiting = b"".join(read_rec(i, offs, packed, i, tag=7) for i in range(3))
            eng.submit(reg, 1, hold + waiting + read_rec(3, offs, packed, 3))
            deadline = time.monotonic() + 10
            while eng.stats()["staging_waiting"] < 4:
                assert time.monotonic() < deadline, eng.stats()
                time.sleep(0.01)
            assert eng.cancel(1, mask=0xFF, value=7) == 3
            got = collect_msgs(eng, 3)
            for i in range(3):
                check(got[i], STATUS_CANCELLED, "CANCELLED", E["ABORT"])
            assert eng.stats()["staging_waiting"] == 1
            os.write(w, b"\x00" * (32 * KIB))  # not a stream: the holder fails, the waiter then runs
            got = collect_msgs(eng, 2)
            check(got[100], STATUS_FAILED, "DECOMPRESS", E["DECOMPRESSION_ERROR"])
            check(got[3], STATUS_OK, "NONE")
            assert bytes(reg.region_view(1)[3 * 64 * KIB:3 * 64 * KIB + 40 * KIB]) == payloads[3]
            st = wait_idle(eng)
            assert st["staging_in_use"] == 0 and st["cancelled"] == 3
    finally:
        os.close(r)
        os.close(w)


def test_drop_and_close_with_waiting_requests(streams):
    fd, payloads, packed, offs = streams
    r, w = os.pipe()
    try:
        with ShmRegion(40 * 64 * KIB) as shm, _native.Registry() as reg:
            reg.add_region(1, shm.fd, 40 * 64 * KIB)
            reg.add_file(1, fd)
            reg.add_file(2, r)
            eng = make_engine("uring", workers=1, codec_workers=1, staging_bytes=64 * KIB)
            hold = pack_request(100, src_id=2, src_size=32 * KIB, dst_id=1, dst_size=32 * KIB,
                                compression=COMPRESSION_GDEFLATE)
            eng.submit(reg, 1, hold + b"".join(read_rec(i, offs, packed, i) for i in range(5)))
            eng.submit(reg, 2, b"".join(read_rec(10 + i, offs, packed, i) for i in range(5)))
            deadline = time.monotonic() + 10
            while eng.stats()["staging_waiting"] < 10:
                assert time.monotonic() < deadline, eng.stats()
                time.sleep(0.01)
            eng.drop_client(2)  # its five waiters go without a word
            assert eng.stats()["staging_waiting"] == 5 and eng.stats()["dropped"] == 5
            eng.close()  # the holder is cancelled in the kernel; the waiters complete SHUTDOWN
            got = collect_msgs(eng, 6)
            for i in range(5):
                check(got[i], STATUS_CANCELLED, "SHUTDOWN", E["ABORT"])
            assert got[100].completion.status == STATUS_CANCELLED
            st = eng.stats()
            assert st["in_flight"] == 0 and st["staging_in_use"] == 0 and st["pending"] == 0
    finally:
        os.close(r)
        os.close(w)


def test_cancel_races_with_staging_and_codec(backend, streams):
    """Many compressed requests through a tiny staging buffer with cancels and a client drop in
    the middle: every request of the kept client completes exactly once, OK or CANCELLED, and
    the arena ends empty."""
    fd, payloads, packed, offs = streams
    with rig(backend, 40 * 64 * KIB, workers=2, codec_workers=2, staging_bytes=96 * KIB) as (eng, reg, shm):
        reg.add_file(1, fd)
        for round_ in range(3):
            recs = b"".join(read_rec(i, offs, packed, i, tag=i % 2) for i in range(40))
            eng.submit(reg, 1, recs)
            eng.submit(reg, 9, recs)
            eng.cancel(1, mask=1, value=1)
            eng.drop_client(9)
            got = collect_msgs(eng, 40)
            for i in range(40):
                c = got[i].completion
                if i % 2 == 0:
                    assert c.status == STATUS_OK, got[i]
                else:
                    assert c.status in (STATUS_OK, STATUS_CANCELLED), got[i]
        st = wait_idle(eng)
        assert st["staging_in_use"] == 0 and st["staging_waiting"] == 0 and st["pending"] == 0


def test_settings_carry_staging_and_codec_workers(monkeypatch):
    assert settings({}).staging_bytes == 32 << 20 and settings({}).codec_workers == 0
    env = {"DSD_STAGING_BYTES": "1048576", "DSD_IO_CODEC_WORKERS": "3"}
    assert settings(env).staging_bytes == 1 << 20 and settings(env).codec_workers == 3
    for var, value in (("DSD_STAGING_BYTES", "-1"), ("DSD_STAGING_BYTES", "lots"), ("DSD_IO_CODEC_WORKERS", "999")):
        with pytest.raises(ValueError, match=var):
            settings({var: value})
    monkeypatch.setenv("DSD_STAGING_BYTES", "65536")
    with io_settings(backend="posix", codec_workers=1) as s, open_engine() as eng:
        assert s.staging_bytes == 65536
        st = eng.stats()
        assert st["staging_bytes"] == 65536 and st["codec_workers"] == 1
    with pytest.raises(ValueError, match="staging_bytes"):
        _native.IoEngine(backend="posix", staging_bytes=-1)
    with pytest.raises(ValueError, match="codec_workers"):
        _native.IoEngine(backend="posix", codec_workers=300)
