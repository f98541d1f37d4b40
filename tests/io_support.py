"""Helpers shared by the io engine tests: shared-memory regions as clients make them, waiting on
the engine's eventfd, and counting this process's fds and mappings to prove resources return."""

from __future__ import annotations

import errno
import os
import select
import time
import uuid
from collections import defaultdict

import pytest

from dsd import _native
from dsd.ioengine import Completion, pack_read, unpack_completions

BACKENDS = ["posix", "uring"]

__all__ = [
    "BACKENDS", "Completion", "ShmRegion", "backend", "one", "collect", "fd_count", "maps_count", "make_engine",
    "pack_read", "require_backend", "unpack_completions", "wait_idle",
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Runs a test once per backend (io_uring SKIPs where the kernel forbids it, see make_engine)."""
    return request.param


def one(got: dict, key: int):
    """The completions of collect() for the one client key expected."""
    assert list(got) == [key], got
    return got[key]


def require_backend(backend: str) -> None:
    """io_uring tests SKIP with the probe's reason where the kernel or sandbox forbids it."""
    if backend == "uring":
        ok, why = _native.io_uring_probe()
        if not ok:
            pytest.skip(f"io_uring unavailable: {why}")


def make_engine(backend: str, **kwargs: object) -> _native.IoEngine:
    require_backend(backend)
    eng = _native.IoEngine(backend=backend, **kwargs)
    assert eng.backend == backend
    return eng


class ShmRegion:
    """A region the way a client creates one: a file in /dev/shm, unlinked once the fd is open."""

    def __init__(self, size: int, tag: str = "") -> None:
        self.name = f"dsd-test-{os.getpid()}-{tag}{uuid.uuid4().hex[:8]}"
        path = f"/dev/shm/{self.name}"
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.unlink(path)
        os.ftruncate(self.fd, size)
        self.size = size

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ShmRegion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def collect(eng: _native.IoEngine, want: int, timeout: float = 30.0) -> dict[int, list[Completion]]:
    """Waits on the eventfd until `want` completions arrived; fails loudly on a hang."""
    got: dict[int, list[Completion]] = defaultdict(list)
    total = 0
    deadline = time.monotonic() + timeout
    while total < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only {total} of {want} completions after {timeout}s: {eng.stats()}")
        select.select([eng.fileno()], [], [], min(left, 1.0))
        for key, data, _failed in eng.reap():
            comps = unpack_completions(data)
            got[key].extend(comps)
            total += len(comps)
    assert total == want, f"{total} completions, expected {want}"
    return dict(got)


def wait_idle(eng: _native.IoEngine, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = eng.stats()
        if st["in_flight"] == 0:
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"engine still busy after {timeout}s: {st}")
        time.sleep(0.005)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def maps_count(needle: str) -> int:
    with open("/proc/self/maps") as f:
        return sum(needle in line for line in f)


def assert_no_eventfd_signal(eng: _native.IoEngine) -> None:
    r, _, _ = select.select([eng.fileno()], [], [], 0)
    assert not r, "eventfd readable with nothing to reap"


def enospc_safe_write(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:  # pragma: no cover - only on a full disk
        if e.errno == errno.ENOSPC:
            pytest.skip("disk full")
        raise
