"""The io engine against plain os.pread, on both backends (io_uring SKIPs with the probe's reason
where unavailable). Every read lands in a /dev/shm region, as the daemon's clients' reads do."""

from __future__ import annotations

import errno
import os
import random
import select

import pytest

from dsd import _native
from dsd.ioengine import REQUEST, STATUS_CANCELLED, STATUS_FAILED, STATUS_OK

from io_support import (
    BACKENDS, ShmRegion, assert_no_eventfd_signal, backend, collect, fd_count, make_engine, maps_count, one,
    pack_read, unpack_completions, wait_idle,
)

pytestmark = pytest.mark.timeout(120)

E_EOF = 0x89240007
E_ACCESS_VIOLATION = 0x89240009
E_FILE_NOT_OPEN = 0x8924000B
E_RESERVED = 0x8924000C
E_DEST_SIZE = 0x8924000F
E_NOTIMPL = 0x80004001
E_ABORT = 0x80004004
REASON = {"NONE": 0, "IO": 1, "EOF": 2, "BAD_FILE": 3, "BAD_REGION": 4, "REGION_BOUNDS": 5,
          "SIZE_MISMATCH": 6, "UNSUPPORTED": 7, "RESERVED": 8, "CANCELLED": 11, "SHUTDOWN": 12}


@pytest.fixture
def files(tmp_path):
    """Files of awkward sizes with random content: (fd, bytes) by file id."""
    rng = random.Random(1)
    sizes = [1 << 20 | 123, 300 * 1024, 7, 2 << 20, 4096, 0]
    out = {}
    for i, size in enumerate(sizes):
        path = tmp_path / f"file{i}.bin"
        data = rng.randbytes(size)
        path.write_bytes(data)
        out[i + 10] = (os.open(path, os.O_RDONLY), data)
    yield out
    for fd, _ in out.values():
        os.close(fd)


