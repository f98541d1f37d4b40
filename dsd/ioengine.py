"""Settings and helpers around the native io engine (``dsd._native.IoEngine``).

The engine runs packed request records (native/dsd_wire.h): reads into registered shared-memory
regions, writes from them, fsync, MEMORY-source copies, and GDeflate/Zstandard requests decoded
(encoded) on codec threads, with io_uring rings or a pread/pwrite thread pool. This module is the one place that turns
environment variables (and runtime overrides) into engine options, so the daemon, ``dsd doctor``
and ``dsd bench io`` agree on them; docs/io-engine.md lists every setting and the AUTO rules.

    DSD_IO_BACKEND      auto | uring | posix   (default auto)
    DSD_IO_WORKERS      rings / threads, 0 = one per online core (default 0)
    DSD_IO_QUEUE_DEPTH  reads in flight per ring, 1..4096 (default 64)
    DSD_IO_SQPOLL       0 | 1 (default 0)
    DSD_IO_DIRECT       auto | off (default auto)
    DSD_IO_REGISTER     auto | off: io_uring registered files and buffers (default auto)
    DSD_IO_COALESCE     auto | off | halves | bursts: when io_uring completions wake the reaper
                        (default auto: bursts in the daemon, halves for direct engine users;
                        0 = off, 1 = auto)
    DSD_IO_MAPPED       auto | off: reads whose pages are in the page cache are copied from a
                        mapping of the file instead of read by the backend (default auto)
    DSD_STAGING_BYTES   staging buffer for compressed requests, bytes, 0..2**40 (default 32 MiB)
    DSD_IO_CODEC_WORKERS  codec threads, 0 = one per online core (default 0)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from dsd.protocol import COMPLETION_RECORD, REQUEST_RECORD, Compression, Op, Reason, SourceType, Status

BACKENDS = ("auto", "uring", "posix")
DIRECT_MODES = ("auto", "off")
# When finished io_uring requests wake the reaper (native/io_engine.h, enum dsd_io_coalesce):
# "halves" keeps a caller that refills as completions come fed (dsd bench io's driver, fio's
# pattern); "bursts" wakes the daemon once per burst (its clients wait for whole batches:
# 3 -> 1 wake-ups per paced 500-request batch, docs/io-engine.md).
COALESCE_MODES = ("auto", "off", "halves", "bursts")

# The records and their enums are dsd.protocol's (the C twin is native/dsd_wire.h).
REQUEST = REQUEST_RECORD
COMPLETION = COMPLETION_RECORD
STATUS_OK, STATUS_FAILED, STATUS_CANCELLED = Status.OK, Status.FAILED, Status.CANCELLED
OP_READ, OP_WRITE, OP_FSYNC = Op.READ, Op.WRITE, Op.FSYNC
COMPRESSION_NONE, COMPRESSION_GDEFLATE, COMPRESSION_ZSTD = Compression.NONE, Compression.GDEFLATE, Compression.ZSTD
SOURCE_FILE, SOURCE_MEMORY = SourceType.FILE, SourceType.MEMORY
REASONS = tuple(reason.name for reason in Reason)
STAGING_DEFAULT = 32 << 20  # DirectStorage's default staging buffer size
STAGING_MAX = 1 << 40


@dataclasses.dataclass(frozen=True)
class IoSettings:
    """Keyword arguments of ``IoEngine``."""

    backend: str = "auto"
    workers: int = 0
    queue_depth: int = 64
    sqpoll: bool = False
    direct: str = "auto"
    register: str = "auto"
    staging_bytes: int = STAGING_DEFAULT
    codec_workers: int = 0
    coalesce: str = "auto"
    mapped: str = "auto"

    def engine_kwargs(self, *, coalesce_auto: str = "halves") -> dict[str, Any]:
        """The keywords for ``IoEngine``; ``coalesce_auto`` is what "auto" means for this caller
        (the daemon passes "bursts")."""
        kwargs = dataclasses.asdict(self)
        if kwargs["coalesce"] == "auto":
            kwargs["coalesce"] = coalesce_auto
        return kwargs


_ENV = {
    "backend": "DSD_IO_BACKEND",
    "workers": "DSD_IO_WORKERS",
    "queue_depth": "DSD_IO_QUEUE_DEPTH",
    "sqpoll": "DSD_IO_SQPOLL",
    "direct": "DSD_IO_DIRECT",
    "register": "DSD_IO_REGISTER",
    "staging_bytes": "DSD_STAGING_BYTES",
    "codec_workers": "DSD_IO_CODEC_WORKERS",
    "coalesce": "DSD_IO_COALESCE",
    "mapped": "DSD_IO_MAPPED",
}

_overrides: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("dsd_io_overrides", default={})


def _parse(name: str, raw: Any, origin: str) -> Any:
    def bad(expected: str) -> ValueError:
        return ValueError(f"{origin}: {raw!r} is not {expected}")

    if name in ("backend", "direct", "register", "coalesce", "mapped"):
        choices = {"backend": BACKENDS, "coalesce": COALESCE_MODES}.get(name, DIRECT_MODES)
        value = str(raw).strip().lower()
        if name == "coalesce":  # the 0 | 1 of earlier releases, and booleans
            value = {"0": "off", "false": "off", "1": "auto", "true": "auto"}.get(value, value)
        if value not in choices:
            raise bad("one of " + ", ".join(choices))
        return value
    if name == "sqpoll":
        if isinstance(raw, bool):
            return raw
        value = str(raw).strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise bad("0 or 1")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad("an integer") from None
    low, high = {"workers": (0, 256), "codec_workers": (0, 256), "staging_bytes": (0, STAGING_MAX)}.get(name, (1, 4096))
    if not low <= value <= high:
        raise bad(f"in [{low}, {high}]")
    return value


def settings(environ: Mapping[str, str] | None = None) -> IoSettings:
    """The settings in force: runtime overrides (``io_settings``) over environment over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, var in _ENV.items():
        if var in env:
            values[name] = _parse(name, env[var], var)
    for name, raw in _overrides.get().items():
        values[name] = _parse(name, raw, f"io_settings({name}=...)")
    return IoSettings(**values)


