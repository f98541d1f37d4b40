"""The io engine's mapped read path (native/io_mapped.c): reads whose pages are cached are copied
from a mapping of the file. Checked against pread, against files shrinking under it (SIGBUS
guarded, tail pages confirmed), cold files (the backend reads them), shrunk destinations, and
for what it does to the process's SIGBUS handling."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from dsd import _native
from dsd.ioengine import STATUS_FAILED, STATUS_OK
from dsd.protocol import Reason

from io_support import ShmRegion, backend, collect, make_engine, one, pack_read, wait_idle

def write_file(path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def drop_cache(fd: int) -> None:
    """Evicts the file's pages and turns readahead off for it (the engine's dup shares the open
    file), so a read caches its own pages only."""
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)


def test_cached_reads_take_the_mapped_path_and_match_pread(backend, tmp_path):
    """Random sizes and offsets over a cached file (unaligned, across 2 MiB chunks, up to the last
    byte): every read is copied from the mapping and equals pread; with mapped="off" none is."""
    size = (6 << 20) + 1234
    data = random.Random(11).randbytes(size)
    fd = write_file(tmp_path / "m.bin", data)
    rng = random.Random(12)
    plan = [(i, rng.randrange(size), rng.choice((1, 17, 4096, 65536, 3 << 20))) for i in range(300)]
    plan = [(i, off, min(n, size - off)) for i, off, n in plan] + [(300, size - 4096, 4096), (301, (2 << 20) - 5, 10)]
    try:
        for mapped in ("auto", "off"):
            with ShmRegion(len(plan) * (3 << 20)) as shm, _native.Registry() as reg, \
                    make_engine(backend, workers=2, queue_depth=8, mapped=mapped) as eng:
                reg.add_file(1, fd)
                reg.add_region(1, shm.fd, len(plan) * (3 << 20))
                eng.submit(reg, 1, b"".join(pack_read(i, 1, off, n, 1, i * (3 << 20)) for i, off, n in plan))
                comps = one(collect(eng, len(plan)), 1)
                assert all(c.status == STATUS_OK for c in comps), [c for c in comps if c.status != STATUS_OK][:3]
                for i, off, n in plan:
                    assert shm.read(i * (3 << 20), n) == data[off:off + n], (i, off, n)
                st = wait_idle(eng)
                assert st["mapped"] == mapped
                assert st["mapped_redone"] == 0
                assert st["mapped_reads"] == (len(plan) if mapped == "auto" else 0), st
                if mapped == "auto":
                    assert st["buffered_reads"] == st["direct_reads"] == 0, st
    finally:
        os.close(fd)


def test_cold_file_is_read_by_the_backend_until_it_is_cached(backend, tmp_path):
    """Pages that are not cached would block the thread in a page fault: the backend reads them.
    Its reads cache them, and from then on the mapped path takes them (without waiting for the
    chunk's next mincore)."""
    data = random.Random(13).randbytes(4 << 20)
    fd = write_file(tmp_path / "c.bin", data)
    try:
        drop_cache(fd)
        with ShmRegion(4 << 20) as shm, _native.Registry() as reg, \
                make_engine(backend, workers=1, queue_depth=8, direct="off") as eng:
            reg.add_file(1, fd)
            reg.add_region(1, shm.fd, 4 << 20)
            plan = [(i, (63 - i) * 65536, 65536) for i in range(64)]
            batch = b"".join(pack_read(i, 1, off, n, 1, off) for i, off, n in plan)
            eng.submit(reg, 1, batch)
            assert all(c.status == STATUS_OK for c in one(collect(eng, 64), 1))
            assert shm.read(0, 4 << 20) == data
            st = wait_idle(eng)
            if st["mapped_reads"]:
                pytest.skip(f"the filesystem kept the pages cached after POSIX_FADV_DONTNEED (tmpfs?): {st}")
            assert st["buffered_reads"] >= 64, st
            eng.submit(reg, 1, batch)  # the backend's reads cached these pages, and the path knows
            assert all(c.status == STATUS_OK for c in one(collect(eng, 64), 1))
            assert shm.read(0, 4 << 20) == data
            assert wait_idle(eng)["mapped_reads"] == 64
    finally:
        os.close(fd)


def test_file_shrunk_under_mapped_reads_fails_eof_never_zeros(tmp_path):
    """Reads validated against the old size, whose pages the path saw cached, run after the file
    shrank: pages past the end fault (SIGBUS, guarded) and the new last page's tail reads as zeros
    in a mapping; both are redone with pread and fail EOF, as the backend's reads would.
    io_uring, because a read from an empty pipe holds its one queue slot until we let it go."""
    size = 8 << 20
    data = random.Random(14).randbytes(size)
    path = tmp_path / "s.bin"
    fd = write_file(path, data)
    r, w = os.pipe()
    eng = make_engine("uring", workers=1, queue_depth=1)
    try:
        with ShmRegion(1 << 20) as shm, _native.Registry() as reg:
            reg.add_file(1, fd)
            reg.add_file(2, r)
            reg.add_region(1, shm.fd, 1 << 20)
            cut = (4 << 20) + 100
            tail = [pack_read(100 + i, 1, (4 << 20) + i * 65536, 4096, 1, i * 4096) for i in range(40)]
            eng.submit(reg, 1, b"".join(tail))  # warm: the path maps the file and sees these pages cached
            assert all(c.status == STATUS_OK for c in one(collect(eng, 40), 1))
            assert wait_idle(eng)["mapped_reads"] == 40
            eng.submit(reg, 1, pack_read(1, 2, 0, 8, 1, 0) + b"".join(tail))  # the pipe read goes first
            os.truncate(path, cut)
            os.write(w, b"x" * 8)
            comps = {c.request_id: c for c in one(collect(eng, 41), 1)}
            assert comps[1].status == STATUS_OK
            for i in range(40):
                c = comps[100 + i]
                assert (c.status, c.reason, c.bytes) == (STATUS_FAILED, Reason.EOF, 0), (i, c)
            st = wait_idle(eng)
            assert st["mapped_redone"] == 40 and st["mapped_reads"] == 40, st
            # the process lives on and the path still serves what the file still has
            eng.submit(reg, 1, pack_read(7, 1, 4096, 4096, 1, 0))
            (c,) = one(collect(eng, 1), 1)
            assert c.status == STATUS_OK and shm.read(0, 4096) == data[4096:8192]
    finally:
        eng.close()
        os.close(fd)
        os.close(r)
        os.close(w)


def test_destination_shrunk_by_its_client_fails_efault(backend, tmp_path):
    """A copy into a client's shared memory that the client truncated faults on the destination:
    the read is redone with pread, which fails EFAULT, and the process lives."""
    data = random.Random(15).randbytes(1 << 20)
    fd = write_file(tmp_path / "d.bin", data)
    try:
        with ShmRegion(1 << 20) as shm, _native.Registry() as reg, make_engine(backend, workers=1) as eng:
            reg.add_file(1, fd)
            reg.add_region(1, shm.fd, 1 << 20)
            eng.submit(reg, 1, pack_read(1, 1, 0, 4096, 1, 0))  # the file is mapped, its pages seen cached
            assert one(collect(eng, 1), 1)[0].status == STATUS_OK
            os.ftruncate(shm.fd, 4096)
            eng.submit(reg, 1, pack_read(2, 1, 0, 65536, 1, 65536))
            (c,) = one(collect(eng, 1), 1)
            assert (c.status, c.reason, c.error) == (STATUS_FAILED, Reason.IO, errno.EFAULT), c
            assert wait_idle(eng)["mapped_redone"] == 1
    finally:
        os.close(fd)


# A real SIGBUS outside any guarded copy must still end the process, with faulthandler's report
# when it is on, whether faulthandler came before the engine's handler or after it (then the
# engine puts its handler back in front when it maps the next file).
_CRASH = textwrap.dedent("""
    import faulthandler, mmap, os, sys, tempfile
    from dsd import _native
    order = sys.argv[1]
    if order == "before":
        faulthandler.enable()
    eng = _native.IoEngine(backend="posix", workers=1)
    reg = _native.Registry()
    d = tempfile.mkdtemp()
    def read_once(name):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(os.urandom(1 << 16))
        fd = os.open(p, os.O_RDONLY)
        shm = os.memfd_create("dst")
        os.ftruncate(shm, 4096)
        fid = len(name)
        reg.add_file(fid, fd)
        reg.add_region(fid, shm, 4096)
        from dsd.ioengine import pack_read
        import select
        eng.submit(reg, 1, pack_read(1, fid, 0, 4096, fid, 0))
        select.select([eng.fileno()], [], [], 5)
        eng.reap()
        assert eng.stats()["mapped_reads"] >= 1
    read_once("a")
    if order == "after":
        faulthandler.enable()
        read_once("bb")
    p = os.path.join(d, "victim")
    with open(p, "wb") as f:
        f.write(b"x" * 8192)
    f = open(p, "r+b")
    m = mmap.mmap(f.fileno(), 8192)
    os.truncate(p, 0)
    print("touching", flush=True)
    m[4096]
    print("survived", flush=True)
""")


@pytest.mark.parametrize("order", ["none", "before", "after"])
def test_unguarded_sigbus_still_ends_the_process(order):
    proc = subprocess.run([sys.executable, "-c", _CRASH, order], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONFAULTHANDLER": ""})
    assert "touching" in proc.stdout and "survived" not in proc.stdout, (proc.stdout, proc.stderr)
    assert proc.returncode == -signal.SIGBUS, (proc.returncode, proc.stderr)
    if order != "none":
        assert "Bus error" in proc.stderr, proc.stderr