def test_random_reads_match_pread(backend, files):
    rng = random.Random(2)
    plan, dst = [], 0
    for rid in range(2000):
        fid = rng.choice(list(files))
        fsize = len(files[fid][1])
        if rng.random() < 0.4 and fsize >= 4096:  # aligned: eligible for O_DIRECT
            off = rng.randrange(0, fsize // 4096) * 4096
            size = min(rng.randrange(1, 17) * 4096, (fsize - off) // 4096 * 4096)
            dst = (dst + 4095) // 4096 * 4096
        else:
            off = rng.randrange(0, fsize + 1)
            size = rng.randrange(0, min(fsize - off, 70000) + 1)
        plan.append((rid, fid, off, size, dst))
        dst += size + rng.randrange(0, 3)
    region_size = dst + 1
    with ShmRegion(region_size) as shm, _native.Registry() as reg, make_engine(backend, workers=3, queue_depth=16) as eng:
        for fid, (fd, _) in files.items():
            reg.add_file(fid, fd)
        reg.add_region(1, shm.fd, region_size)
        # the daemon hands over whole batches; also exercise an unaligned records buffer
        blob = b"\0" + b"".join(pack_read(rid, fid, off, size, 1, dst) for rid, fid, off, size, dst in plan)
        assert eng.submit(reg, 42, memoryview(blob)[1:]) == len(plan)
        comps = {c.request_id: c for c in one(collect(eng, len(plan)), 42)}
        view = reg.region_view(1)
        for rid, fid, off, size, dst in plan:
            c = comps[rid]
            assert (c.status, c.reason, c.hresult, c.error, c.bytes) == (STATUS_OK, 0, 0, 0, size), c
            assert bytes(view[dst:dst + size]) == os.pread(files[fid][0], size, off), rid
        view.release()
        st = wait_idle(eng)
        assert st["completed"] == len(plan) and st["failed"] == 0 and st["pending"] == 0
        assert st["bytes"] == sum(p[3] for p in plan)


def test_direct_and_buffered_paths(backend, tmp_path):
    data = random.Random(3).randbytes(1 << 20)
    path = tmp_path / "d.bin"
    path.write_bytes(data)
    direct_ok, why = _native.odirect_probe(str(tmp_path))
    fd = os.open(path, os.O_RDONLY)
    try:
        for mode in ("auto", "off"):
            with ShmRegion(1 << 20) as shm, _native.Registry() as reg, \
                    make_engine(backend, workers=2, direct=mode, mapped="off") as eng:  # the backend's own paths
                reg.add_file(1, fd)
                reg.add_region(2, shm.fd, 1 << 20)
                recs = [pack_read(0, 1, 0, 65536, 2, 0),             # aligned everything
                        pack_read(1, 1, 65536 + 1, 1000, 2, 65536),  # unaligned offset and size
                        pack_read(2, 1, 131072, 4096, 2, 131072 + 8),  # unaligned buffer
                        pack_read(3, 1, 262144, 262144, 2, 262144)]
                eng.submit(reg, 1, b"".join(recs))
                comps = one(collect(eng, 4), 1)
                assert all(c.status == STATUS_OK for c in comps), comps
                view = reg.region_view(2)
                assert bytes(view[0:65536]) == data[0:65536]
                assert bytes(view[65536:66536]) == data[65537:66537]
                assert bytes(view[131080:131080 + 4096]) == data[131072:135168]
                assert bytes(view[262144:524288]) == data[262144:524288]
                view.release()
                st = wait_idle(eng)
                assert st["buffered_reads"] >= 2
                if mode == "off":
                    assert st["direct_reads"] == 0
                elif direct_ok:
                    assert st["direct_reads"] >= 2, st
                else:
                    assert st["direct_reads"] == 0, why
    finally:
        os.close(fd)


def test_eof_and_zero_byte_reads(backend, files):
    fd, data = files[12]  # 7 bytes
    with ShmRegion(4096) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_file(1, fd)
        reg.add_file(2, files[15][0])  # empty file
        reg.add_region(1, shm.fd, 4096)
        recs = [
            pack_read(1, 1, 0, 7, 1, 0),        # exactly the file
            pack_read(2, 1, 3, 5, 1, 100),      # crosses EOF by one byte
            pack_read(3, 1, 7, 0, 1, 200),      # 0 bytes at EOF
            pack_read(4, 1, 8, 0, 1, 200),      # 0 bytes past EOF
            pack_read(5, 1, 2**63, 1, 1, 200),  # absurd offset
            pack_read(6, 1, 2**64 - 1, 2, 1, 0),  # offset + size overflows u64
            pack_read(7, 2, 0, 1, 1, 0),        # empty file
            pack_read(8, 2, 0, 0, 1, 4096),     # 0 bytes at the very end of the region
        ]
        assert eng.submit(reg, 9, b"".join(recs)) == 3  # 1, 3, 8
        comps = {c.request_id: c for c in one(collect(eng, len(recs)), 9)}
        assert comps[1].status == STATUS_OK and comps[1].bytes == 7
        assert shm.read(0, 7) == data
        for rid in (2, 4, 5, 6, 7):
            c = comps[rid]
            assert (c.status, c.reason, c.hresult, c.bytes) == (STATUS_FAILED, REASON["EOF"], E_EOF, 0), c
        for rid in (3, 8):
            assert (comps[rid].status, comps[rid].bytes, comps[rid].hresult) == (STATUS_OK, 0, 0)
        assert shm.read(100, 5) == bytes(5)  # a failed read writes nothing reachable


def _rec(**over):
    fields = dict(request_id=1, cancel_tag=0, src_offset=0, src_size=16, src_id=1, dst_offset=0, dst_size=16,
                  dst_id=1, uncompressed_size=0, op=0, compression=0, source_type=0, flags=0, name_offset=0,
                  name_length=0, level=0, reserved=0)
    fields.update(over)
    return REQUEST.pack(*fields.values())


@pytest.mark.parametrize("over, reason, hresult", [
    (dict(src_id=99), "BAD_FILE", E_FILE_NOT_OPEN),
    (dict(dst_id=99), "BAD_REGION", E_ACCESS_VIOLATION),
    (dict(dst_offset=4090), "REGION_BOUNDS", E_ACCESS_VIOLATION),
    (dict(dst_offset=2**64 - 8), "REGION_BOUNDS", E_ACCESS_VIOLATION),
    (dict(dst_size=15), "SIZE_MISMATCH", E_DEST_SIZE),
    (dict(uncompressed_size=17), "SIZE_MISMATCH", E_DEST_SIZE),
    (dict(flags=1), "RESERVED", E_RESERVED),
    (dict(reserved=0x80), "RESERVED", E_RESERVED),
    (dict(compression=1, uncompressed_size=15), "SIZE_MISMATCH", E_DEST_SIZE),
    (dict(compression=9), "UNSUPPORTED", E_NOTIMPL),
    (dict(op=1), "IO", 0x80070006),  # WRITE to a file not added writable: EBADF (tests/test_io_ops_*.py)
    (dict(op=3), "UNSUPPORTED", E_NOTIMPL),  # STATUS/SIGNAL/EVENT are the daemon's
    (dict(op=200), "UNSUPPORTED", E_NOTIMPL),
    (dict(source_type=2), "UNSUPPORTED", E_NOTIMPL),
])
def test_invalid_records_fail_alone(backend, files, over, reason, hresult):
    with ShmRegion(4096) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_file(1, files[10][0])
        reg.add_region(1, shm.fd, 4096)
        good = _rec(request_id=2, uncompressed_size=16)
        assert eng.submit(reg, 3, _rec(**over) + good) == 1
        comps = {c.request_id: c for c in one(collect(eng, 2), 3)}
        bad = comps[1]
        assert (bad.status, bad.reason, bad.hresult, bad.bytes) == (STATUS_FAILED, REASON[reason], hresult, 0)
        assert comps[2].status == STATUS_OK and shm.read(0, 16) == files[10][1][:16]
        assert eng.stats()["rejected"] == 1


def test_submit_argument_errors(backend, files):
    with ShmRegion(4096) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_region(1, shm.fd, 4096)
        with pytest.raises(ValueError, match="multiple of 64"):
            eng.submit(reg, 1, b"\0" * 65)
        with pytest.raises(TypeError):
            eng.submit(object(), 1, b"")
        with pytest.raises(ValueError):
            eng.submit(reg, -1, b"")
        assert eng.submit(reg, 1, b"") == 0
        with pytest.raises(TypeError):
            eng.cancel(1, 0, 0)  # options are keyword-only
        reg2 = _native.Registry()
        reg2.close()
        with pytest.raises(ValueError, match="registry is closed"):
            eng.submit(reg2, 1, b"")
    with pytest.raises(ValueError, match="closed"):
        eng.submit(reg, 1, b"")


def test_engine_options_are_checked():
    with pytest.raises(ValueError, match="backend"):
        _native.IoEngine(backend="spdk")
    with pytest.raises(ValueError, match="direct"):
        _native.IoEngine(direct="sometimes")
    with pytest.raises(ValueError, match="queue_depth"):
        _native.IoEngine(queue_depth=0)
    with pytest.raises(ValueError, match="workers"):
        _native.IoEngine(workers=-1)
    with pytest.raises(ValueError, match="register"):
        _native.IoEngine(register="maybe")
    with pytest.raises(TypeError):
        _native.IoEngine("posix")


def test_auto_backend_records_its_reason():
    ok, why = _native.io_uring_probe()
    with _native.IoEngine(workers=1) as eng:
        assert eng.backend in ("uring", "posix")
        assert eng.backend_reason.startswith("auto")
        if not ok:
            assert eng.backend == "posix" and "io_uring" in eng.backend_reason
        st = eng.stats()
        assert st["backend"] == eng.backend and st["backend_reason"] == eng.backend_reason


def test_completions_grouped_per_client_and_eventfd(backend, files):
    fd, data = files[10]
    with ShmRegion(1 << 16) as shm, _native.Registry() as reg, make_engine(backend, workers=2) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        assert_no_eventfd_signal(eng)
        assert eng.reap() == []
        for key in (7, 8, 2**64 - 1):
            eng.submit(reg, key, b"".join(pack_read(i, 1, i * 100, 100, 1, i * 100) for i in range(50)))
        got = collect(eng, 150)
        assert sorted(got) == [7, 8, 2**64 - 1]
        assert all(sorted(c.request_id for c in v) == list(range(50)) for v in got.values())
        assert_no_eventfd_signal(eng)
        assert eng.reap() == []
        assert shm.read(0, 5000) == data[:5000]


def test_thousands_of_requests_over_many_files(backend, tmp_path):
    rng = random.Random(4)
    nfiles, fsize = 64, 32 * 1024
    datas, fds = [], []
    for i in range(nfiles):
        d = rng.randbytes(fsize)
        (tmp_path / f"m{i}").write_bytes(d)
        datas.append(d)
        fds.append(os.open(tmp_path / f"m{i}", os.O_RDONLY))
    try:
        n = 6000
        with ShmRegion(n * 512) as shm, _native.Registry() as reg, make_engine(backend, workers=4, queue_depth=32) as eng:
            for i, fd in enumerate(fds):
                reg.add_file(i, fd)
            reg.add_region(1, shm.fd, n * 512)
            plan = [(i, rng.randrange(nfiles), rng.randrange(0, fsize - 512), rng.randrange(1, 513)) for i in range(n)]
            for start in range(0, n, 1000):  # several batches, as a busy client sends them
                eng.submit(reg, 5, b"".join(pack_read(i, f, off, size, 1, i * 512) for i, f, off, size in plan[start:start + 1000]))
            comps = one(collect(eng, n), 5)
            assert all(c.status == STATUS_OK for c in comps)
            view = reg.region_view(1)
            for i, f, off, size in plan:
                assert bytes(view[i * 512:i * 512 + size]) == datas[f][off:off + size], i
            view.release()
    finally:
        for fd in fds:
            os.close(fd)


def test_truncated_while_in_flight(backend, tmp_path):
    """Reads validated against the old size that run after a truncate fail EOF, never short OK."""
    data = random.Random(5).randbytes(16 << 20)
    path = tmp_path / "t.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        with ShmRegion(2 << 20) as shm, _native.Registry() as reg, \
                make_engine(backend, workers=1, queue_depth=1) as eng:
            reg.add_file(1, fd)
            reg.add_region(1, shm.fd, 2 << 20)
            fillers = [pack_read(i, 1, 0, 1 << 20, 1, 0) for i in range(300)]  # keep the worker busy
            tail = [pack_read(1000 + i, 1, (8 << 20) + i * 65536 + 17, 4096, 1, (1 << 20) + i * 4096) for i in range(60)]
            eng.submit(reg, 1, b"".join(fillers + tail))
            os.truncate(path, 4 << 20)
            comps = one(collect(eng, 360), 1)
            by_id = {c.request_id: c for c in comps}
            assert all(by_id[i].status == STATUS_OK for i in range(300))
            eofs = 0
            for i in range(60):
                c = by_id[1000 + i]
                if c.status == STATUS_OK:  # ran before the truncate
                    off = (8 << 20) + i * 65536 + 17
                    assert shm.read((1 << 20) + i * 4096, 4096) == data[off:off + 4096]
                else:
                    assert (c.status, c.reason, c.hresult, c.bytes) == (STATUS_FAILED, REASON["EOF"], E_EOF, 0), c
                    eofs += 1
            assert eofs > 0, "no read ran after the truncate"
            # and new requests past the new end fail at submit
            assert eng.submit(reg, 1, pack_read(5, 1, 4 << 20, 1, 1, 0)) == 0
            assert one(collect(eng, 1), 1)[0].reason == REASON["EOF"]
    finally:
        os.close(fd)


def test_unreadable_fd_gives_io_error(backend, tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 8192)
    wfd = os.open(path, os.O_WRONLY)
    try:
        with ShmRegion(8192) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
            reg.add_file(1, wfd)
            reg.add_region(1, shm.fd, 8192)
            eng.submit(reg, 1, pack_read(1, 1, 0, 4096, 1, 0) + pack_read(2, 1, 1, 10, 1, 0))
            for c in one(collect(eng, 2), 1):
                assert (c.status, c.reason, c.error, c.hresult) == (STATUS_FAILED, REASON["IO"], errno.EBADF, 0x80070006)
    finally:
        os.close(wfd)


def test_daemon_fd_closed_after_add_file(backend, files, tmp_path):
    data = files[13][1]
    fd = os.open(tmp_path / "file3.bin", os.O_RDONLY)
    with ShmRegion(8192) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_file(1, fd)
        os.close(fd)  # the engine reads through its own dup
        reg.add_region(1, shm.fd, 8192)
        eng.submit(reg, 1, pack_read(1, 1, 4096, 8192, 1, 0))
        assert one(collect(eng, 1), 1)[0].status == STATUS_OK
        assert shm.read(0, 8192) == data[4096:12288]


def test_remove_while_in_flight(backend, files):
    fd, data = files[13]
    with ShmRegion(2 << 20) as shm, _native.Registry() as reg, make_engine(backend, workers=2) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 2 << 20)
        eng.submit(reg, 1, b"".join(pack_read(i, 1, i * 8192, 8192, 1, i * 8192) for i in range(256)))
        reg.remove_file(1)
        reg.remove_region(1)  # munmap waits for the reads that use it
        comps = one(collect(eng, 256), 1)
        assert all(c.status == STATUS_OK for c in comps)
        assert shm.read(0, 2 << 20) == data[: 2 << 20]


def _count(comps, status):
    return sum(c.status == status for c in comps)


def test_cancel_queued(backend, files):
    fd, data = files[13]
    n = 3000
    with ShmRegion(1 << 16) as shm, _native.Registry() as reg, \
            make_engine(backend, workers=1, queue_depth=1) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        # even requests tag 0b01, odd 0b10: only tag 1 is cancelled
        eng.submit(reg, 4, b"".join(pack_read(i, 1, 0, 1 << 16, 1, 0, tag=1 if i % 2 == 0 else 2) for i in range(n)))
        reached = eng.cancel(4, mask=3, value=1)
        assert 0 < reached <= n // 2
        assert eng.cancel(999, mask=0, value=0) == 0  # unknown client: nothing
        comps = one(collect(eng, n), 4)
        cancelled = [c for c in comps if c.status == STATUS_CANCELLED]
        assert 0 < len(cancelled) <= reached
        for c in cancelled:
            assert c.request_id % 2 == 0
            assert (c.reason, c.hresult, c.error, c.bytes) == (REASON["CANCELLED"], E_ABORT, errno.ECANCELED, 0)
        assert _count(comps, STATUS_OK) == n - len(cancelled)
        assert shm.read(0, 1 << 16) == data[: 1 << 16]
        st = wait_idle(eng)
        assert st["cancelled"] == len(cancelled) and st["completed"] == n - len(cancelled)


def test_cancel_by_request_id(backend, files):
    fd, _ = files[13]
    with ShmRegion(1 << 16) as shm, _native.Registry() as reg, \
            make_engine(backend, workers=1, queue_depth=1) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        eng.submit(reg, 4, b"".join(pack_read(i, 1, 0, 1 << 16, 1, 0) for i in range(2000)))
        assert eng.cancel(4, request_id=1999) == 1
        comps = {c.request_id: c for c in one(collect(eng, 2000), 4)}
        assert comps[1999].status == STATUS_CANCELLED
        assert _count(comps.values(), STATUS_CANCELLED) == 1


def test_drop_client_while_in_flight(backend, files):
    fd, _ = files[13]
    with make_engine(backend, workers=1, queue_depth=2) as eng:
        base_fds, base_maps = fd_count(), maps_count("dsd-test-drop")
        shm = ShmRegion(1 << 16, tag="drop")
        reg = _native.Registry()
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        shm.close()
        eng.submit(reg, 6, b"".join(pack_read(i, 1, 0, 1 << 16, 1, 0) for i in range(3000)))
        eng.submit(reg, 6, _rec(request_id=5000, src_id=77))  # a completion already waiting
        eng.drop_client(6)
        reg.close()
        st = wait_idle(eng)
        assert eng.reap() == [] and st["pending"] == 0
        assert st["dropped"] > 0
        assert st["completed"] + st["failed"] + st["cancelled"] + st["dropped"] == 3001
        assert fd_count() == base_fds
        assert maps_count("dsd-test-drop") == base_maps
        # the key can be used again by a new client
        with ShmRegion(4096) as shm2, _native.Registry() as reg2:
            reg2.add_file(1, fd)
            reg2.add_region(1, shm2.fd, 4096)
            eng.submit(reg2, 6, pack_read(1, 1, 0, 10, 1, 0))
            assert one(collect(eng, 1), 6)[0].status == STATUS_OK


def test_close_with_work_queued(backend, files):
    fd, _ = files[13]
    with ShmRegion(1 << 16) as shm, _native.Registry() as reg:
        eng = make_engine(backend, workers=1, queue_depth=1)
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        eng.submit(reg, 2, b"".join(pack_read(i, 1, 0, 1 << 16, 1, 0) for i in range(3000)))
        eng.close()
        assert eng.closed
        comps = one(collect(eng, 3000), 2)  # every request completes exactly once
        assert len({c.request_id for c in comps}) == 3000
        shutdown = [c for c in comps if c.status != STATUS_OK]
        assert shutdown, "close() ran every queued read"
        for c in shutdown:
            assert (c.status, c.reason, c.hresult) == (STATUS_CANCELLED, REASON["SHUTDOWN"], E_ABORT)
        with pytest.raises(ValueError, match="closed"):
            eng.submit(reg, 2, pack_read(1, 1, 0, 1, 1, 0))
        with pytest.raises(ValueError, match="closed"):
            eng.cancel(2)
        assert eng.stats()["closed"] and eng.stats()["in_flight"] == 0
        eng.close()  # idempotent


def test_non_seekable_source(backend):
    """A pipe: pread refuses it (posix), io_uring reads what arrives; both end cleanly."""
    r, w = os.pipe()
    try:
        with ShmRegion(4096) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
            reg.add_file(1, r)
            reg.add_region(1, shm.fd, 4096)
            os.write(w, b"abcdefgh")
            eng.submit(reg, 1, pack_read(1, 1, 0, 8, 1, 0))
            (c,) = one(collect(eng, 1), 1)
            if c.status == STATUS_OK:
                assert backend == "uring" and shm.read(0, 8) == b"abcdefgh"
            else:
                assert (c.status, c.reason, c.error) == (STATUS_FAILED, REASON["IO"], errno.ESPIPE)
    finally:
        os.close(r)
        os.close(w)


def test_reap_is_nonblocking_and_eventfd_rearms(backend, files):
    fd, _ = files[10]
    with ShmRegion(4096) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 4096)
        for round_ in range(20):
            eng.submit(reg, 1, pack_read(round_, 1, round_, 100, 1, 0))
            r, _, _ = select.select([eng.fileno()], [], [], 10)
            assert r
            got = []
            while len(got) < 1:
                for _, data, _failed in eng.reap():
                    got.extend(unpack_completions(data))
            assert got[0].request_id == round_