@contextlib.contextmanager
def io_settings(**overrides: Any) -> Iterator[IoSettings]:
    """Override settings for the code inside the ``with`` (restored afterwards)."""
    unknown = set(overrides) - set(_ENV)
    if unknown:
        raise TypeError(f"unknown io setting(s): {', '.join(sorted(unknown))}")
    for name, raw in overrides.items():
        _parse(name, raw, f"io_settings({name}=...)")
    token = _overrides.set({**_overrides.get(), **overrides})
    try:
        yield settings()
    finally:
        _overrides.reset(token)


def open_engine(**overrides: Any) -> Any:
    """An ``IoEngine`` built from ``settings()`` with ``overrides`` on top."""
    from dsd import _native

    with io_settings(**overrides) as chosen:
        return _native.IoEngine(**chosen.engine_kwargs())


def pack_read(
    request_id: int,
    file_id: int,
    offset: int,
    size: int,
    region_id: int,
    dst_offset: int,
    *,
    tag: int = 0,
    dst_size: int | None = None,
) -> bytes:
    """One READ/FILE/NONE request record."""
    return REQUEST.pack(
        request_id, tag, offset, size, file_id, dst_offset,
        size if dst_size is None else dst_size, region_id, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    )


def pack_request(
    request_id: int,
    *,
    op: int = OP_READ,
    src_id: int = 0,
    src_offset: int = 0,
    src_size: int = 0,
    dst_id: int = 0,
    dst_offset: int = 0,
    dst_size: int | None = None,
    compression: int = COMPRESSION_NONE,
    source_type: int = SOURCE_FILE,
    uncompressed_size: int | None = None,
    level: int = 0,
    tag: int = 0,
) -> bytes:
    """Any request record. Defaults: ``dst_size`` = ``src_size`` (for compressed READs pass the
    decoded size; for compressed WRITEs 0 = no limit), ``uncompressed_size`` = 0 when uncompressed,
    else the decoded size (READ: ``dst_size``; WRITE: ``src_size``)."""
    if dst_size is None:
        dst_size = src_size if compression == COMPRESSION_NONE or op == OP_READ else 0
    if uncompressed_size is None:
        if compression == COMPRESSION_NONE:
            uncompressed_size = 0
        else:
            uncompressed_size = dst_size if op == OP_READ else src_size
    return REQUEST.pack(
        request_id, tag, src_offset, src_size, src_id, dst_offset, dst_size, dst_id, uncompressed_size,
        op, compression, source_type, 0, 0, 0, level, 0,
    )


