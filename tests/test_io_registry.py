"""Registry: per-client files and shm regions, with refcounted release (checked through the
process's fd table and mappings, which must return to their baseline)."""

from __future__ import annotations

import errno
import os

import pytest

from dsd import _native

from io_support import ShmRegion, fd_count, maps_count

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(64 * 1024))
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_add_and_remove_files(data_file):
    with _native.Registry() as reg:
        reg.add_file(1, data_file)
        reg.add_file(0xFFFFFFFF, data_file)
        assert reg.files == (1, 0xFFFFFFFF)
        assert reg.counts() == (2, 0)
        with pytest.raises(ValueError, match="already registered"):
            reg.add_file(1, data_file)
        reg.remove_file(1)
        with pytest.raises(KeyError):
            reg.remove_file(1)
        assert reg.files == (0xFFFFFFFF,)
    assert reg.closed
    assert reg.counts() == (0, 0)
    with pytest.raises(ValueError, match="closed"):
        reg.add_file(2, data_file)


@pytest.mark.parametrize("bad", [-1, 2**32, "x"])
def test_ids_must_be_u32(data_file, bad):
    with _native.Registry() as reg, pytest.raises((ValueError, TypeError)):
        reg.add_file(bad, data_file)


def test_bad_fds_raise_oserror(tmp_path):
    with _native.Registry() as reg:
        with pytest.raises(OSError) as info:
            reg.add_file(1, -1)
        assert info.value.errno == errno.EBADF
        fd = os.open(tmp_path, os.O_RDONLY)
        os.close(fd)
        with pytest.raises(OSError) as info:
            reg.add_file(1, fd)  # closed
        assert info.value.errno == errno.EBADF
        dfd = os.open(tmp_path, os.O_RDONLY)
        try:
            with pytest.raises(OSError) as info:
                reg.add_file(1, dfd)
            assert info.value.errno == errno.EISDIR
        finally:
            os.close(dfd)
        assert reg.counts() == (0, 0)


def test_engine_owns_a_dup(data_file, tmp_path):
    base = fd_count()
    with _native.Registry() as reg:
        fd = os.open(tmp_path / "data.bin", os.O_RDONLY)
        reg.add_file(5, fd)
        os.close(fd)  # the daemon closes its own fd right away
        assert fd_count() > base  # the registry's dup (and its O_DIRECT twin) stay
        reg.remove_file(5)
        assert fd_count() == base


def test_regions(data_file):
    with ShmRegion(8192) as shm, _native.Registry() as reg:
        reg.add_region(3, shm.fd, 8192)
        assert reg.regions == (3,)
        with pytest.raises(ValueError, match="already registered"):
            reg.add_region(3, shm.fd, 8192)
        view = reg.region_view(3)
        assert len(view) == 8192 and not view.readonly
        view[100:105] = b"hello"
        assert shm.read(100, 5) == b"hello"  # shared with the client's file
        os.pwrite(shm.fd, b"world", 200)
        assert bytes(view[200:205]) == b"world"
        reg.remove_region(3)
        assert reg.regions == ()
        view[0:2] = b"ok"  # the view keeps the mapping alive after removal
        view.release()
        with pytest.raises(KeyError):
            reg.region_view(3)
        with pytest.raises(KeyError):
            reg.remove_region(3)


def test_region_size_checks():
    with ShmRegion(4096) as shm, _native.Registry() as reg:
        with pytest.raises(ValueError, match="larger than its file"):
            reg.add_region(1, shm.fd, 4097)  # touching past the file would SIGBUS
        with pytest.raises(ValueError):
            reg.add_region(1, shm.fd, 0)
        with pytest.raises(OSError) as info:
            reg.add_region(1, -1, 4096)
        assert info.value.errno == errno.EBADF
        assert reg.counts() == (0, 0)


def test_close_releases_everything(tmp_path):
    paths = []
    for i in range(20):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x" * 100)
        paths.append(p)
    shms = [ShmRegion(4096, tag="rel") for _ in range(5)]
    try:
        base_fds, base_maps = fd_count(), maps_count("dsd-test-")
        reg = _native.Registry()
        for i, p in enumerate(paths):
            fd = os.open(p, os.O_RDONLY)
            reg.add_file(i, fd)
            os.close(fd)
        for i, shm in enumerate(shms):
            reg.add_region(i, shm.fd, 4096)
        assert maps_count("dsd-test-") == base_maps + 5
        reg.close()
        assert fd_count() == base_fds
        assert maps_count("dsd-test-") == base_maps
        reg.close()  # idempotent
        # dropping an unclosed registry releases too
        reg2 = _native.Registry()
        reg2.add_region(0, shms[0].fd, 4096)
        del reg2
        assert maps_count("dsd-test-") == base_maps
    finally:
        for shm in shms:
            shm.close()