def _pipe_engine(queue_depth=2):
    """io_uring reads from an empty pipe stay in the kernel until data or a cancel arrives."""
    eng = make_engine("uring", workers=1, queue_depth=queue_depth)
    r, w = os.pipe()
    shm = ShmRegion(4096)
    reg = _native.Registry()
    reg.add_file(1, r)
    reg.add_region(1, shm.fd, 4096)
    return eng, reg, shm, r, w


def _settle(eng, in_flight):
    st = eng.stats()
    assert st["in_flight"] == in_flight, st
    import time
    time.sleep(0.05)  # let the ring thread hand the reads to the kernel


def test_uring_cancels_running_and_queued_reads():
    eng, reg, shm, r, w = _pipe_engine(queue_depth=2)
    try:
        eng.submit(reg, 1, b"".join(pack_read(i, 1, 0, 8, 1, i * 8) for i in range(3)))
        _settle(eng, 3)
        # request 2 waits behind the queue depth of 2; 0 and 1 are in the kernel
        assert eng.cancel(1, request_id=2) == 1
        (c,) = one(collect(eng, 1), 1)
        assert (c.request_id, c.status, c.reason) == (2, STATUS_CANCELLED, REASON["CANCELLED"])
        assert eng.cancel(1, request_id=0) == 1  # IORING_OP_ASYNC_CANCEL
        (c,) = one(collect(eng, 1), 1)
        assert (c.request_id, c.status, c.reason, c.error, c.hresult) == (
            0, STATUS_CANCELLED, REASON["CANCELLED"], errno.ECANCELED, E_ABORT)
        os.write(w, b"12345678")  # the survivor still reads normally
        (c,) = one(collect(eng, 1), 1)
        assert (c.request_id, c.status, c.bytes) == (1, STATUS_OK, 8)
        assert shm.read(8, 8) == b"12345678"
        assert wait_idle(eng)["cancelled"] == 2
    finally:
        eng.close()
        reg.close()
        shm.close()
        os.close(r)
        os.close(w)


