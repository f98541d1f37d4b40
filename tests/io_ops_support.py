"""Helpers for the io engine's issue-7 tests (tests/test_io_ops_*.py): named reasons and HRESULTs,
reaping with messages, and a registry + engine + region set up the way the daemon does it."""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from dsd import _native
from dsd.ioengine import Completion, unpack_completions

from io_support import BACKENDS, ShmRegion, make_engine

__all__ = [
    "BACKENDS", "E", "REASON", "Reaped", "Rig", "ShmRegion", "collect_msgs", "make_engine", "rig",
]

REASON = {"NONE": 0, "IO": 1, "EOF": 2, "BAD_FILE": 3, "BAD_REGION": 4, "REGION_BOUNDS": 5,
          "SIZE_MISMATCH": 6, "UNSUPPORTED": 7, "RESERVED": 8, "DECOMPRESS": 9, "TOO_LARGE": 10,
          "CANCELLED": 11, "SHUTDOWN": 12}
E = {
    "OK": 0,
    "END_OF_FILE": 0x89240007,
    "REQUEST_TOO_LARGE": 0x89240008,
    "ACCESS_VIOLATION": 0x89240009,
    "FILE_NOT_OPEN": 0x8924000B,
    "INVALID_DESTINATION_SIZE": 0x8924000F,
    "DECOMPRESSION_ERROR": 0x89240030,
    "NOTIMPL": 0x80004001,
    "ABORT": 0x80004004,
    "INVALID_HANDLE": 0x80070006,  # HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE): EBADF
    "DISK_FULL": 0x80070070,       # HRESULT_FROM_WIN32(ERROR_DISK_FULL): ENOSPC
}


class Reaped(NamedTuple):
    completion: Completion
    message: str  # "" unless FAILED with words to say


def collect_msgs(eng: _native.IoEngine, want: int, key: int = 1, timeout: float = 60.0) -> dict[int, Reaped]:
    """Completions (with failure messages) by request id, waiting on the eventfd for `want`."""
    got: dict[int, Reaped] = {}
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only {len(got)} of {want} completions after {timeout}s: {eng.stats()}")
        select.select([eng.fileno()], [], [], min(left, 1.0))
        for k, data, failed, messages in eng.reap(messages=True):
            assert k == key
            comps = unpack_completions(data)
            failed_ids = [c.request_id for c in comps if c.status == 1]
            assert len(failed_ids) == len(messages) == len(failed) // 64
            words = dict(zip(failed_ids, messages))
            for c in comps:
                assert c.request_id not in got, f"request {c.request_id} completed twice"
                got[c.request_id] = Reaped(c, words.get(c.request_id, ""))
    assert len(got) == want
    return got


class Rig(NamedTuple):
    eng: _native.IoEngine
    reg: _native.Registry
    shm: ShmRegion


@contextlib.contextmanager
def rig(backend: str, region_size: int, **engine_kwargs: object) -> Iterator[Rig]:
    """An engine, a registry with region 1 of `region_size` bytes, and that region's fd."""
    with ShmRegion(region_size) as shm, _native.Registry() as reg, make_engine(backend, **engine_kwargs) as eng:
        reg.add_region(1, shm.fd, region_size)
        yield Rig(eng, reg, shm)


def check(r: Reaped, status: int, reason: str, hresult: int | None = None, error: int | None = None) -> None:
    c = r.completion
    assert (c.status, c.reason_name) == (status, reason), r
    if hresult is not None:
        assert c.hresult == hresult, (hex(c.hresult), r)
    if error is not None:
        assert c.error == error, r


def open_rw(path: os.PathLike[str] | str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def skip_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