def pack_write(
    request_id: int,
    region_id: int,
    src_offset: int,
    size: int,
    file_id: int,
    file_offset: int,
    *,
    compression: int = COMPRESSION_NONE,
    level: int = 0,
    max_size: int = 0,
    tag: int = 0,
) -> bytes:
    """One WRITE: ``size`` bytes of region ``region_id`` at ``src_offset`` to ``file_id`` at
    ``file_offset``; compressed on the way when ``compression`` is set (then ``max_size`` bounds
    the compressed bytes the file may take, 0 = no limit)."""
    return pack_request(
        request_id, op=OP_WRITE, src_id=region_id, src_offset=src_offset, src_size=size, dst_id=file_id,
        dst_offset=file_offset, dst_size=size if compression == COMPRESSION_NONE else max_size,
        compression=compression, level=level, tag=tag,
    )


def pack_fsync(request_id: int, file_id: int, *, tag: int = 0) -> bytes:
    """One FSYNC of ``file_id``."""
    return pack_request(request_id, op=OP_FSYNC, dst_id=file_id, tag=tag)


class Completion(NamedTuple):
    request_id: int
    bytes: int
    hresult: int
    error: int
    status: int
    reason: int

    @property
    def reason_name(self) -> str:
        return REASONS[self.reason] if self.reason < len(REASONS) else str(self.reason)


def unpack_completions(data: bytes) -> list[Completion]:
    return [Completion(*c) for c in COMPLETION.iter_unpack(data)]


def doctor_checks(paths: tuple[str, ...] = ("/tmp", "/dev/shm")) -> list[tuple[str, bool, str]]:
    """What `dsd doctor` reports for the io engine: (check, ok, detail), each a real attempt."""
    from dsd import _native

    checks: list[tuple[str, bool, str]] = []
    ok, why = _native.io_uring_probe()
    checks.append(("io_uring", ok, why))
    for path in paths:
        ok, why = _native.odirect_probe(path)
        checks.append((f"O_DIRECT on {path}", ok, why))
    try:
        chosen = settings()
        with _native.IoEngine(**{**chosen.engine_kwargs(), "workers": 1}) as eng:
            checks.append(("io backend", True, f"{eng.backend} (DSD_IO_BACKEND={chosen.backend}: {eng.backend_reason})"))
            checks.append(mapped_read_check(eng, chosen.mapped, paths[0] if paths else "/tmp"))
    except (OSError, ValueError) as e:
        checks.append(("io backend", False, str(e)))
    return checks


def mapped_read_check(eng: Any, mode: str, directory: str) -> tuple[str, bool, str]:
    """Reads a cached 4 KiB file through ``eng`` and says whether the mapped read path took it."""
    import select
    import tempfile

    from dsd import _native

    if mode == "off":
        return ("mapped reads", True, "off (DSD_IO_MAPPED=off): every read goes through the backend")
    try:
        with tempfile.TemporaryFile(dir=directory) as f, _native.Registry() as reg:
            f.write(os.urandom(4096))
            f.flush()
            shm = os.memfd_create("dsd-doctor", os.MFD_CLOEXEC)
            try:
                os.ftruncate(shm, 4096)
                reg.add_file(1, f.fileno())
                reg.add_region(1, shm, 4096)
                before = eng.stats()["mapped_reads"]
                eng.submit(reg, 1, pack_read(1, 1, 0, 4096, 1, 0))
                got = []
                while not got and select.select([eng.fileno()], [], [], 5.0)[0]:
                    got = eng.reap()
                taken = eng.stats()["mapped_reads"] - before
            finally:
                os.close(shm)
    except OSError as e:
        return ("mapped reads", False, f"could not try a read in {directory}: {e}")
    if taken == 1:
        return ("mapped reads", True, "on: cached pages are copied from a mapping of the file (DSD_IO_MAPPED=auto)")
    return ("mapped reads", False, f"on, but a cached read in {directory} did not take the path "
            "(a filesystem without mmap?): reads go through the backend")