def test_uring_drop_client_cancels_running_reads():
    eng, reg, shm, r, w = _pipe_engine()
    try:
        base = fd_count()
        eng.submit(reg, 1, b"".join(pack_read(i, 1, 0, 8, 1, 0) for i in range(4)))
        _settle(eng, 4)
        eng.drop_client(1)
        reg.close()
        st = wait_idle(eng, timeout=10)
        assert st["dropped"] == 4 and eng.reap() == []
        assert fd_count() == base - 1  # the registry's dup of the pipe is gone
    finally:
        eng.close()
        shm.close()
        os.close(r)
        os.close(w)


def test_uring_close_does_not_hang_on_running_reads():
    eng, reg, shm, r, w = _pipe_engine()
    try:
        eng.submit(reg, 1, b"".join(pack_read(i, 1, 0, 8, 1, 0) for i in range(5)))
        _settle(eng, 5)
        eng.close()
        comps = one(collect(eng, 5), 1)
        assert all((c.status, c.reason) == (STATUS_CANCELLED, REASON["SHUTDOWN"]) for c in comps), comps
    finally:
        reg.close()
        shm.close()
        os.close(r)
        os.close(w)


def _ring_tables() -> str:
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[io_uring]":
                with open(f"/proc/self/fdinfo/{name}") as f:
                    out.append(f.read())
        except OSError:
            pass
    return "\n".join(out)


def test_uring_registers_files_and_buffers_and_releases_them(tmp_path):
    import time
    path = tmp_path / "registered-file.bin"
    data = random.Random(6).randbytes(1 << 20)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        # mapped="off": the backend reads them all (cached pages would be copied without the ring)
        with make_engine("uring", workers=2, mapped="off") as eng, ShmRegion(1 << 20, tag="fixed") as shm:
            reg = _native.Registry()
            reg.add_file(1, fd)
            reg.add_region(1, shm.fd, 1 << 20)
            eng.submit(reg, 1, b"".join(pack_read(i, 1, i * 4096, 4096, 1, i * 4096) for i in range(64))
                       + pack_read(100, 1, 3, 5000, 1, 500000))
            assert all(c.status == STATUS_OK for c in one(collect(eng, 65), 1))
            assert shm.read(0, 64 * 4096) == data[: 64 * 4096] and shm.read(500000, 5000) == data[3:5003]
            st = eng.stats()
            if st["fixed_files"] == 0 or st["fixed_buffers"] == 0:
                pytest.skip(f"kernel refused registered files/buffers: {st}")
            tables = _ring_tables()
            if "UserFiles" not in tables:
                pytest.skip("this kernel's io_uring fdinfo does not list registered files")
            assert "registered-file.bin" in tables
            reg.close()  # the rings must drop the registered file and unpin the region
            deadline = time.monotonic() + 10
            while "registered-file.bin" in _ring_tables() or f"/{1 << 20}" in _ring_tables():
                assert time.monotonic() < deadline, _ring_tables()[:2000]
                time.sleep(0.01)
        with make_engine("uring", workers=1, register="off", mapped="off") as eng, ShmRegion(1 << 16) as shm, \
                _native.Registry() as reg:
            reg.add_file(1, fd)
            reg.add_region(1, shm.fd, 1 << 16)
            eng.submit(reg, 1, pack_read(1, 1, 0, 4096, 1, 0) + pack_read(2, 1, 1, 100, 1, 8192))
            assert all(c.status == STATUS_OK for c in one(collect(eng, 2), 1))
            st = eng.stats()
            assert (st["register"], st["fixed_files"], st["fixed_buffers"]) == ("off", 0, 0)
            assert st["buffered_reads"] + st["direct_reads"] == 2  # the ring read them, unregistered
            assert shm.read(0, 4096) == data[:4096] and shm.read(8192, 100) == data[1:101]
    finally:
        os.close(fd)


def test_region_shrunk_by_its_client_gives_efault(backend, files):
    """A client that truncates its shm after registering it gets EFAULT, and the daemon lives."""
    fd, data = files[13]
    with ShmRegion(1 << 16) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        os.ftruncate(shm.fd, 4096)
        eng.submit(reg, 1, pack_read(1, 1, 0, 4096, 1, 0) + pack_read(2, 1, 0, 4096, 1, 8192)
                   + pack_read(3, 1, 0, 8192, 1, 0))
        comps = {c.request_id: c for c in one(collect(eng, 3), 1)}
        assert comps[1].status == STATUS_OK and shm.read(0, 4096) == data[:4096]
        for rid in (2, 3):
            c = comps[rid]
            assert (c.status, c.reason, c.error, c.bytes) == (STATUS_FAILED, REASON["IO"], errno.EFAULT, 0), c


@pytest.mark.parametrize("workers, queue_depth", [(8, 1), (5, 3), (1, 4096)])
def test_many_rings_or_threads(backend, files, workers, queue_depth):
    fd, data = files[13]
    n = 4000
    rng = random.Random(workers)
    with ShmRegion(n * 64) as shm, _native.Registry() as reg, \
            make_engine(backend, workers=workers, queue_depth=queue_depth) as eng:
        assert eng.workers == workers
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, n * 64)
        plan = [(i, rng.randrange(0, len(data) - 64), rng.randrange(1, 65)) for i in range(n)]
        for start in range(0, n, 97):  # uneven batches
            eng.submit(reg, 3, b"".join(pack_read(i, 1, off, size, 1, i * 64) for i, off, size in plan[start:start + 97]))
        assert all(c.status == STATUS_OK for c in one(collect(eng, n), 3))
        view = reg.region_view(1)
        assert all(bytes(view[i * 64:i * 64 + size]) == data[off:off + size] for i, off, size in plan)
        view.release()


def test_uring_sqpoll_option(files):
    require = make_engine  # SKIP where io_uring is unavailable, like the other uring tests
    try:
        eng = require("uring", workers=1, sqpoll=True)
    except PermissionError as e:  # older kernels want CAP_SYS_NICE for SQPOLL
        pytest.skip(f"SQPOLL not permitted: {e}")
    fd, data = files[10]
    with eng, ShmRegion(1 << 16) as shm, _native.Registry() as reg:
        assert eng.stats()["sqpoll"] is True
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, 1 << 16)
        eng.submit(reg, 1, b"".join(pack_read(i, 1, i * 512, 512, 1, i * 512) for i in range(128)))
        assert all(c.status == STATUS_OK for c in one(collect(eng, 128), 1))
        assert shm.read(0, 1 << 16) == data[: 1 << 16]


def test_driven_from_a_trio_loop(backend, files):
    """The daemon's way: wait for the eventfd in trio, reap batches, never block the loop."""
    import trio

    fd, data = files[13]
    n = 3000
    with ShmRegion(n * 100) as shm, _native.Registry() as reg, make_engine(backend, workers=2) as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, n * 100)

        async def main() -> list:
            got: list = []
            for start in range(0, n, 500):
                eng.submit(reg, 9, b"".join(pack_read(i, 1, i * 7, 100, 1, i * 100) for i in range(start, start + 500)))
            with trio.fail_after(30):
                while len(got) < n:
                    await trio.lowlevel.wait_readable(eng.fileno())
                    for key, blob, *_failed in eng.reap():  # main: (key, completions, failed requests)
                        assert key == 9
                        got.extend(unpack_completions(blob))
            return got

        got = trio.run(main)
        assert sorted(c.request_id for c in got) == list(range(n))
        assert all(c.status == STATUS_OK for c in got)
        assert all(shm.read(i * 100, 100) == data[i * 7:i * 7 + 100] for i in range(0, n, 37))


def test_uring_continues_short_reads():
    """A pipe hands out what it has: the engine keeps reading until the request is whole."""
    eng, reg, shm, r, w = _pipe_engine()
    try:
        os.write(w, b"abc")
        eng.submit(reg, 1, pack_read(1, 1, 0, 8, 1, 100))
        import time
        deadline = time.monotonic() + 10
        while eng.stats()["short_reads"] == 0:  # the first piece arrived short
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert eng.reap() == []  # not complete yet
        os.write(w, b"defgh")
        (c,) = one(collect(eng, 1), 1)
        assert (c.status, c.bytes) == (STATUS_OK, 8)
        assert shm.read(100, 8) == b"abcdefgh"
    finally:
        eng.close()
        reg.close()
        shm.close()
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("coalesce", ["halves", "bursts", "off"])
def test_uring_held_completions_are_not_kept_behind_a_blocked_read(coalesce, files):
    """The engine holds finished reads back while it has more work in hand (halves, bursts), but
    never behind a read that waits: three reads from an empty pipe stay in the kernel, and the
    file read submitted with them must still wake the reaper promptly (within the hold cap)."""
    eng = make_engine("uring", workers=1, queue_depth=8, coalesce=coalesce)
    r, w = os.pipe()
    fd, data = files[10]
    try:
        with ShmRegion(8192) as shm, _native.Registry() as reg:
            assert eng.stats()["coalesce"] == coalesce
            reg.add_file(1, r)
            reg.add_file(2, fd)
            reg.add_region(1, shm.fd, 8192)
            eng.submit(reg, 1, b"".join([*(pack_read(i, 1, 0, 8, 1, i * 8) for i in range(3)),
                                         pack_read(7, 2, 4096, 4096, 1, 4096)]))
            readable, _, _ = select.select([eng.fileno()], [], [], 2.0)
            assert readable, f"no eventfd signal for the finished file read: {eng.stats()}"
            (c,) = one(collect(eng, 1), 1)
            assert (c.request_id, c.status, c.bytes) == (7, STATUS_OK, 4096)
            assert shm.read(4096, 4096) == data[4096:8192]
            os.write(w, b"x" * 24)
            assert sorted(c.request_id for c in one(collect(eng, 3), 1)) == [0, 1, 2]
    finally:
        eng.close()
        os.close(r)
        os.close(w)


def test_uring_coalesced_bursts_deliver_everything(files):
    """Bursts much larger than the queue depth, refilled as completions come (the double-buffered
    pattern the holding rule is built for) and in one piece: every read arrives, byte for byte."""
    fd, data = files[13]
    n = 4000
    with ShmRegion(n * 64) as shm, _native.Registry() as reg, \
            make_engine("uring", workers=2, queue_depth=16, coalesce="halves") as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, n * 64)
        recs = [pack_read(i, 1, (i * 4096) % (len(data) - 64), 64, 1, i * 64) for i in range(n)]
        eng.submit(reg, 3, b"".join(recs[:1000]))  # one burst
        got = one(collect(eng, 1000), 3)
        eng.submit(reg, 3, b"".join(recs[1000:1064]))  # then 64 in flight ...
        sent = 1064
        while len(got) < n:  # then refill with whatever came back, like bench io's driver
            assert select.select([eng.fileno()], [], [], 5.0)[0], f"stalled: {eng.stats()}"
            for _key, blob, _failed in eng.reap():
                comps = unpack_completions(blob)
                got.extend(comps)
                k = min(len(comps), n - sent)
                if k:
                    eng.submit(reg, 3, b"".join(recs[sent:sent + k]))
                    sent += k
        assert sorted(c.request_id for c in got) == list(range(n))
        assert all(c.status == STATUS_OK for c in got)
        assert all(shm.read(i * 64, 64) == data[(i * 4096) % (len(data) - 64):][:64] for i in range(0, n, 97))


def test_uring_bursts_wake_the_reaper_once_per_burst(files):
    """coalesce="bursts" (the daemon's): a burst spread over two rings wakes the reaper when the
    engine runs dry, not once per ring and half burst; every read still arrives intact."""
    fd, data = files[13]
    n = 400
    with ShmRegion(n * 512) as shm, _native.Registry() as reg, \
            make_engine("uring", workers=2, queue_depth=64, coalesce="bursts", direct="off") as eng:
        reg.add_file(1, fd)
        reg.add_region(1, shm.fd, n * 512)
        offs = [(i * 4096) % (len(data) - 512) for i in range(n)]
        recs = b"".join(pack_read(i, 1, offs[i], 512, 1, i * 512) for i in range(n))
        fewest = None
        for _ in range(5):  # the fewest wake-ups of a few bursts: a preempted ring can hit the cap
            eng.submit(reg, 4, recs)
            got, wakes = [], 0
            while len(got) < n:
                assert select.select([eng.fileno()], [], [], 5.0)[0], f"stalled: {eng.stats()}"
                wakes += 1
                for _key, blob, _failed in eng.reap():
                    got.extend(unpack_completions(blob))
            assert sorted(c.request_id for c in got) == list(range(n))
            assert all(c.status == STATUS_OK and c.bytes == 512 for c in got)
            fewest = wakes if fewest is None else min(fewest, wakes)
        assert fewest == 1, f"a 400-read burst woke the reaper {fewest} times at best"
        assert all(shm.read(i * 512, 512) == data[offs[i]: offs[i] + 512] for i in range(0, n, 37))
